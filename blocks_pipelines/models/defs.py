"""Per-tenant Dagster assets for the dbt project: asset keys [tenant, model], group = tenant.

Two @dbt_assets per tenant share one parsed manifest: the hourly-partitioned incremental marts (vars start/end
from the partition window, one run per range) and the unpartitioned tenant-wide rollups. dbt tests surface as
asset checks; marts are exported to the lake after each build.
"""

import json
import sys
from pathlib import Path
from typing import Any, Mapping

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from blocks_pipelines.models.achievable import achievable_daily_savings
from blocks_pipelines.models.export import export_marts
from blocks_pipelines.models.project import HOURLY_MARTS, MARTS, ensure_dbt_env, load_manifest, project_dir
from blocks_pipelines.models.vars import dbt_vars
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state import get_state_store
from blocks_pipelines.tenants.config import TenantConfig
from blocks_pipelines.tenants.partitions import tenant_hourly_partitions

ROLLUP_MARTS = tuple(m for m in MARTS if m not in HOURLY_MARTS)
HOURLY_SELECT = " ".join(f"+{m}" for m in HOURLY_MARTS)
ROLLUP_SELECT = " ".join((*ROLLUP_MARTS, "previous_generation_families"))


class TenantDbtTranslator(DagsterDbtTranslator):
    """Every dbt node (the lake source included) becomes [tenant, node name] in the tenant's group."""

    def __init__(self, tenant_id: str):
        super().__init__()
        self.tenant_id = tenant_id

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        return dg.AssetKey([self.tenant_id, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return self.tenant_id


def dbt_resource() -> DbtCliResource:
    # The venv's dbt, found even when the venv's bin folder is not on PATH (Dagster started by its full path).
    venv_dbt = Path(sys.executable).with_name("dbt")
    return DbtCliResource(
        project_dir=str(project_dir()),
        profiles_dir=str(project_dir()),
        target=get_settings().dbt_target,
        dbt_executable=str(venv_dbt) if venv_dbt.exists() else "dbt",
    )


def _vars_json(tenant: TenantConfig, window: dg.TimeWindow | None = None) -> str:
    start, end = (window.start, window.end) if window else (None, None)
    savings = achievable_daily_savings(get_state_store(), tenant.id)
    return json.dumps(dbt_vars(tenant, start=start, end=end, achievable_daily_savings=savings))


def build_model_defs(tenant: TenantConfig) -> dg.Definitions:
    manifest = load_manifest()
    translator = TenantDbtTranslator(tenant.id)

    @dbt_assets(
        manifest=manifest,
        select=HOURLY_SELECT,
        name=f"{tenant.id}__dbt_hourly",
        partitions_def=tenant_hourly_partitions(tenant),
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=translator,
        pool=f"duckdb_{tenant.id}",  # one writer per DuckDB file
    )
    def hourly_models(context: AssetExecutionContext, dbt: DbtCliResource):
        ensure_dbt_env()
        args = ["build", "--vars", _vars_json(tenant, context.partition_time_window)]
        yield from dbt.cli(args, context=context).stream()
        if get_settings().dbt_target == "duckdb":
            context.log.info(f"exported {export_marts(tenant.id, HOURLY_MARTS)}")

    @dbt_assets(
        manifest=manifest,
        select=ROLLUP_SELECT,
        name=f"{tenant.id}__dbt_rollups",
        dagster_dbt_translator=translator,
        pool=f"duckdb_{tenant.id}",
    )
    def rollup_models(context: AssetExecutionContext, dbt: DbtCliResource):
        ensure_dbt_env()
        yield from dbt.cli(["build", "--vars", _vars_json(tenant)], context=context).stream()
        if get_settings().dbt_target == "duckdb":
            context.log.info(f"exported {export_marts(tenant.id, ROLLUP_MARTS)}")

    return dg.Definitions(assets=[hourly_models, rollup_models], resources={"dbt": _shared_resource()})


_RESOURCE: "DbtCliResource | None" = None


def _shared_resource() -> DbtCliResource:
    """One resource object for every tenant, so merging 200 tenants' Definitions sees no conflicting 'dbt' key."""
    global _RESOURCE
    if _RESOURCE is None:
        _RESOURCE = dbt_resource()
    return _RESOURCE
