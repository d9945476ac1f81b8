"""Marts for the alerting tests: a spend_hourly built from daily rows, written where the detector reads it."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from blocks_pipelines.lake.layout import mart_uri
from blocks_pipelines.settings import get_settings


def write_mart(name: str, tenant_id: str, frame: pl.DataFrame) -> Path:
    path = Path(mart_uri(get_settings().lake_uri, name, tenant_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return path


def spend_hourly_from_daily(daily: pl.DataFrame, tenant_id: str, through: datetime | None = None) -> pl.DataFrame:
    """Each day's cost spread over its 24 hours (usage line items), cut at `through` (exclusive) if given."""
    hours = pl.DataFrame({"h": list(range(24))})
    out = (
        daily.join(hours, how="cross")
        .with_columns(
            usage_hour=(pl.col("usage_date").cast(pl.Datetime("us", "UTC")) + pl.duration(hours=pl.col("h"))),
            amortized_cost=pl.col("cost") / 24,
            line_item_type=pl.lit("Usage"),
            tenant_id=pl.lit(tenant_id),
        )
        .drop("h", "cost")
    )
    if through is not None:
        out = out.filter(pl.col("usage_hour") < through)
    return out


def daily_rows(days: int, end: date, series: dict[tuple[str, str], float], spikes: dict | None = None) -> pl.DataFrame:
    """Weekly-cycled series (weekends at 40 %), a small deterministic wobble, plus spikes {(svc, acct, day): $}."""
    spikes = spikes or {}
    rows = []
    for (service, account), level in series.items():
        for i in range(days):
            d = end - timedelta(days=days - 1 - i)
            base = level * (1.0 if d.weekday() < 5 else 0.4) * (1 + 0.02 * (((d.toordinal() * 7919) % 5) - 2))
            rows.append((d, service, account, "us-east-1", "BoxUsage", base + spikes.get((service, account, d), 0.0)))
    return daily_frame(rows)


DAILY_SCHEMA = {
    "usage_date": pl.Date,
    "service": pl.Utf8,
    "usage_account_id": pl.Utf8,
    "region": pl.Utf8,
    "usage_type": pl.Utf8,
    "cost": pl.Float64,
}


def daily_frame(rows: list[tuple]) -> pl.DataFrame:
    """Daily spend rows (usage_date, service, account, region, usage_type, cost) as the detector reads them."""
    return pl.DataFrame(rows, schema=DAILY_SCHEMA, orient="row")


def utc_midnight(d: date) -> datetime:
    return datetime.combine(d, datetime.min.time(), timezone.utc)
