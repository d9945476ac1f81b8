"""Dagster: each tenant's `cost_explorer_line_items` asset and the sensor that keeps it fresh until CUR arrives.

Why an asset, daily partitioned: what it produces is lake data (rows of cur_line_items marked
source_format=cost_explorer), so lineage, materialization history and metadata belong in the asset graph. Cost
Explorer's finest reach beyond 14 days is a day, and the marts downstream are daily, so a day is the natural
partition: the models refresh sensor reads the changed days from the partition keys as it does for cur_line_items'
hours, the UI shows which days came from Cost Explorer, and a range of days can be re-pulled from it. A range is one
run (BackfillPolicy.single_run): one Cost Explorer pull, paged, for the whole range.

The asset is decorated once as a template and copied per tenant, like cur_line_items (tenants/templates.py).
"""

# no `from __future__ import annotations`: Dagster reads the asset function's real annotations

import json
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext, SensorEvaluationContext

from blocks_pipelines.sensor_intervals import every
from blocks_pipelines.tenants.config import TenantConfig
from blocks_pipelines.tenants.partitions import RANGE_END_TAG, RANGE_START_TAG, tenant_daily_partitions
from blocks_pipelines.tenants.templates import copy_for_tenant, template_key, tenant_of

COST_EXPLORER_TABLE = "cost_explorer_line_items"
RESOURCE_KEY = "cost_explorer"
SOURCE_TAG = "blocks/source"
# AWS refreshes billing data up to three times a day and every request costs $0.01: refreshing more often buys nothing.
REFRESH_EVERY = timedelta(hours=6)
HOURLY_DAYS = 14  # blocks_pipelines.ingestion.cost_explorer.HOURLY_DAYS, without importing polars to build definitions


class CostExplorerClients(dg.ConfigurableResource):
    """Cost Explorer clients through each tenant's assumed data-read role (tests swap in stubbed clients)."""

    def client_for(self, tenant: TenantConfig) -> Any:
        import boto3

        from blocks_pipelines.ingestion.cost_explorer import cost_explorer_client

        return cost_explorer_client(boto3.Session(), tenant)


@lru_cache(maxsize=1)
def _shared_resource() -> CostExplorerClients:
    """One resource object for every tenant, so merging many tenants' Definitions sees no conflicting key."""
    return CostExplorerClients()


def _metadata(result) -> dict:
    s, log = result.summary, result.requests
    costs = list(result.cost_by_day.values())
    md = {
        "rows": dg.MetadataValue.int(s.rows),
        "days_written": dg.MetadataValue.int(s.days_written),
        "day_range": dg.MetadataValue.text(f"{result.first_day} / {result.end_day} (end excluded)"),
        "days_with_cur": dg.MetadataValue.int(len(result.days_with_cur)),
        "cost_by_day": dg.MetadataValue.json(result.cost_by_day),
        "requests": dg.MetadataValue.int(log.requests),
        "throttled": dg.MetadataValue.int(log.throttled),
        "unblended_cost": dg.MetadataValue.float(round(sum(costs), 6)),
    }
    if costs:
        md["daily_cost_min"] = dg.MetadataValue.float(min(costs))
        md["daily_cost_max"] = dg.MetadataValue.float(max(costs))
    if log.hourly_refused:
        md["hourly_refused"] = dg.MetadataValue.text(log.hourly_refused)
    return md


def _skipped(reason: str) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"skipped": dg.MetadataValue.text(reason), "rows": dg.MetadataValue.int(0)})


def _cost_explorer_line_items(
    context: AssetExecutionContext, cost_explorer: CostExplorerClients
) -> dg.MaterializeResult:
    from blocks_pipelines.ingestion.cost_explorer import backfill_bounds, backfill_from_cost_explorer, skip_reason

    tenant = tenant_of(context)
    reason = skip_reason(tenant)
    if reason:
        context.log.info(f"skipped: {reason}")
        return _skipped(reason)
    window = context.partition_time_window
    now = datetime.now(timezone.utc)
    start, end = backfill_bounds(tenant, window.start.date(), window.end.date(), now)
    if start >= end:
        return _skipped(f"{window.start.date()} .. {window.end.date()} is older than what Cost Explorer keeps")
    result = backfill_from_cost_explorer(tenant, start, end, client=cost_explorer.client_for(tenant), now=now)
    context.log.info(
        f"{tenant.id}: {result.summary.rows} Cost Explorer rows over {result.summary.days_written} "
        f"days, {result.requests.requests} requests"
    )
    return dg.MaterializeResult(metadata=_metadata(result))


@lru_cache(maxsize=1)
def _template() -> dg.AssetsDefinition:
    # any daily partitions: every copy replaces them with its tenant's (history_start differs)
    partitions = dg.DailyPartitionsDefinition(start_date="2020-01-01", timezone="UTC")
    return dg.asset(
        key=template_key(COST_EXPLORER_TABLE),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"aws", "parquet"},
    )(_cost_explorer_line_items)


def _days(first: date, end: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((end - first).days)]


def plan_refresh(tenant: TenantConfig, pulled_days: set[str], now: datetime) -> tuple[str, str] | None:
    """Daily partition keys [first, last] for the next pull: from the oldest day Cost Explorer still keeps that was
    never pulled (a first backfill, or one that failed), else the last 14 days (hourly, still changing), to today."""
    from blocks_pipelines.ingestion.cost_explorer import backfill_bounds

    today = now.date()
    first, end = backfill_bounds(tenant, None, None, now)
    hourly_from = max(first, today - timedelta(days=HOURLY_DAYS - 1))
    missing = [d for d in _days(first, hourly_from) if d.isoformat() not in pulled_days]
    start = missing[0] if missing else hourly_from
    if start >= end:
        return None
    return start.isoformat(), (end - timedelta(days=1)).isoformat()


def tenant_tick(
    instance: dg.DagsterInstance, tenant: TenantConfig, key: dg.AssetKey, cursor: dict, now: datetime
) -> tuple[dg.RunRequest | None, str]:
    """One tenant's turn: the Cost Explorer pull it needs now (asset `key`, days range), or why none. `cursor` is the
    tenant's own ({last_request, cur_delivered}) and is updated in place. Only a due pull reads S3 and the instance."""
    from blocks_pipelines.ingestion.cost_explorer import skip_reason
    from blocks_pipelines.ingestion.deliveries import discover_deliveries

    reason = skip_reason(tenant)
    if reason:
        return None, reason
    if cursor.get("cur_delivered"):
        # CUR now feeds the lake (and replaces Cost Explorer rows month by month): no more paid requests
        return None, f"CUR delivered (first seen {cursor['cur_delivered']}): Cost Explorer no longer pulled"
    last = cursor.get("last_request")
    if last and now - datetime.fromisoformat(last) < REFRESH_EVERY:
        return None, f"pulled at {last}; next pull after {(datetime.fromisoformat(last) + REFRESH_EVERY).isoformat()}"
    if discover_deliveries(tenant, today=now.date()):  # listed only when a pull is due: CUR's sensor watches too
        cursor["cur_delivered"] = now.isoformat()
        return None, f"CUR delivered (first seen {cursor['cur_delivered']}): Cost Explorer no longer pulled"
    keys = plan_refresh(tenant, instance.get_materialized_partitions(key), now)
    if keys is None:
        return None, "nothing Cost Explorer keeps is left to pull"
    cursor["last_request"] = now.isoformat()
    return dg.RunRequest(
        run_key=f"{tenant.id}:cost-explorer-{keys[0]}-{keys[1]}-{now:%Y%m%dT%H%M}",
        asset_selection=[key],
        tags={
            RANGE_START_TAG: keys[0],
            RANGE_END_TAG: keys[1],
            SOURCE_TAG: "cost_explorer",
            "blocks/tenant": tenant.id,
        },
    ), ""


LOCATION_BUDGET_SECONDS = 40.0  # of the 60 s interval, for the tenants whose pull is due (they read S3)


def cost_explorer_location_sensor(
    tenants: Sequence[TenantConfig], budget_seconds: float = LOCATION_BUDGET_SECONDS
) -> dg.SensorDefinition:
    """Every tenant of the code location in one sensor (issue #16): a tenant whose pull is not due costs a few
    comparisons; due ones (S3 listing, partitions read) are served in turn within the time budget."""
    from blocks_pipelines.tenants.rotation import rotation

    by_id = {t.id: t for t in tenants if can_use_cost_explorer(t)}
    keys = {t: dg.AssetKey([t, COST_EXPLORER_TABLE]) for t in by_id}

    @dg.sensor(
        name="cost_explorer_sensor",
        asset_selection=sorted(keys.values()),
        minimum_interval_seconds=every(60),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Until each tenant's first CUR delivery: backfills its history from Cost Explorer, then "
        f"re-pulls the last {HOURLY_DAYS} days (hourly) at most every {REFRESH_EVERY}.",
    )
    def cost_explorer_location_tick(context: SensorEvaluationContext) -> dg.SensorResult:
        import time

        cursor = json.loads(context.cursor) if context.cursor else {}
        states: dict[str, dict] = cursor.setdefault("tenants", {})
        now, started, requests, stopped_at = datetime.now(timezone.utc), time.monotonic(), [], None
        reasons: list[str] = []
        for t in rotation(list(by_id), cursor.get("after")):
            request, reason = tenant_tick(context.instance, by_id[t], keys[t], states.setdefault(t, {}), now)
            reasons += [f"{t}: {reason}"] if reason else []
            if not states[t]:
                del states[t]  # nothing to remember (local sample data, no scope): the cursor stays small
            stopped_at = t
            if request is not None:
                context.log.info(
                    f"{t}: Cost Explorer pull {request.tags[RANGE_START_TAG]} .. {request.tags[RANGE_END_TAG]}"
                )
                requests.append(request)
            if time.monotonic() - started > budget_seconds:
                context.log.info(f"time budget ({budget_seconds:.0f} s) used: resuming after {t}")
                break
        else:
            stopped_at = None
        cursor["after"] = stopped_at
        for gone in set(states) - set(by_id):
            del states[gone]
        skip = None if requests else "; ".join(reasons[:3]) + (f" (and {len(reasons) - 3} more)" if reasons[3:] else "")
        return dg.SensorResult(
            run_requests=requests, skip_reason=skip or None, cursor=json.dumps(cursor, separators=(",", ":"))
        )

    return cost_explorer_location_tick


def can_use_cost_explorer(tenant: TenantConfig) -> bool:
    """Whether the tenant gets the asset at all (cost_explorer.skip_reason's rules, without importing polars): a
    tenant whose CUR is local sample data has no AWS account to ask, so the asset would only ever skip, and the UI
    would show its whole history as missing partitions of an asset that can never run."""
    return tenant.cur_source.is_s3 and "data_read" in tenant.connection.scopes


def cost_explorer_asset(tenant: TenantConfig) -> dg.AssetsDefinition:
    return copy_for_tenant(
        _template(),
        tenant,
        partitions_def=tenant_daily_partitions(tenant),
        description=f"{tenant.name}: Cost Explorer spend (per day, hourly for the last {HOURLY_DAYS} days) in the "
        "lake's line items, for days without CUR; CUR replaces it month by month.",
    )


def cost_explorer_resources() -> dict[str, CostExplorerClients]:
    return {RESOURCE_KEY: _shared_resource()}
