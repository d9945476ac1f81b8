"""The ingestion entry point the CLI, Dagster and tests share: one delivery (or source) into the lake."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import polars as pl

from blocks_pipelines.ingestion.deliveries import Delivery, delivered_at, deliveries_in_source, month_bounds
from blocks_pipelines.ingestion.errors import PartialMonthError
from blocks_pipelines.ingestion.lake_writer import (
    DeliveryStamp,
    Slice,
    fetch_slice_files,
    lake_invoice_totals,
    lake_totals,
    replace_slice,
    staged_days,
    totals_by_day,
    totals_by_period,
)
from blocks_pipelines.ingestion.normalize import Staged, stage_delivery
from blocks_pipelines.ingestion.workdirs import run_workdir
from blocks_pipelines.lake import months
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig, resolve_tenant

MATCH_TOLERANCE = 1e-6


@dataclass
class PeriodTotals:
    billing_period: str
    source_rows: int
    lake_rows: int
    source_unblended: float
    lake_unblended: float
    is_final: bool

    @property
    def matches(self) -> bool:
        same_cost = abs(self.source_unblended - self.lake_unblended) <= MATCH_TOLERANCE
        return self.source_rows == self.lake_rows and same_cost


@dataclass
class InvoiceTotals:
    """One invoice of a final month: its BilledCost (CUR unblended cost) summed from the source file's own cost
    column, and from the lake after the write."""

    billing_period: str
    invoice_id: str
    source_rows: int
    lake_rows: int
    source_billed: float
    lake_billed: float

    @property
    def matches(self) -> bool:
        return self.source_rows == self.lake_rows and abs(self.source_billed - self.lake_billed) <= MATCH_TOLERANCE


@dataclass
class IngestSummary:
    tenant_id: str
    deliveries: list[dict] = field(default_factory=list)  # delivery_id, billing_period, format, files, is_final
    rows: int = 0
    hours: int = 0
    days_written: int = 0
    cost_by_line_item_type: dict[str, float] = field(default_factory=dict)  # unblended
    amortized_by_line_item_type: dict[str, float] = field(default_factory=dict)
    periods: list[PeriodTotals] = field(default_factory=list)
    invoices: list[InvoiceTotals] = field(default_factory=list)  # where the source has invoice ids
    # the lake's unblended cost per usage day (UTC) after the write, read back: what per-day checks compare
    unblended_by_day: dict[str, float] = field(default_factory=dict)
    # [start, end) of the hours the write replaced (UTC ISO): the run's hours, stretched to a delivery's rows
    replaced_hours: list[str] = field(default_factory=list)
    # the billing accounts whose rows the write replaced (empty: every row of those hours)
    replaced_accounts: list[str] = field(default_factory=list)
    # wall seconds per stage: read_normalize_split and validate (staging), publish (lake swap), verify (read back)
    seconds: dict[str, float] = field(default_factory=dict)
    # billing months whose rows cover only some of the month's days: billing_period, first_day, last_day, manifest
    partial_months: list[dict] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return all(p.matches for p in self.periods) and self.invoices_match

    @property
    def invoices_match(self) -> bool:
        return all(i.matches for i in self.invoices)

    def to_dict(self) -> dict:
        out = asdict(self)
        for p, obj in zip(out["periods"], self.periods, strict=False):
            p["matches"] = obj.matches
        for i, obj in zip(out["invoices"], self.invoices, strict=False):
            i["matches"] = obj.matches
        out["matches"] = self.matches
        return out


def _slice_for(staged: Staged, hour_range: tuple[datetime, datetime] | None) -> Slice:
    """A month delivery replaces its whole billing period(s), stretched to any rows dated outside them."""
    if hour_range is not None:
        return Slice(hour_range[0], hour_range[1], staged.billing_periods, billing_accounts=staged.accounts)
    bounds = [month_bounds(bp) for bp in staged.billing_periods]
    first, last = staged.usage_bounds()
    start = min([b[0] for b in bounds] + [first])
    end = max([b[1] for b in bounds] + [last + timedelta(hours=1)])
    return Slice(start, end, staged.billing_periods, billing_accounts=staged.accounts)


def _summarize(summary: IngestSummary, staged: Staged, lake: pl.DataFrame, days: int) -> None:
    st = staged.stats
    summary.rows += int(st["rows"].sum())
    summary.hours += staged.hours
    summary.days_written += days
    for lit, cost, amort in (
        st.group_by("line_item_type")
        .agg(pl.col("unblended_cost").sum().cast(pl.Float64), pl.col("amortized_cost").sum().cast(pl.Float64))
        .sort("line_item_type")
        .iter_rows()
    ):
        summary.cost_by_line_item_type[lit] = summary.cost_by_line_item_type.get(lit, 0.0) + cost
        summary.amortized_by_line_item_type[lit] = summary.amortized_by_line_item_type.get(lit, 0.0) + amort
    per_bp = (
        st.group_by("billing_period")
        .agg(pl.col("rows").sum(), pl.col("unblended_cost").sum().cast(pl.Float64), pl.col("invoiced_rows").sum())
        .sort("billing_period")
    )
    lake_by_bp = totals_by_period(lake)
    for day, cost in totals_by_day(lake).items():
        summary.unblended_by_day[day] = round(summary.unblended_by_day.get(day, 0.0) + cost, 6)
    for bp, rows, cost, invoiced in per_bp.iter_rows():
        got = lake_by_bp.get(bp, {"rows": 0, "unblended_cost": 0.0})
        summary.periods.append(
            PeriodTotals(
                bp, int(rows), int(got["rows"]), float(cost), float(got["unblended_cost"] or 0.0), bool(invoiced)
            )
        )
    d = staged.delivery
    summary.deliveries.append(
        {
            "delivery_id": d.delivery_id,
            "billing_period": d.billing_period or ",".join(sorted(staged.billing_periods)),
            "format": staged.fmt,
            "manifest": d.manifest_uri,
            "files": len(d.data_files),
            "is_final": bool(per_bp["invoiced_rows"].sum()),
        }
    )


def _compare_invoices(summary: IngestSummary, source: pl.DataFrame, lake: pl.DataFrame) -> None:
    got = {(r["billing_period"], r["invoice_id"]): r for r in lake.iter_rows(named=True)}
    for bp, invoice, rows, billed in source.select("billing_period", "invoice_id", "rows", "billed_cost").iter_rows():
        lake_row = got.get((bp, invoice), {"rows": 0, "billed_cost": 0})
        summary.invoices.append(
            InvoiceTotals(
                bp, invoice, int(rows), int(lake_row["rows"]), float(billed or 0), float(lake_row["billed_cost"] or 0)
            )
        )


def _hours_of(delivery: Delivery, hour_range: tuple[datetime, datetime] | None) -> tuple[datetime, datetime] | None:
    """The hours to take from a delivery: hour_range, or all of it (None) when its whole billing month lies inside
    hour_range. A month's delivery is that month's bill: a line item it dates outside the month (a late credit,
    another provider's charge period) is kept and replaces with the month, never silently dropped by the run's
    hours."""
    if hour_range is None or delivery.billing_period is None:
        return hour_range
    first, end = month_bounds(delivery.billing_period)
    return None if hour_range[0] <= first and end <= hour_range[1] else hour_range


def partial_months(staged: Staged) -> list[dict]:
    """The billing months this delivery's rows cover only partly (first or last day of the month without rows)."""
    if not staged.stats.height:
        return []
    out = []
    per_bp = staged.stats.group_by("billing_period").agg(pl.col("first_hour").min(), pl.col("last_hour").max())
    for bp, first, last in per_bp.sort("billing_period").iter_rows():
        start, end = month_bounds(bp)
        if first.date() > start.date() or last.date() < (end - timedelta(hours=1)).date():
            out.append(
                {
                    "billing_period": bp,
                    "first_day": first.date().isoformat(),
                    "last_day": last.date().isoformat(),
                    "manifest": staged.delivery.manifest_uri,
                }
            )
    return out


def _refuse_partial_months(lake_uri: str, tenant_id: str, staged: list[Staged], hours: list, allow: bool) -> list[dict]:
    """Partial months found. A delivery without a manifest whose rows cover part of a month, and which would
    replace the whole month, is refused while the lake holds days of that month outside the rows (they would be
    deleted), unless the caller says it means to (--partial-month). A manifest vouches for its month so far."""
    found = []
    for s, h in zip(staged, hours, strict=False):
        partial = partial_months(s)
        found += partial
        for p in partial:
            if p["manifest"] is not None or h is not None or allow:
                continue
            held, _ = months.read_month(lake_uri, tenant_id, p["billing_period"])
            lost = sorted(
                f.usage_date.isoformat()
                for f in (held.files if held else ())
                if not p["first_day"] <= f.usage_date.isoformat() <= p["last_day"]
            )
            if lost:
                raise PartialMonthError(
                    f"the rows cover {p['first_day']} to {p['last_day']} of billing month {p['billing_period']} "
                    f"only; ingesting them replaces the whole month and deletes the lake's {len(lost)} other days "
                    f"({lost[0]} .. {lost[-1]})",
                    file=s.delivery.data_files[0],
                    fix="ingest the report's manifest (AWS's month so far), or pass --partial-month if this file "
                    "is meant to be the whole month",
                )
    return found


def _add_seconds(summary: IngestSummary, seconds: dict[str, float]) -> None:
    for stage, s in seconds.items():
        summary.seconds[stage] = round(summary.seconds.get(stage, 0.0) + s, 3)


def ingest_deliveries(
    tenant: TenantConfig | str,
    deliveries: list[Delivery],
    *,
    lake_uri: str | None = None,
    fmt: str = "auto",
    hour_range: tuple[datetime, datetime] | None = None,
    progress=None,
    partial_month: bool = False,
) -> IngestSummary:
    """Stage and validate every delivery first (bad input leaves the lake as it was), then replace their slices.

    partial_month: let files without a manifest that cover part of a month replace that whole month."""
    tenant = resolve_tenant(tenant)
    lake_uri = lake_uri or get_settings().lake_uri
    summary = IngestSummary(tenant.id)
    with run_workdir("ingest") as work:
        hours = [_hours_of(d, hour_range) for d in deliveries]
        staged = [
            stage_delivery(d, tenant, fmt, work / f"d{i}", h)
            for i, (d, h) in enumerate(zip(deliveries, hours, strict=False))
        ]
        summary.partial_months = _refuse_partial_months(lake_uri, tenant.id, staged, hours, partial_month)
        slices = [_slice_for(s, h) for s, h in zip(staged, hours, strict=False)]
        if slices:
            summary.replaced_hours = [
                min(sl.start for sl in slices).isoformat(),
                max(sl.end for sl in slices).isoformat(),
            ]
            if all(sl.billing_accounts is not None for sl in slices):
                summary.replaced_accounts = sorted(set().union(*(sl.billing_accounts for sl in slices)))
        for i, (s, sl) in enumerate(zip(staged, slices, strict=False)):
            t0 = time.perf_counter()
            d = s.delivery
            stamp = DeliveryStamp(d.delivery_id, delivered_at(d), d.manifest_uri or d.data_files[0])
            changed = replace_slice(
                lake_uri, tenant.id, staged_days(s.dir), sl, work / f"w{i}", progress, delivery=stamp
            )
            t1 = time.perf_counter()
            files = fetch_slice_files(lake_uri, tenant.id, sl, work / f"r{i}")  # read back once for both checks
            lake = lake_totals(files, sl)
            if s.invoices is not None and s.invoices.height:
                ids = s.invoices["invoice_id"].unique().to_list()
                _compare_invoices(summary, s.invoices, lake_invoice_totals(files, sl, ids))
            _add_seconds(summary, {**s.seconds, "publish": t1 - t0, "verify": time.perf_counter() - t1})
            _summarize(summary, s, lake, len(changed))
    return summary


def ingest_delivery(
    tenant: TenantConfig | str,
    source_uri: str,
    *,
    lake_uri: str | None = None,
    fmt: str = "auto",
    hour_range: tuple[datetime, datetime] | None = None,
    progress=None,
    partial_month: bool = False,
) -> IngestSummary:
    """Ingest a manifest, data file, folder or S3 prefix for one tenant into the lake.

    Each billing month found replaces that month in the lake (or only hour_range [start, end) when given)."""
    return ingest_deliveries(
        tenant,
        deliveries_in_source(source_uri),
        lake_uri=lake_uri,
        fmt=fmt,
        hour_range=hour_range,
        progress=progress,
        partial_month=partial_month,
    )
