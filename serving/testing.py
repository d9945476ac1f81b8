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


def dev_headers(
    home: Path, tenant_id: str, admin: bool = False, ttl: int = 3600, roles: list[str] | None = None
) -> dict[str, str]:
    roles = roles or (["viewer", "admin"] if admin else ["viewer"])
    return {"Authorization": "Bearer " + DevIssuer(home).issue(tenant_id, roles, ttl)}


def prepare_env(mp, root: Path, tenants_src: Path, lake_tenants: dict[str, float], days: int = 120) -> Path:
    """An isolated BLOCKS_HOME/config/lake under root (env set through the pytest MonkeyPatch `mp`), fixture marts
    for lake_tenants, and the dev key pair created once. Returns BLOCKS_HOME."""
    import shutil

    home, config, lake = root / "home", root / "assets_config", root / "lake"
    (config / "tenants").mkdir(parents=True)
    home.mkdir()
    for f in tenants_src.glob("*.yaml"):
        shutil.copy(f, config / "tenants" / f.name)
    for var, value in (
        ("BLOCKS_HOME", home),
        ("BLOCKS_ASSETS_CONFIG", config),
        ("BLOCKS_LAKE_URI", lake),
        ("BLOCKS_ENV", "local"),
        ("BLOCKS_SERVING_REFRESH_SECONDS", "60"),
        ("BLOCKS_SERVING_PRELOAD", "0"),
    ):
        mp.setenv(var, str(value))
    for var in (
        "BLOCKS_S3_ENDPOINT_URL",
        "BLOCKS_STATE_BACKEND",
        "BLOCKS_COGNITO_USER_POOL_ID",
        "BLOCKS_BEDROCK_MODEL_ID",
        "BLOCKS_CHAT_BURST",
        "BLOCKS_CHAT_PER_MINUTE",
    ):
        mp.delenv(var, raising=False)
    write_fixture_lake(lake, lake_tenants, days=days)
    DevIssuer(home).kid  # noqa: B018 creates the key pair now rather than inside a timed request
    return home
