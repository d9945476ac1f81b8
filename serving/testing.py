"""Helpers for the serving tests and benchmark: fixture marts for several tenants and dev tokens."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from serving.auth.dev_issuer import DevIssuer
from serving.data.sample import write_sample_lake


def yesterday() -> date:
    return datetime.now(timezone.utc).date() - timedelta(days=1)


def write_fixture_lake(lake_dir: Path, tenants: dict[str, float], days: int = 120, end: date | None = None) -> None:
    """Marts for each tenant (scale = how big its bill is, so tenants' totals differ)."""
    for tenant_id, scale in tenants.items():
        write_sample_lake(lake_dir, tenant_id, end or yesterday(), days, scale=scale)


def dev_headers(home: Path, tenant_id: str, admin: bool = False, ttl: int = 3600) -> dict[str, str]:
    roles = ["viewer", "admin"] if admin else ["viewer"]
    return {"Authorization": "Bearer " + DevIssuer(home).issue(tenant_id, roles, ttl)}
