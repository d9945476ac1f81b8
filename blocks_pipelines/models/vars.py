"""The vars one tenant's dbt run gets: everything tenant-specific reaches dbt this way, never through the project."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from blocks_pipelines.lake.months import current_globs
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig


def _iso_utc(ts: datetime) -> str:
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts.isoformat(sep=" ")


def tenant_accounts(tenant: TenantConfig) -> list[dict[str, str]]:
    """Registry accounts for the stg_accounts model; the payer is listed even when not a linked account."""
    accounts = [
        {"account_id": a.account_id, "name": a.name, "ou_path": a.ou_path} for a in tenant.organization.linked_accounts
    ]
    payer = tenant.organization.payer_account_id
    if payer not in {a["account_id"] for a in accounts}:
        accounts.append({"account_id": payer, "name": "payer", "ou_path": "Root"})
    return accounts


def dbt_vars(
    tenant: TenantConfig,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    achievable_daily_savings: float | None = None,
) -> dict[str, Any]:
    """start/end bound the hours rebuilt (end exclusive; widened to whole UTC days by the models)."""
    if (start is None) != (end is None):
        raise ValueError("give both start and end (end exclusive), or neither to rebuild every hour")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end {end} must be after start {start} (end is exclusive)")
    if achievable_daily_savings is not None and achievable_daily_savings < 0:
        raise ValueError(f"achievable_daily_savings {achievable_daily_savings} must be >= 0 ($ per day)")
    settings = get_settings()
    return {
        "tenant_id": tenant.id,
        # DuckDB reads each month's current version folder, resolved once per run: a month swapped meanwhile is read
        # whole (the old version) or fails loudly once its files are deleted, never mixed. Athena reads the
        # months' symlink manifests instead (blocks_pipelines.models.athena).
        "line_items_globs": current_globs(settings.lake_uri, tenant.id) if settings.dbt_target == "duckdb" else [],
        "start": _iso_utc(start) if start else None,
        "end": _iso_utc(end) if end else None,
        "accounts": tenant_accounts(tenant),
        "target_coverage": tenant.guardrails.target_coverage,
        "achievable_daily_savings": achievable_daily_savings,
    }
