"""Re-delivering a tenant's open billing month of sample CUR, as AWS refreshes the current month during the day.

Two callers: the local purchaser's hook (a plan was just recorded in the ledger) and the hourly delivery clock
(sample_data.defs), which plays AWS's part for sample tenants so that the hours after a purchase reach the lake.
Both put the ledger's plans (state store rows) in the data, so coverage rises from each plan's start hour.
Real (S3) sources are never written: AWS delivers those.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl

from blocks_pipelines.ingestion.deliveries import Delivery, read_manifest, tenant_manifest_uri
from blocks_pipelines.lake import fs
from blocks_pipelines.sample_data import delivery as D
from blocks_pipelines.sample_data.commitments import SavingsPlanSpec
from blocks_pipelines.sample_data.generator import GenerationSummary, generate_tenant_cur
from blocks_pipelines.sample_data.lineitems import Period, month_period
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig, load_registry, resolve_source_uri

GENERATOR_FORMAT = {"cur1": "cur1-csv", "cur2": "cur2", "focus": "focus"}
DEMO_SEED = 42  # `blocks demo`'s default seed; tenant i uses DEMO_SEED + i (see runner.generate_demo_sources)
LEGACY_CSV_USAGE_START = "lineItem/UsageStartDate"
PARQUET_USAGE_START = ("line_item_usage_start_date", "ChargePeriodStart")  # legacy Parquet and CUR 2.0, FOCUS


def last_complete_hour(now: datetime) -> datetime:
    """Start of the newest hour that has ended at `now` (UTC): the last hour a delivery made at `now` carries."""
    return now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def open_period(now: datetime) -> Period:
    """The billing period of the last complete hour, cut at now's hour. At 00:xx on the 1st that is the month that
    just ended, so its final delivery carries its last hour."""
    hour = last_complete_hour(now)
    return month_period(hour.year, hour.month, now.astimezone(timezone.utc))


def ledger_specs(plans: Sequence[Mapping[str, Any]]) -> list[SavingsPlanSpec]:
    """The state store's ledger rows as the plans the generator applies."""
    return [
        SavingsPlanSpec(
            p["savings_plan_arn"],
            float(p["hourly_commitment"]),
            datetime.fromisoformat(p["start"]),
            float(p["rate_ratio"]),
            int(p.get("term_years", 1)),
        )
        for p in plans
    ]


def demo_seed(tenant: TenantConfig) -> int:
    ids = [t.id for t in load_registry(get_settings().tenants_dir)]
    return DEMO_SEED + (ids.index(tenant.id) if tenant.id in ids else 0)


def source_uri(tenant: TenantConfig) -> str:
    return resolve_source_uri(tenant.cur_source, get_settings().home)


def _is_legacy(tenant: TenantConfig) -> bool:
    return tenant.cur_source.format.value == "cur1"


def deliver_open_month(
    tenant: TenantConfig, ledger_plans: Sequence[Mapping[str, Any]], *, now: datetime
) -> GenerationSummary:
    """A new delivery of the open month through the last complete hour at `now`, with the ledger's plans in it."""
    if tenant.cur_source.is_s3:
        raise ValueError(f"{tenant.id}'s CUR is real (S3): AWS delivers it, the sample generator never writes there")
    period = open_period(now)
    return generate_tenant_cur(
        tenant,
        fmt=GENERATOR_FORMAT[tenant.cur_source.format.value],
        out_uri=source_uri(tenant),
        months=1,
        seed=demo_seed(tenant),
        start=period.label,
        end=now,
        extra_savings_plans=ledger_specs(ledger_plans),
    )


def regenerate_demo_cur(tenant: TenantConfig, plans: list[dict[str, Any]]) -> str:
    """The local purchaser's hook: re-deliver the open month with the ledger's plans in it, so ingestion and the
    marts pick the new coverage up. Not a restatement: the same delivery the hourly clock makes, so the next tick
    does not undo it. Real (S3) sources are never touched."""
    if tenant.cur_source.is_s3:
        return "skipped: the tenant's CUR is real (S3); the plan shows up in AWS's next delivery"
    summary = deliver_open_month(tenant, plans, now=datetime.now(timezone.utc))
    return f"re-delivered {summary.months[0].billing_period} sample CUR with {len(plans)} ledger plan(s): {summary}"


def has_sample_cur(tenant: TenantConfig) -> bool:
    return next(fs.list_objects(source_uri(tenant)), None) is not None


def last_usage_hour(files: Sequence[str]) -> datetime | None:
    """The newest usage start in a delivery's data files (None when they hold no usage)."""
    latest = None
    for uri in files:
        data = io.BytesIO(fs.read_bytes(uri))
        if uri.endswith(".parquet"):
            column = next(c for c in PARQUET_USAGE_START if c in pl.read_parquet_schema(data))
            value = pl.read_parquet(data, columns=[column]).get_column(column).max()
        else:  # legacy CSV: ISO-8601 strings ending in Z, which sort as the times they name
            text = pl.read_csv(data, columns=[LEGACY_CSV_USAGE_START]).get_column(LEGACY_CSV_USAGE_START).max()
            value = datetime.fromisoformat(text) if text else None
        if value is not None and (latest is None or value > latest):
            latest = value
    return latest


def newest_delivery(tenant: TenantConfig, period: Period) -> Delivery | None:
    """The period's newest delivery, read from its manifest as the ingestion sensor reads it; None before the first."""
    root = source_uri(tenant)
    uri = tenant_manifest_uri(tenant, period.label, root)
    return read_manifest(uri, root) if fs.exists(uri) else None


def delivered_through(tenant: TenantConfig, period: Period) -> datetime | None:
    """The last usage hour of the period's newest delivery, None before its first one."""
    newest = newest_delivery(tenant, period)
    return last_usage_hour(newest.data_files) if newest else None


def prune_superseded(tenant: TenantConfig, period: Period, keep: set[str]) -> list[str]:
    """Remove the period's delivery folders not named in `keep` (a local source only). AWS overwrites a report's
    current month; a new folder per hourly delivery would otherwise pile up a copy of the month every hour."""
    folder = Path(
        D.deliveries_dir(source_uri(tenant), tenant.cur_source.report_name, period, legacy=_is_legacy(tenant))
    )
    gone = sorted(d for d in folder.iterdir() if d.is_dir() and d.name not in keep) if folder.is_dir() else []
    for d in gone:
        shutil.rmtree(d)
    return [str(d) for d in gone]


def clock_delivery(
    tenant: TenantConfig, ledger_plans: Sequence[Mapping[str, Any]], now: datetime
) -> tuple[GenerationSummary, list[str]]:
    """One tick of the delivery clock: the open month through the last complete hour, then the month's older
    deliveries removed except the one it replaces (a run may still be ingesting that one).

    A refresh, not a restatement: the hours already delivered stay as they were (the generator keeps the open
    month's first hours stable), so what changes is the new hour and the ledger plans' coverage."""
    period = open_period(now)
    previous = newest_delivery(tenant, period)
    summary = deliver_open_month(tenant, ledger_plans, now=now)
    keep = {summary.months[0].delivery_id} | ({previous.delivery_id} if previous else set())
    return summary, prune_superseded(tenant, period, keep)
