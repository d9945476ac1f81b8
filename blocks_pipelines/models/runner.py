"""Run one tenant's dbt build programmatically (dbtRunner), then export its marts to the lake."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from blocks_pipelines.lake.layout import line_items_tenant_prefix
from blocks_pipelines.lake.months import current_months
from blocks_pipelines.models.achievable import achievable_daily_savings
from blocks_pipelines.models.export import export_marts
from blocks_pipelines.models.project import ensure_dbt_env, project_dir
from blocks_pipelines.models.vars import dbt_vars
from blocks_pipelines.tenants.config import resolve_tenant
from blocks_pipelines.models.warehouse import warehouse_lock
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state import StateStore, get_state_store
from blocks_pipelines.tenants.config import TenantConfig


@dataclass(frozen=True)
class DbtBuildResult:
    tenant_id: str
    success: bool
    statuses: dict[str, str]  # dbt unique_id -> status (success, error, pass, fail, skipped, ...)
    failures: list[str]  # one line per failed node or test, with dbt's message
    exported: dict[str, str] = field(default_factory=dict)  # mart -> lake uri
    seconds: float = 0.0


def build_args(vars_: dict, target_path: Path, select: str | None, command: str = "build") -> list[str]:
    root = project_dir()
    args = [
        command,
        "--project-dir", str(root),
        "--profiles-dir", str(root),
        "--target", get_settings().dbt_target,
        "--target-path", str(target_path),
        "--log-path", str(target_path),
        "--vars", json.dumps(vars_),
    ]
    if select:
        args += ["--select", select]
    return args


def _require_line_items(tenant_id: str) -> None:
    prefix = line_items_tenant_prefix(get_settings().lake_uri, tenant_id)
    if not any(m.files for m in current_months(get_settings().lake_uri, tenant_id)):
        raise FileNotFoundError(f"{prefix}: no line items for tenant {tenant_id!r}; ingest its CUR first "
                                "(blocks ingest)")


def run_dbt_build(
    tenant: TenantConfig | str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    select: str | None = None,
    store: StateStore | None = None,
) -> DbtBuildResult:
    """`dbt build` for one tenant (its own DuckDB file, or its partitions on Athena), then export the marts.

    start/end (end exclusive) limit the hours the incremental marts rebuild; None rebuilds everything.
    The state store (default: the configured one) supplies the SP analyzer's latest proposal, if any.
    Marts are exported only after a successful build on the DuckDB target.
    """
    from dbt.cli.main import dbtRunner

    tenant = resolve_tenant(tenant)
    settings = get_settings()
    _require_line_items(tenant.id)
    ensure_dbt_env()
    # A private target path per run: concurrent tenants never share partial-parse or run_results files.
    target_path = project_dir() / "target" / "runs" / f"{tenant.id}-{uuid.uuid4().hex[:8]}"
    daily_savings = achievable_daily_savings(store or get_state_store(), tenant.id)
    vars_ = dbt_vars(tenant, start=start, end=end, achievable_daily_savings=daily_savings)
    started = time.perf_counter()
    with warehouse_lock(tenant.id):
        res = dbtRunner().invoke(build_args(vars_, target_path, select))
        success, statuses, failures = _outcome(res)
        exported = export_marts(tenant.id) if success and settings.dbt_target == "duckdb" else {}
    if success:
        shutil.rmtree(target_path, ignore_errors=True)
    else:  # keep the compiled SQL and logs of a failed run for the person debugging it
        failures.append(f"compiled SQL and dbt.log kept in {target_path}")
    return DbtBuildResult(tenant.id, success, statuses, failures, exported, time.perf_counter() - started)


def _outcome(res) -> tuple[bool, dict[str, str], list[str]]:
    statuses, failures = {}, []
    for r in getattr(res.result, "results", None) or []:
        status = str(r.status)
        statuses[r.node.unique_id] = status
        if status in ("error", "fail", "runtime error"):
            failures.append(f"{r.node.unique_id}: {status}: {r.message}")
    if res.exception is not None:
        failures.append(f"dbt raised: {res.exception}")
    return bool(res.success) and not failures, statuses, failures
