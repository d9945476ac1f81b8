"""Cost Explorer backfill for months a tenant has no CUR for yet: GetCostAndUsage HOURLY for the last 14 days
(the most Cost Explorer keeps hourly), DAILY before that. Rows are marked source_format="cost_explorer"; a CUR
delivery of the same month replaces them, and a backfill never overwrites days that already hold CUR rows.

Cost Explorer has no line items: rows are per (period, linked account, service) with line_item_type "Usage",
unblended = UnblendedCost, amortized = AmortizedCost; public_on_demand_cost is unknown and set to unblended.
"""

from __future__ import annotations

import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from blocks_pipelines.ingestion.api import IngestSummary, PeriodTotals
from blocks_pipelines.tenants.config import resolve_tenant
from blocks_pipelines.ingestion.errors import MixedCurrencyError
from blocks_pipelines.ingestion.lake_writer import Slice, lake_days, lake_totals, replace_slice
from blocks_pipelines.ingestion.schema import CANONICAL_SCHEMA
from blocks_pipelines.lake import fs, layout
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig

HOURLY_DAYS = 14
METRICS = ["UnblendedCost", "AmortizedCost", "UsageQuantity"]


def _windows(start: date, end: date, today: date) -> list[tuple[str, date, date]]:
    """(granularity, start, end) requests covering [start, end): HOURLY inside the last 14 days, DAILY before."""
    cut = today - timedelta(days=HOURLY_DAYS - 1)
    out = []
    if start < min(cut, end):
        out.append(("DAILY", start, min(cut, end)))
    if max(start, cut) < end:
        out.append(("HOURLY", max(start, cut), end))
    return out


def _fmt(granularity: str, d: date) -> str:
    return f"{d.isoformat()}T00:00:00Z" if granularity == "HOURLY" else d.isoformat()


def fetch_cost_and_usage(client, granularity: str, start: date, end: date) -> list[dict]:
    """Flattened GetCostAndUsage groups: one dict per (period, account, service), following NextPageToken."""
    rows, token = [], None
    while True:
        kwargs = dict(
            TimePeriod={"Start": _fmt(granularity, start), "End": _fmt(granularity, end)},
            Granularity=granularity, Metrics=METRICS,
            GroupBy=[{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}],
        )
        if token:
            kwargs["NextPageToken"] = token
        resp = client.get_cost_and_usage(**kwargs)
        for period in resp["ResultsByTime"]:
            for g in period.get("Groups", []):
                m = g["Metrics"]
                rows.append({
                    "start": period["TimePeriod"]["Start"], "end": period["TimePeriod"]["End"],
                    "account": g["Keys"][0], "service": g["Keys"][1],
                    "unblended": float(m["UnblendedCost"]["Amount"]), "amortized": float(m["AmortizedCost"]["Amount"]),
                    "usage": float(m.get("UsageQuantity", {}).get("Amount", 0.0)),
                    "currency": m["UnblendedCost"].get("Unit", "USD"),
                })
        token = resp.get("NextPageToken")
        if not token:
            return rows


def _ce_time(e: pl.Expr) -> pl.Expr:
    """DAILY periods come as `2026-11-01`, HOURLY ones as `2026-11-01T05:00:00Z`."""
    full = e.str.replace(r"^(\d{4}-\d{2}-\d{2})$", "${1}T00:00:00Z")
    return full.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us").dt.replace_time_zone("UTC")


def ce_rows_to_canonical(rows: list[dict], tenant_id: str, payer: str, pull_id: str) -> pl.DataFrame:
    """Pure: Cost Explorer groups as canonical line items."""
    if not rows:
        return pl.DataFrame(schema=CANONICAL_SCHEMA)
    df = pl.DataFrame(rows)
    start, end = _ce_time(pl.col("start")), _ce_time(pl.col("end"))
    values = {
        "tenant_id": pl.lit(tenant_id), "provider": pl.lit("AWS"), "billing_period": start.dt.strftime("%Y-%m"),
        "usage_start": start, "usage_end": end, "usage_date": start.dt.date(),
        "payer_account_id": pl.lit(payer), "usage_account_id": pl.col("account"),
        "line_item_type": pl.lit("Usage"), "charge_class": pl.lit("usage"), "service_name": pl.col("service"),
        "usage_amount": pl.col("usage"), "currency": pl.col("currency"), "unblended_cost": pl.col("unblended"),
        "amortized_cost": pl.col("amortized"), "public_on_demand_cost": pl.col("unblended"),
        "tags": pl.lit("{}"), "cost_categories": pl.lit("{}"),
        "source_format": pl.lit("cost_explorer"), "delivery_id": pl.lit(pull_id),
    }
    return df.select([values.get(n, pl.lit(None)).cast(t).alias(n) for n, t in CANONICAL_SCHEMA.items()])


def backfill_from_cost_explorer(tenant: TenantConfig | str, start: date, end: date, *, client=None,
                                lake_uri: str | None = None, today: date | None = None) -> IngestSummary:
    """Write Cost Explorer rows for [start, end) into the lake, skipping every day that already holds CUR rows."""
    tenant = resolve_tenant(tenant)
    lake_uri = lake_uri or get_settings().lake_uri
    today = today or datetime.now(timezone.utc).date()
    if client is None:
        import boto3

        client = boto3.client("ce", region_name="us-east-1")
    pull_id = f"ce-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    rows = [r for g, s, e in _windows(start, end, today) for r in fetch_cost_and_usage(client, g, s, e)]
    df = ce_rows_to_canonical(rows, tenant.id, tenant.organization.payer_account_id, pull_id)
    currencies = df.group_by("billing_period").agg(pl.col("currency").n_unique().alias("n")).filter(pl.col("n") > 1)
    if currencies.height:
        raise MixedCurrencyError(f"Cost Explorer returned several currencies for {currencies['billing_period'][0]}",
                                 file="GetCostAndUsage", column="Unit",
                                 fix="one tenant bills in one currency; split the payer accounts into tenants")
    summary = IngestSummary(tenant.id)
    with tempfile.TemporaryDirectory(prefix="blocks-ce-") as tmp:
        work = Path(tmp)
        cur_days = _days_with_cur(lake_uri, tenant.id, start, end, work)
        df = df.filter(~pl.col("usage_date").is_in(sorted(cur_days)))
        by_day = {}
        for (day,), part in df.partition_by("usage_date", as_dict=True).items():
            path = work / "staged" / f"{day}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            part.write_parquet(path)
            by_day[day] = [path]
        sl = Slice(datetime(start.year, start.month, start.day, tzinfo=timezone.utc),
                   datetime(end.year, end.month, end.day, tzinfo=timezone.utc), only_source_format="cost_explorer")
        days = replace_slice(lake_uri, tenant.id, by_day, sl, work / "w")
        lake = lake_totals(lake_uri, tenant.id, Slice(sl.start, sl.end, only_source_format="cost_explorer"), work / "r")
    summary.rows, summary.days_written = df.height, len(days)
    summary.hours = df["usage_start"].n_unique()
    summary.cost_by_line_item_type = {"Usage": float(df["unblended_cost"].sum())} if df.height else {}
    summary.amortized_by_line_item_type = {"Usage": float(df["amortized_cost"].sum())} if df.height else {}
    got = {r["billing_period"]: r for r in lake.iter_rows(named=True)}
    for bp, n, cost in df.group_by("billing_period").agg(pl.len(), pl.col("unblended_cost").sum()).sort(
            "billing_period").iter_rows():
        g = got.get(bp, {"rows": 0, "unblended_cost": 0.0})
        summary.periods.append(PeriodTotals(bp, n, int(g["rows"]), float(cost), float(g["unblended_cost"]), False))
    summary.deliveries.append({"delivery_id": pull_id, "billing_period": None, "format": "cost_explorer",
                               "manifest": None, "files": 0, "is_final": False})
    return summary


def _days_with_cur(lake_uri: str, tenant_id: str, start: date, end: date, work: Path) -> set[date]:
    out = set()
    for day in sorted(lake_days(lake_uri, tenant_id)):
        if start <= day < end:
            local = fs.fetch_to_local(layout.line_items_day_uri(lake_uri, tenant_id, day), work / "cur")
            has_cur = pl.scan_parquet(local).filter(pl.col("source_format") != "cost_explorer").head(1).collect()
            if has_cur.height:
                out.add(day)
    return out
