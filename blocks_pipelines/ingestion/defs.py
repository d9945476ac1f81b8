"""Dagster: each tenant's hourly-partitioned `cur_line_items` asset, its blocking checks and the run a delivery asks.

The asset is decorated once as a template and copied per tenant (blocks_pipelines.tenants.templates, issue #2); the
ingestion modules (polars) are imported by the asset body and the sensor, not to build the definitions."""

# no `from __future__ import annotations`: Dagster reads the asset function's real annotations

import tempfile
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
from dagster import AssetExecutionContext

from blocks_pipelines.ingestion.cost_explorer_defs import (
    can_use_cost_explorer,
    cost_explorer_asset,
    cost_explorer_resources,
)
from blocks_pipelines.resources import LakeResource, platform_resources
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig, resolve_source_uri
from blocks_pipelines.tenants.partitions import PARTITION_FMT, RANGE_END_TAG, RANGE_START_TAG, tenant_hourly_partitions
from blocks_pipelines.tenants.templates import copy_for_tenant, template_key, tenant_of

if TYPE_CHECKING:
    from blocks_pipelines.ingestion.deliveries import Delivery
    from blocks_pipelines.ingestion.ingest import IngestSummary

LAKE_TABLE = "cur_line_items"  # blocks_pipelines.ingestion.schema.LAKE_TABLE, without importing polars
MANIFEST_TAG = "blocks/cur_manifest"
DELIVERY_TAG = "blocks/delivery_id"
PERIOD_TAG = "blocks/billing_period"
FINAL_TAG = "blocks/month_final"

# AWS rewrites the current month's CUR up to three times a day and at least daily: a tenant whose lake has not been
# written for a day is late, for a day and a half something is broken (export deleted, role or bucket policy changed).
CUR_FRESHNESS = dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=36), warn_window=timedelta(hours=26))

CHECK_TOTALS = "unblended_matches_source"
CHECK_DUPLICATES = "no_duplicated_line_items"
CHECK_SCHEMA = "schema_as_documented"
CHECK_INVOICES = "billed_cost_matches_source_per_invoice"


def _deliveries_for(tenant: TenantConfig, tags: dict[str, str], start: datetime, end: datetime) -> "list[Delivery]":
    """The run's delivery (sensor runs name it) or, for a manual range, the newest delivery of each month it spans."""
    from blocks_pipelines.ingestion.deliveries import discover_deliveries, month_bounds, read_manifest

    if tags.get(MANIFEST_TAG):
        root = resolve_source_uri(tenant.cur_source, get_settings().home)
        return [read_manifest(tags[MANIFEST_TAG], root)]
    out = []
    for d in discover_deliveries(tenant):
        lo, hi = month_bounds(d.billing_period) if d.billing_period else (start, end)
        if lo < end and start < hi:
            out.append(d)
    return out


def _metadata(summary: "IngestSummary", start: datetime, end: datetime) -> dict:
    """What each hourly partition's materialization carries. A month run writes 744 of them with the same values,
    so only what the UI and the marts refresh sensor read per partition goes here; the run's detail goes once, on
    the totals check (_run_detail). Measured on a month run's event log: 2.8 KB an event, 2.0 MB a run, against
    6.0 KB and 4.3 MB with the detail on every event (200 tenants, three deliveries a day: 2.6 GB a day)."""
    return {
        "rows": dg.MetadataValue.int(summary.rows),
        "hours": dg.MetadataValue.int(summary.hours),
        "hour_range": dg.MetadataValue.text(f"{start.isoformat()} / {end.isoformat()}"),
        "cost_by_line_item_type": dg.MetadataValue.json(summary.cost_by_line_item_type),
        "delivery_ids": dg.MetadataValue.text(",".join(d["delivery_id"] for d in summary.deliveries)),
        "replaced_hours": dg.MetadataValue.json(summary.replaced_hours),
    }


def _run_detail(summary: "IngestSummary") -> dict:
    """The run's detail, once per run on the totals check: source vs lake per month, the lake's cost per day,
    amortized cost per line item type, the deliveries read and seconds per stage."""
    return {
        "source_vs_lake": dg.MetadataValue.json(
            {
                p.billing_period: {
                    "source_unblended": p.source_unblended,
                    "lake_unblended": p.lake_unblended,
                    "source_rows": p.source_rows,
                    "lake_rows": p.lake_rows,
                    "is_final": p.is_final,
                }
                for p in summary.periods
            }
        ),
        "unblended_by_day": dg.MetadataValue.json(summary.unblended_by_day),
        "amortized_by_line_item_type": dg.MetadataValue.json(summary.amortized_by_line_item_type),
        "deliveries": dg.MetadataValue.json(summary.deliveries),
        "days_written": dg.MetadataValue.int(summary.days_written),
        "invoices": dg.MetadataValue.int(len(summary.invoices)),
        "seconds_by_stage": dg.MetadataValue.json(summary.seconds),
    }


def _cur_line_items(context: AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    from blocks_pipelines.ingestion.ingest import ingest_deliveries
    from blocks_pipelines.ingestion.lake_checks import check_no_duplicates, check_schema
    from blocks_pipelines.ingestion.lake_writer import Slice

    tenant, key = tenant_of(context), context.assets_def.key
    window = context.partition_time_window
    start, end = window.start.astimezone(timezone.utc), window.end.astimezone(timezone.utc)
    deliveries = _deliveries_for(tenant, context.run.tags, start, end)
    if not deliveries:
        context.log.warning(f"no CUR delivery covers {start} .. {end} for {tenant.id}; nothing ingested")
    lake_uri = lake.root_uri
    summary = ingest_deliveries(tenant, deliveries, lake_uri=lake_uri, hour_range=(start, end))
    periods = frozenset(p.billing_period for p in summary.periods)
    replaced = [datetime.fromisoformat(t) for t in summary.replaced_hours] or [start, end]
    accounts = frozenset(summary.replaced_accounts) or None
    # checks see every row the write replaced, and only those (another provider's rows of the month are not its own)
    sl = Slice(min(start, replaced[0]), max(end, replaced[1]), periods, billing_accounts=accounts)
    with tempfile.TemporaryDirectory(prefix="blocks-check-") as tmp:
        source_rows = {p.billing_period: p.source_rows for p in summary.periods}
        dup = check_no_duplicates(lake_uri, tenant.id, sl, source_rows, Path(tmp) / "dup")
        schema = check_schema(lake_uri, tenant.id, sl, Path(tmp) / "schema")
    mismatched = [p.billing_period for p in summary.periods if not p.matches]
    checks = [
        dg.AssetCheckResult(
            check_name=CHECK_TOTALS,
            passed=not mismatched,
            asset_key=key,
            description="totals match" if not mismatched else f"totals differ for {mismatched}",
            metadata={
                **{p.billing_period: abs(p.source_unblended - p.lake_unblended) for p in summary.periods},
                **_run_detail(summary),
            },
        ),
        dg.AssetCheckResult(
            check_name=CHECK_DUPLICATES,
            passed=dup.passed,
            asset_key=key,
            description=dup.description,
            metadata={"lake_rows": dg.MetadataValue.json(dup.metadata)},
        ),
        dg.AssetCheckResult(
            check_name=CHECK_SCHEMA,
            passed=schema.passed,
            asset_key=key,
            description=schema.description,
            metadata=schema.metadata,
        ),
        _invoice_check(summary, key),
    ]
    return dg.MaterializeResult(metadata=_metadata(summary, start, end), check_results=checks)


def _invoice_check(summary: "IngestSummary", key: dg.AssetKey) -> dg.AssetCheckResult:
    """Per invoice id (final months; FOCUS 1.2+ InvoiceId, CUR bill/InvoiceId): lake BilledCost equals the source's.
    A month not yet invoiced has no ids: the check passes and says so."""
    differ = [i for i in summary.invoices if not i.matches]
    if not summary.invoices:
        description = "no invoice ids in the source (month not final): nothing to compare"
    elif differ:
        description = "billed cost differs for " + ", ".join(f"{i.billing_period} {i.invoice_id}" for i in differ[:5])
    else:
        description = f"{len(summary.invoices)} invoice(s): billed cost equals the source's"
    detail = {
        f"{i.billing_period} {i.invoice_id}": {
            "source_billed": i.source_billed,
            "lake_billed": i.lake_billed,
            "source_rows": i.source_rows,
            "lake_rows": i.lake_rows,
        }
        for i in (differ or summary.invoices)[:50]
    }  # bounded: an Azure month can hold many invoices
    return dg.AssetCheckResult(
        check_name=CHECK_INVOICES,
        passed=not differ,
        asset_key=key,
        description=description,
        metadata={"invoices": dg.MetadataValue.json(detail)},
    )


@lru_cache(maxsize=1)
def _template() -> dg.AssetsDefinition:
    """cur_line_items decorated once; each tenant's copy gets its keys, group, partitions and description."""
    key = template_key(LAKE_TABLE)
    specs = [
        dg.AssetCheckSpec(
            CHECK_TOTALS,
            asset=key,
            blocking=True,
            description="Per billing month, the lake's unblended cost equals the source's to 1e-6.",
        ),
        dg.AssetCheckSpec(
            CHECK_DUPLICATES,
            asset=key,
            blocking=True,
            description="One delivery per billing month in the lake, with the source's row count.",
        ),
        dg.AssetCheckSpec(
            CHECK_SCHEMA,
            asset=key,
            blocking=True,
            description="Lake files have the documented canonical schema, no blank required value.",
        ),
        dg.AssetCheckSpec(
            CHECK_INVOICES,
            asset=key,
            blocking=True,
            description="Per invoice id of a final month, the lake's billed cost equals the source's.",
        ),
    ]
    # any hourly partitions: every copy replaces them with its tenant's (history_start differs)
    partitions = dg.HourlyPartitionsDefinition(start_date="2020-01-01-00:00", timezone="UTC", fmt=PARTITION_FMT)
    return dg.asset(
        key=key,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=specs,
        kinds={"polars", "parquet"},
        freshness_policy=CUR_FRESHNESS,
    )(_cur_line_items)


def build_ingestion_defs(tenant: TenantConfig) -> dg.Definitions:
    asset = copy_for_tenant(
        _template(),
        tenant,
        partitions_def=tenant_hourly_partitions(tenant),
        description=f"{tenant.name}: hourly CUR line items in the lake (canonical schema), one file per day.",
    )
    if not can_use_cost_explorer(tenant):
        return dg.Definitions(assets=[asset], resources=platform_resources())
    ce = cost_explorer_asset(tenant)
    # the delivery and Cost Explorer sensors are the code location's, one for all its tenants (delivery_sensors.py)
    return dg.Definitions(assets=[asset, ce], resources={**platform_resources(), **cost_explorer_resources()})


def _already_ingested(instance: dg.DagsterInstance, delivery_id: str) -> bool:
    runs = instance.get_run_records(
        filters=dg.RunsFilter(tags={DELIVERY_TAG: delivery_id}, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
    )
    return bool(runs)


def delivery_run_request(tenant: TenantConfig, d: "Delivery", now: datetime) -> dg.RunRequest | None:
    """One run over the delivery's billing month (clamped to history and the last complete hour) of the tenant's
    line items; run_key = delivery id so a delivery is launched once. Used by the delivery sensors (one per code
    location, hence the asset selection) and by the in-process runner alike."""
    hours = _month_hours(tenant, d.billing_period, now)
    if hours is None:
        return None
    return dg.RunRequest(
        run_key=d.delivery_id,
        asset_selection=[dg.AssetKey([tenant.id, LAKE_TABLE])],
        tags={
            RANGE_START_TAG: hours[0],
            RANGE_END_TAG: hours[1],
            MANIFEST_TAG: d.manifest_uri or "",
            DELIVERY_TAG: d.delivery_id,
            PERIOD_TAG: d.billing_period,
            FINAL_TAG: str(d.is_final).lower(),
        },
    )


def _month_hours(tenant: TenantConfig, billing_period: str, now: datetime) -> tuple[str, str] | None:
    """First and last hourly partition keys of a month, clamped to history_start and the last complete hour."""
    from blocks_pipelines.ingestion.deliveries import month_bounds

    lo, hi = month_bounds(billing_period)
    lo = max(lo, tenant.history_start_dt)
    last = min(hi, now.replace(minute=0, second=0, microsecond=0)) - timedelta(hours=1)
    if last < lo:
        return None
    return lo.strftime(PARTITION_FMT), last.strftime(PARTITION_FMT)
