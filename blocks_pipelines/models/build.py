"""The one way a tenant's dbt build runs: Dagster's dbt assets, `blocks materialize` (which runs those assets), the
tests and the benchmarks all invoke dbt through `dbt_resource()` with `build_args`, inside `tenant_build` (the
line-items precondition and the warehouse lock), and export the marts with `export_built_marts`.

`run_dbt_build` is that path without a Dagster run around it: the same resource, arguments, lock and export, with
dbt's run results returned instead of streamed as Dagster events.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from blocks_pipelines.lake.layout import line_items_tenant_prefix
from blocks_pipelines.lake.months import current_months
from blocks_pipelines.models.achievable import achievable_daily_savings
from blocks_pipelines.models.project import MARTS, ensure_dbt_env, project_dir
from blocks_pipelines.models.vars import dbt_vars
from blocks_pipelines.models.warehouse import warehouse_lock
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state import StateStore, get_state_store
from blocks_pipelines.tenants.config import TenantConfig, resolve_tenant

if TYPE_CHECKING:
    from dagster_dbt import DbtCliResource

FAILED_STATUSES = ("error", "fail", "runtime error")


@dataclass(frozen=True)
class DbtBuildResult:
    tenant_id: str
    success: bool
    statuses: dict[str, str]  # dbt unique_id -> status (success, error, pass, fail, skipped, ...)
    failures: list[str]  # one line per failed node or test, with dbt's message
    exported: dict[str, str] = field(default_factory=dict)  # mart -> lake uri
    seconds: float = 0.0
    failing_rows: dict[str, int] = field(default_factory=dict)  # failed test name -> rows it returned


def dbt_resource() -> DbtCliResource:
    from dagster_dbt import DbtCliResource

    # The venv's dbt, found even when the venv's bin folder is not on PATH (Dagster started by its full path).
    venv_dbt = Path(sys.executable).with_name("dbt")
    return DbtCliResource(
        project_dir=str(project_dir()),
        profiles_dir=str(project_dir()),
        target=get_settings().dbt_target,
        dbt_executable=str(venv_dbt) if venv_dbt.exists() else "dbt",
    )


def build_args(
    tenant: TenantConfig,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    select: str | None = None,
    exclude: str | None = None,
    command: str = "build",
    store: StateStore | None = None,
) -> list[str]:
    """dbt arguments for one tenant: its vars (hour range, accounts, the analyzer's achievable savings) and, outside
    a Dagster run, the selection (inside one, dagster-dbt adds the selection of the assets being materialized).

    start/end (end exclusive) limit the hours the incremental marts rebuild; None rebuilds everything."""
    savings = achievable_daily_savings(store or get_state_store(), tenant.id)
    args = [command, "--vars", json.dumps(dbt_vars(tenant, start=start, end=end, achievable_daily_savings=savings))]
    if command == "build":
        # buildable: a test runs when its parents are built here or upstream (the spend_daily totals test reads
        # staging too, but belongs to the rollup run, not the hourly one).
        args += ["--indirect-selection", "buildable"]
    if select:
        args += ["--select", select]
    if exclude:
        args += ["--exclude", exclude]
    return args


def require_line_items(tenant_id: str) -> None:
    prefix = line_items_tenant_prefix(get_settings().lake_uri, tenant_id)
    if not any(m.files for m in current_months(get_settings().lake_uri, tenant_id)):
        raise FileNotFoundError(
            f"{prefix}: no line items for tenant {tenant_id!r}; ingest its CUR first (blocks ingest)"
        )


@contextmanager
def tenant_build(tenant_id: str) -> Iterator[None]:
    """Around every dbt build of a tenant: its line items exist (else an actionable error, not a dbt stack trace
    about an empty glob), and its warehouse has one writer at a time."""
    require_line_items(tenant_id)
    ensure_dbt_env()
    with warehouse_lock(tenant_id):
        yield


def export_built_marts(tenant_id: str, marts: tuple[str, ...] = MARTS) -> dict[str, str]:
    """On DuckDB the marts are published to the lake for serving; on Athena the marts are already tables."""
    if get_settings().dbt_target != "duckdb":
        return {}
    from blocks_pipelines.models.export import export_marts  # duckdb: imported to export, not to load

    return export_marts(tenant_id, marts)


def run_dbt_build(
    tenant: TenantConfig | str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    select: str | None = None,
    command: str = "build",
    store: StateStore | None = None,
) -> DbtBuildResult:
    """The Dagster path's dbt invocation for one tenant, run without Dagster; marts exported after a successful
    build. A failed run keeps its compiled SQL and dbt.log for the person debugging it."""
    tenant = resolve_tenant(tenant)
    target_path = project_dir() / "target" / "runs" / f"{tenant.id}-{uuid.uuid4().hex[:8]}"
    args = build_args(tenant, start=start, end=end, select=select, command=command, store=store)
    started = time.perf_counter()
    with tenant_build(tenant.id):
        invocation = dbt_resource().cli(args, raise_on_error=False, target_path=target_path)
        invocation.wait()
        success, statuses, failures, failing_rows = _outcome(target_path, invocation.is_successful())
        exported = export_built_marts(tenant.id) if success and command == "build" else {}
    if success:
        shutil.rmtree(target_path, ignore_errors=True)
    else:
        failures.append(f"compiled SQL and dbt.log kept in {target_path}")
    return DbtBuildResult(tenant.id, success, statuses, failures, exported, time.perf_counter() - started, failing_rows)


def _outcome(target_path: Path, exited_ok: bool) -> tuple[bool, dict[str, str], list[str], dict[str, int]]:
    run_results = target_path / "run_results.json"
    if not run_results.exists():
        return False, {}, [f"dbt wrote no run results (see {target_path / 'dbt.log'})"], {}
    statuses, failures, failing_rows = {}, [], {}
    for r in json.loads(run_results.read_text())["results"]:
        statuses[r["unique_id"]] = r["status"]
        if r["status"] in FAILED_STATUSES:
            failures.append(f"{r['unique_id']}: {r['status']}: {r.get('message')}")
            if r.get("failures"):
                failing_rows[r["unique_id"].split(".")[2]] = r["failures"]
    if not exited_ok and not failures:
        failures.append(f"dbt exited with an error (see {target_path / 'dbt.log'})")
    return exited_ok and not failures, statuses, failures, failing_rows
