"""Rebuild a tenant's marts when its line items change.

A CUR delivery (or a restatement, or the local ledger's re-delivery after a purchase) rewrites some hours of
cur_line_items; this sensor launches one run over the affected UTC days of the daily-partitioned marts, plus the
tenant-wide rollups and Savings Plans monitoring, so dashboards and coverage follow the data without anyone acting.
"""

import json
from datetime import datetime, timedelta

import dagster as dg

from blocks_pipelines.tenants.config import TenantConfig
from blocks_pipelines.tenants.partitions import RANGE_END_TAG, RANGE_START_TAG, tenant_daily_partitions

# Proposals and purchases are decisions, not derived data: they never run just because data changed.
NOT_REFRESHED = ("sp_proposals", "sp_approvals", "sp_purchases")


def affected_days(partition_keys: list[str]) -> tuple[str, str] | None:
    """First and last UTC day (YYYY-MM-DD) touched by hourly (YYYY-MM-DD-HH:MM) or daily (YYYY-MM-DD) keys."""
    days = sorted({k[:10] for k in partition_keys if k})
    return (days[0], days[-1]) if days else None


def _replaced_day_keys(materialization: dg.AssetMaterialization | None) -> list[str]:
    """First and last day of the hours an ingestion replaced: a month's delivery may date a few line items outside
    the run's partitions (they belong to its bill), and their days' marts must follow too."""
    value = materialization.metadata.get("replaced_hours") if materialization else None
    if value is None or len(value.value) != 2:
        return []
    start, end = (datetime.fromisoformat(t) for t in value.value)
    return [start.date().isoformat(), (end - timedelta(microseconds=1)).date().isoformat()]


def _changed_partitions(instance: dg.DagsterInstance, key: dg.AssetKey,
                        after: int | None) -> tuple[list[str], int | None]:
    """Partition keys of key's materializations after storage id `after`, and the last storage id seen."""
    keys: list[str] = []
    last = after
    while True:
        page = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_storage_id=last), limit=5000, ascending=True
        )
        for r in page.records:
            keys += [r.partition_key] if r.partition_key else []
            keys += _replaced_day_keys(r.asset_materialization)
        if page.records:
            last = page.records[-1].storage_id
        if not page.has_more:
            return keys, last


def build_models_refresh_sensor(tenant: TenantConfig) -> dg.SensorDefinition:
    t = tenant.id
    line_items = dg.AssetKey([t, "cur_line_items"])
    # Cost Explorer rows land in the same lake table until CUR arrives; its daily keys map to days as hourly ones do
    sources = (line_items, dg.AssetKey([t, "cost_explorer_line_items"]))
    target = dg.AssetSelection.keys(line_items).downstream(include_self=False) - dg.AssetSelection.keys(
        *(dg.AssetKey([t, name]) for name in NOT_REFRESHED)
    )
    daily = tenant_daily_partitions(tenant)
    marts_probe = dg.AssetKey([t, "spend_hourly"])  # built last in every mart run that follows the line items

    @dg.sensor(
        name=f"{t}__models_refresh_sensor", asset_selection=target, minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Rebuilds {t}'s marts over the days whose line items changed, then rollups and monitoring.",
    )
    def models_refresh_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        after = json.loads(context.cursor)["after"] if context.cursor else None
        # Line items already followed by a mart build (e.g. `blocks materialize`) need no refresh.
        built = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=marts_probe), limit=1, ascending=False
        ).records
        if built and (after is None or built[0].storage_id > after):
            after = built[0].storage_id
        keys: list[str] = []
        last = after
        for source in sources:
            source_keys, source_last = _changed_partitions(context.instance, source, after)
            keys += source_keys
            last = max((i for i in (last, source_last) if i is not None), default=None)
        span = affected_days(keys)
        if span is None or last is None:
            return dg.SensorResult(cursor=json.dumps({"after": last}) if last else context.cursor)
        first_day, last_day = daily.get_first_partition_key(), daily.get_last_partition_key()
        end = min(span[1], last_day) if last_day else span[1]
        start = min(max(span[0], first_day) if first_day else span[0], end)
        context.log.info(f"{t}: line items changed on {span[0]}..{span[1]}; rebuilding marts {start}..{end}")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"refresh-{last}", tags={RANGE_START_TAG: start, RANGE_END_TAG: end,
                                                                          "blocks/tenant": t})],
            cursor=json.dumps({"after": last}),
        )

    return models_refresh_sensor
