"""Rebuild a tenant's marts when its line items change.

A CUR delivery (or a restatement, or the local ledger's re-delivery after a purchase) rewrites some hours of
cur_line_items; this sensor launches one run over the affected UTC days of the daily-partitioned marts, plus the
tenant-wide rollups and Savings Plans monitoring, so dashboards and coverage follow the data without anyone acting.
"""

import json
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import dagster as dg

from blocks_pipelines.sensor_intervals import every
from blocks_pipelines.tenants.config import TenantConfig
from blocks_pipelines.tenants.event_feed import AssetEvent, asset_events_after
from blocks_pipelines.tenants.partitions import RANGE_END_TAG, RANGE_START_TAG, tenant_daily_partitions

# Proposals and purchases are decisions, not derived data: they never run just because data changed.
NOT_REFRESHED = ("sp_proposals", "sp_approvals", "sp_purchases")
# Cost Explorer rows land in the same lake table until CUR arrives; its daily keys map to days as hourly ones do
SOURCES = ("cur_line_items", "cost_explorer_line_items")
MARTS_PROBE = "spend_hourly"  # built last in every mart run that follows the line items
# One event-log query per tick whatever the tenant count (p50 0.23 s at 200 tenants a location): ticking often is
# what makes a delivery reach the API within a minute (issue #16). The waits for this tick and the queue sensor's
# add up to two uniform draws on a ~40 s path (bench_freshness_daemon.py): with 15 s here and 10 s there, the p95
# of their sum is ~21 s, ~61 s in all; with 10 s for both, ~17 s.
REFRESH_INTERVAL_SECONDS = 10
# A month run writes its ~744 hourly materializations over a few seconds: a tick in the middle saw half of them and
# launched a second marts run for the rest (benchmarks/bench_freshness_daemon.py). The first tick that sees a run
# still going launches one marts run over the whole range the run was asked for (its range tags), and the run's
# later line items within that range are skipped: the marts run cannot start before the month run ends (one run per
# tenant at a time), so it reads all of them. A run is remembered this long, far longer than a month run takes.
COVER_SECONDS = 600


def affected_days(partition_keys: list[str]) -> tuple[str, str] | None:
    """First and last UTC day (YYYY-MM-DD) touched by hourly (YYYY-MM-DD-HH:MM) or daily (YYYY-MM-DD) keys."""
    days = sorted({k[:10] for k in partition_keys if k})
    return (days[0], days[-1]) if days else None


def _replaced_day_keys(metadata: dict) -> list[str]:
    """First and last day of the hours an ingestion replaced: a month's delivery may date a few line items outside
    the run's partitions (they belong to its bill), and their days' marts must follow too."""
    value = metadata.get("replaced_hours")
    if value is None or len(value.value) != 2:
        return []
    start, end = (datetime.fromisoformat(t) for t in value.value)
    return [start.date().isoformat(), (end - timedelta(microseconds=1)).date().isoformat()]


def _changed_keys(event: AssetEvent) -> list[str]:
    """The partition keys a line-item event changed: its partition and the days its delivery replaced."""
    return ([event.partition] if event.partition else []) + _replaced_day_keys(event.metadata)


def changed_keys_by_tenant(
    events: list[AssetEvent], built_before: dict[str, int] | None = None
) -> dict[str, tuple[list[str], int]]:
    """Per tenant, the partition keys (and replaced days) of its changed line items that no mart build followed,
    and the storage id of the last one. Line items already followed by a mart build (e.g. `blocks materialize`)
    need no refresh: only those after the tenant's last MARTS_PROBE event count (in `events`, else in
    `built_before`: storage id of each tenant's last mart build, known when the sensor starts)."""
    built = dict(built_before or {})
    built.update({e.tenant_id: e.storage_id for e in events if e.name == MARTS_PROBE})
    out: dict[str, tuple[list[str], int]] = {}
    for e in events:
        if e.name == MARTS_PROBE or e.storage_id < built.get(e.tenant_id, -1):
            continue
        keys, _ = out.get(e.tenant_id, ([], 0))
        keys += _changed_keys(e)
        out[e.tenant_id] = (keys, e.storage_id)
    return out


def covering_runs(
    instance: dg.DagsterInstance, events: list[AssetEvent], covering: dict[str, dict]
) -> dict[str, tuple[str, tuple[str, str]]]:
    """The runs still going among the line items' events and not yet covered: run id -> (tenant, (first day, last
    day) of the range the run was asked for). Runs without a range (a single partition) are not covered."""
    tenant_of_run = {
        e.run_id: e.tenant_id for e in events if e.name in SOURCES and e.run_id and e.run_id not in covering
    }
    if not tenant_of_run:
        return {}
    out = {}
    for record in instance.get_run_records(filters=dg.RunsFilter(run_ids=sorted(tenant_of_run))):
        run = record.dagster_run
        if not run.is_finished and RANGE_START_TAG in run.tags and RANGE_END_TAG in run.tags:
            span = affected_days([run.tags[RANGE_START_TAG], run.tags[RANGE_END_TAG]])
            out[run.run_id] = (tenant_of_run[run.run_id], span)
    return out


def is_covered(event: AssetEvent, covering: dict[str, dict]) -> bool:
    """A line-item event of a run a launched refresh already spans (its days all inside the run's range)."""
    cover = covering.get(event.run_id) if event.run_id else None
    if cover is None or event.name not in SOURCES:
        return False
    span = affected_days(_changed_keys(event))
    return span is None or (cover["days"][0] <= span[0] and span[1] <= cover["days"][1])


def _target(tenant_ids: Sequence[str]) -> dg.AssetSelection:
    """What follows the line items, minus the decisions; only what a run can materialize: the daemon refuses a run
    request naming an asset nothing computes (sp_proposal_status, downstream of sp_proposals)."""
    line_items = [dg.AssetKey([t, "cur_line_items"]) for t in tenant_ids]
    downstream = dg.AssetSelection.keys(*line_items).downstream(include_self=False) - dg.AssetSelection.keys(
        *(dg.AssetKey([t, name]) for t in tenant_ids for name in NOT_REFRESHED)
    )
    return downstream.materializable()


def _refresh_request(tenant: TenantConfig, keys: list[str], last: int, asset_graph) -> dg.RunRequest | None:
    span = affected_days(keys)
    if span is None:
        return None
    daily = tenant_daily_partitions(tenant)
    first_day, last_day = daily.get_first_partition_key(), daily.get_last_partition_key()
    end = min(span[1], last_day) if last_day else span[1]
    start = min(max(span[0], first_day) if first_day else span[0], end)
    return dg.RunRequest(
        run_key=f"{tenant.id}:refresh-{last}",
        asset_selection=sorted(_target([tenant.id]).resolve(asset_graph)),
        tags={RANGE_START_TAG: start, RANGE_END_TAG: end, "blocks/tenant": tenant.id},
    )


def _last_mart_builds(instance: dg.DagsterInstance, tenant_ids) -> dict[str, int]:
    """Storage id of each tenant's last MARTS_PROBE materialization (tenants never built are absent): one query per
    tenant, on the sensor's first tick only."""
    out = {}
    for t in tenant_ids:
        records = instance.fetch_materializations(dg.AssetKey([t, MARTS_PROBE]), limit=1, ascending=False).records
        if records:
            out[t] = records[0].storage_id
    return out


def build_models_refresh_sensor(tenants: Sequence[TenantConfig]) -> dg.SensorDefinition:
    """One sensor for every tenant of the code location: it reads the materializations after its cursor once per
    tick (tenants/event_feed.py) and launches one run per tenant whose line items changed."""
    by_id = {t.id: t for t in tenants}
    target = _target(list(by_id))

    @dg.sensor(
        name="models_refresh_sensor",
        asset_selection=target,
        minimum_interval_seconds=every(REFRESH_INTERVAL_SECONDS),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Rebuilds each tenant's marts over the days whose line items changed, then rollups and "
        "monitoring (one run per tenant and tick).",
    )
    def models_refresh_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        built_before: dict[str, int] = {}
        state = json.loads(context.cursor) if context.cursor else None
        if state is not None:
            after = state["after"]
        else:
            # first tick (a new deployment, or the per-tenant sensors this replaces): start after the oldest of the
            # tenants' last mart builds instead of reading the whole event log's history
            built_before = _last_mart_builds(context.instance, by_id)
            after = min(built_before.values()) if len(built_before) == len(by_id) else None
        now = time.time()
        covering = {r: c for r, c in (state or {}).get("covering", {}).items() if now - c["at"] < COVER_SECONDS}
        events, last = asset_events_after(
            context.instance, dg.DagsterEventType.ASSET_MATERIALIZATION, after, (*SOURCES, MARTS_PROBE), by_id
        )
        events = [e for e in events if not is_covered(e, covering)]
        changed = changed_keys_by_tenant(events, built_before)
        for run_id, (t, span) in covering_runs(context.instance, events, covering).items():
            if t in changed:  # its marts run spans the whole month run: the run's later line items are read too
                keys, last_t = changed[t]
                changed[t] = ([*keys, *span], last_t)
                covering[run_id] = {"days": list(span), "at": now}
        requests = []
        for t, (keys, last_t) in changed.items():
            request = _refresh_request(by_id[t], keys, last_t, context.repository_def.asset_graph)
            if request is not None:
                context.log.info(
                    f"{t}: line items changed; rebuilding marts {request.tags[RANGE_START_TAG]}.."
                    f"{request.tags[RANGE_END_TAG]}"
                )
                requests.append(request)
        # stored even when nothing was read yet ({"after": null}): the first-tick lookups are done once
        return dg.SensorResult(run_requests=requests, cursor=json.dumps({"after": last, "covering": covering}))

    return models_refresh_sensor
