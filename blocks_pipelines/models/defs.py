"""Per-tenant Dagster assets for the dbt project: asset keys [tenant, model], group = tenant.

Two dbt asset definitions per tenant: the daily-partitioned incremental marts (see tenant_daily_partitions; vars
start/end from the partition window, one run per range: BackfillPolicy.single_run) and the unpartitioned tenant-wide
rollups. dbt tests surface
as asset checks; marts are exported to the lake after each build.

Building @dbt_assets costs ~40 ms (dbt selection + an op with ~40 outputs), too slow for 200 tenants. So each
shape is built once from the shared manifest as a template and copied per tenant with its keys, group,
partitions and translator replaced (~3 ms); the compute function reads the tenant from its asset keys.
"""

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from blocks_pipelines.models.build import build_args, dbt_resource, export_built_marts, tenant_build
from blocks_pipelines.models.project import HOURLY_MARTS, MARTS, load_manifest
from blocks_pipelines.models.refresh import build_models_refresh_sensor
from blocks_pipelines.tenants.config import TenantConfig
from blocks_pipelines.tenants.partitions import tenant_daily_partitions
from blocks_pipelines.tenants.templates import TEMPLATE_TENANT, copy_for_tenant, tenant_of

ROLLUP_MARTS = tuple(m for m in MARTS if m not in HOURLY_MARTS)
HOURLY_SELECT = " ".join(f"+{m}" for m in HOURLY_MARTS)
ROLLUP_SELECT = " ".join((*ROLLUP_MARTS, "previous_generation_families"))
TRANSLATOR_METADATA_KEY = "dagster_dbt/dagster_dbt_translator"  # where dagster-dbt finds the translator at run time
# Any valid daily partitions; every tenant's copy replaces them with its own (history_start differs).
_TEMPLATE_PARTITIONS = dg.DailyPartitionsDefinition(start_date="2020-01-01", timezone="UTC")


class TenantDbtTranslator(DagsterDbtTranslator):
    """Every dbt node (the lake source included) becomes [tenant, node name] in the tenant's group."""

    def __init__(self, tenant_id: str):
        super().__init__()
        self.tenant_id = tenant_id

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        return dg.AssetKey([self.tenant_id, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return self.tenant_id


class _TemplateTranslator(TenantDbtTranslator):
    """No group on the template: Dagster refuses to replace a group, each tenant's copy sets its own."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> None:
        return None


def _renamed_outputs(context: AssetExecutionContext, events):
    """dagster-dbt names outputs after asset keys; the shared op kept the template's output names."""
    by_key_name = {
        k.to_python_identifier(): context.assets_def.get_output_name_for_asset_key(k) for k in context.assets_def.keys
    }
    for event in events:
        if isinstance(event, dg.Output) and event.output_name in by_key_name:
            event = dg.Output(None, output_name=by_key_name[event.output_name], metadata=event.metadata)
        yield event


def _build_and_export(
    context: AssetExecutionContext, dbt: DbtCliResource, marts: tuple[str, ...], window: dg.TimeWindow | None = None
):
    tenant = tenant_of(context)
    start, end = (window.start, window.end) if window else (None, None)
    # The lake source's not-null tests are left out: ingestion refuses nulls in those columns before writing
    # (normalize.REQUIRED_VALUES), and in Dagster they could only be logged as warnings, per test, per run (the source
    # is the ingestion asset's, so they are no check of this one; as checks they would pull this op into every
    # ingestion run). run_dbt_build (benchmarks, tests) still runs them.
    args = build_args(tenant, start=start, end=end, exclude="source:lake")
    with tenant_build(tenant.id):
        yield from _renamed_outputs(context, dbt.cli(args, context=context).stream())
        context.log.info(f"exported marts: {export_built_marts(tenant.id, marts)}")


@lru_cache(maxsize=1)
def _templates() -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    manifest = load_manifest()
    translator = _TemplateTranslator(TEMPLATE_TENANT)

    @dbt_assets(
        manifest=manifest,
        select=HOURLY_SELECT,
        name="blocks_dbt_hourly",
        partitions_def=_TEMPLATE_PARTITIONS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=translator,
    )
    def hourly_models(context: AssetExecutionContext, dbt: DbtCliResource):
        yield from _build_and_export(context, dbt, HOURLY_MARTS, context.partition_time_window)

    @dbt_assets(manifest=manifest, select=ROLLUP_SELECT, name="blocks_dbt_rollups", dagster_dbt_translator=translator)
    def rollup_models(context: AssetExecutionContext, dbt: DbtCliResource):
        yield from _build_and_export(context, dbt, ROLLUP_MARTS)

    return hourly_models, rollup_models


def _for_tenant(template: dg.AssetsDefinition, tenant: TenantConfig) -> dg.AssetsDefinition:
    # One pass (keys, deps, check deps, group, partitions, translator); the op stays shared (no run config on it).
    return copy_for_tenant(
        template,
        tenant,
        rename_op=False,
        partitions_def=tenant_daily_partitions(tenant) if template.partitions_def else None,
        metadata={TRANSLATOR_METADATA_KEY: TenantDbtTranslator(tenant.id)},
    )


@lru_cache(maxsize=1)
def _shared_resource() -> DbtCliResource:
    """One resource object for every tenant, so merging 200 tenants' Definitions sees no conflicting 'dbt' key."""
    return dbt_resource()


def build_model_defs(tenant: TenantConfig) -> dg.Definitions:
    hourly, rollups = _templates()
    return dg.Definitions(
        assets=[_for_tenant(hourly, tenant), _for_tenant(rollups, tenant)],
        resources={"dbt": _shared_resource()},
    )


def build_model_location_defs(tenants: Sequence[TenantConfig]) -> dg.Definitions:
    """What the code location adds once for all its tenants: the marts refresh sensor."""
    return dg.Definitions(sensors=[build_models_refresh_sensor(tenants)])
