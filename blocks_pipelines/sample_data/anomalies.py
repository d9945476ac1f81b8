"""Spend anomalies the sample generator injects, so the demo's alerting has something true to find.

Every EPISODE_EVERY_DAYS days from FIRST_EPISODE_DAY on (counted from the tenant's history start: the detector
needs about eight weeks of history first), one of the tenant's largest scaled-usage resources (data transfer,
NAT bytes, Lambda GB-seconds, taken in turn) runs at SPIKE_FACTOR x its usual amount for EPISODE_DAYS UTC days:
a runaway job or a misrouted stream. The dates are absolute, so every re-delivery of a month carries the same
spikes, and one resource spikes at most once every CANDIDATES x EPISODE_EVERY_DAYS days, so the weekday baseline
that judges it is never lifted by its own earlier spikes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

FIRST_EPISODE_DAY = 72
EPISODE_EVERY_DAYS = 9
EPISODE_DAYS = 2
SPIKE_FACTOR = 8.0
CANDIDATES = 4
SCALED = 1  # inventory.SCALED (inventory imports the tenant config; this module stays a leaf)


def spike_candidates(resources: pl.DataFrame) -> list[int]:
    """resource_idx of the largest scaled-usage resources, one per (service, account), largest first."""
    scaled = resources.filter(pl.col("amount_mode") == SCALED).with_columns(
        daily=pl.col("base_amount") * pl.col("rate") * 24
    )
    picked = (
        scaled.sort("daily", "resource_idx", descending=[True, False])
        .unique(subset=["product_code", "usage_account_id"], keep="first", maintain_order=True)
        .head(CANDIDATES)
    )
    return picked["resource_idx"].to_list()


def episodes(resources: pl.DataFrame, anchor: datetime, until: datetime) -> pl.DataFrame:
    """(resource_idx, spike_start, spike_end) of the episodes starting before `until`."""
    candidates = spike_candidates(resources)
    rows = []
    k = 0
    while candidates:
        start = anchor + timedelta(days=FIRST_EPISODE_DAY + k * EPISODE_EVERY_DAYS)
        if start >= until:
            break
        rows.append((candidates[k % len(candidates)], start, start + timedelta(days=EPISODE_DAYS)))
        k += 1
    return pl.DataFrame(
        rows,
        orient="row",
        schema={
            "resource_idx": pl.UInt32,
            "spike_start": pl.Datetime("us", "UTC"),
            "spike_end": pl.Datetime("us", "UTC"),
        },
    )


def apply_spikes(rows: pl.DataFrame, resources: pl.DataFrame, anchor: datetime) -> pl.DataFrame:
    """usage_amount x SPIKE_FACTOR on the hours of each episode (rows: usage line items with usage_start)."""
    if rows.is_empty():
        return rows
    spikes = episodes(resources, anchor, rows["usage_start"].max() + timedelta(hours=1))
    if spikes.is_empty():
        return rows
    hit = (
        rows.select("usage_start", pl.col("resource_idx").cast(pl.UInt32))
        .with_row_index("_row")
        .join(spikes, on="resource_idx")
        .filter((pl.col("usage_start") >= pl.col("spike_start")) & (pl.col("usage_start") < pl.col("spike_end")))
    )
    factor = pl.when(pl.int_range(pl.len()).is_in(hit["_row"])).then(SPIKE_FACTOR).otherwise(1.0)
    return rows.with_columns(pl.col("usage_amount") * factor)
