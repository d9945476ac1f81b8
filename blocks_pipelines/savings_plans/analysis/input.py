"""Checks and normalizes the analyzer's input: one row per UTC hour of SP-eligible on-demand-equivalent spend.

Every error names the row and the field and says how to fix it, because the frame usually comes from a mart
another stage built and the person reading the error has to find the bad row there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import polars as pl

REQUIRED_COLUMNS = ("ts_hour", "eligible_on_demand_cost", "sp_rate_ratio")
# The analyzer looks back at most this far; older rows are validated but not converted.
MAX_LOOKBACK_HOURS = 400 * 24
RATIO_LOOKBACK_HOURS = 30 * 24
HOUR = timedelta(hours=1)


class UsageInputError(ValueError):
    """The usage frame or the existing commitments cannot be analyzed as given."""


@dataclass(frozen=True)
class HourlyUsage:
    costs: list[float]  # on-demand-equivalent eligible $ per hour, oldest first, gaps filled with 0
    end: datetime  # UTC, the hour after the last row: the moment the decision is taken
    observed_ratio: float  # median SP rate / on-demand rate over the last 30 days
    filled_hours: int  # hours missing from the input, counted as no eligible usage


def read_usage(usage: pl.DataFrame) -> HourlyUsage:
    if not isinstance(usage, pl.DataFrame):
        raise UsageInputError(f"usage must be a polars.DataFrame, got {type(usage).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in usage.columns]
    if missing:
        raise UsageInputError(
            f"usage is missing column(s) {missing}; it has {usage.columns}. Expected one row per hour with "
            "ts_hour (UTC datetime), eligible_on_demand_cost ($) and sp_rate_ratio (SP rate / on-demand rate)."
        )
    if usage.height == 0:
        raise UsageInputError("usage has no rows: at least one day of hourly eligible usage is needed")
    frame = usage.select(REQUIRED_COLUMNS).with_row_index("row")
    frame = frame.with_columns(
        ts_hour=_as_utc(frame["ts_hour"]),
        eligible_on_demand_cost=_as_float(frame["eligible_on_demand_cost"]),
        sp_rate_ratio=_as_float(frame["sp_rate_ratio"]),
    )
    cost, ratio, ts = pl.col("eligible_on_demand_cost"), pl.col("sp_rate_ratio"), pl.col("ts_hour")
    checks = [
        (ts.is_null(), "ts_hour", "is null; every row needs its UTC hour"),
        (cost.is_null(), "eligible_on_demand_cost", "is null; use 0 for hours without eligible usage"),
        (ts.dt.truncate("1h") != ts, "ts_hour", "is not on an hour boundary; truncate to the start of its hour"),
        (
            cost < 0,
            "eligible_on_demand_cost",
            "is negative; pass on-demand-equivalent usage cost without credits or refunds",
        ),
        (~cost.is_finite(), "eligible_on_demand_cost", "is not a finite number"),
        (
            (ratio <= 0) | (ratio > 1),
            "sp_rate_ratio",
            "is outside (0, 1]; it is SP rate / on-demand rate, e.g. 0.72 for a 28% discount",
        ),
    ]
    # one pass computes every check; rows are only searched when a check fails
    counts = frame.select([c.fill_null(False).sum().alias(str(i)) for i, (c, _, _) in enumerate(checks)]).row(0)
    for count, (condition, column, problem) in zip(counts, checks, strict=False):
        if count:
            _raise_first(frame, condition, column, problem, count)
    frame = frame.sort("ts_hour")
    stamps = frame["ts_hour"]
    first, last = stamps[0], stamps[-1]
    if stamps.is_duplicated().any():
        dupes = frame.filter(ts.is_duplicated())
        raise UsageInputError(
            f"usage rows {dupes['row'].head(2).to_list()}: ts_hour {dupes['ts_hour'][0]} appears more than once; "
            "aggregate to one row per hour before analyzing"
        )
    span_hours = int((last - first) / HOUR) + 1
    if frame.height < span_hours / 2:
        raise UsageInputError(
            f"usage is not hourly: {frame.height} rows span {span_hours} hours from {first} to {last}; "
            "pass one row per hour (daily or sparser data cannot show the hourly variability a commitment faces)"
        )
    recent = frame.filter(ts > last - RATIO_LOOKBACK_HOURS * HOUR)["sp_rate_ratio"].drop_nulls()
    ratios = recent if recent.len() else frame["sp_rate_ratio"].drop_nulls()
    if ratios.len() == 0:
        raise UsageInputError("sp_rate_ratio is null on every row; pass the SP rate / on-demand rate, e.g. 0.72")
    n_hours = min(span_hours, MAX_LOOKBACK_HOURS)
    start = last - (n_hours - 1) * HOUR
    window = frame.filter(ts >= start).select(((ts - start).dt.total_hours()).alias("i"), "eligible_on_demand_cost")
    costs = [0.0] * n_hours
    for i, c in zip(window["i"].to_list(), window["eligible_on_demand_cost"].to_list(), strict=False):
        costs[i] = c
    return HourlyUsage(
        costs=costs,
        end=last + HOUR,
        observed_ratio=float(ratios.median()),
        filled_hours=n_hours - window.height,
    )


def read_commitments(
    existing: Sequence[tuple[float, datetime] | tuple[float, datetime, datetime]], now: datetime
) -> list[tuple[float, datetime, datetime]]:
    """Plans as (SP $/h, UTC end, UTC start); the start is `now` unless given (a queued plan); ended plans are
    dropped."""
    active = []
    for i, item in enumerate(existing):
        try:
            commitment, end, *rest = item
            (start,) = rest or (None,)
        except (TypeError, ValueError):
            raise UsageInputError(
                f"existing_commitments[{i}] = {item!r}: expected (hourly commitment $/h, end datetime) or "
                "(hourly commitment, end, start) for a queued plan"
            ) from None
        for name, value in (("end", end), ("start", now if start is None else start)):
            if not isinstance(value, datetime):
                raise UsageInputError(f"existing_commitments[{i}]: {name} {value!r} is not a datetime")
        if not (isinstance(commitment, (int, float)) and commitment >= 0):
            raise UsageInputError(
                f"existing_commitments[{i}]: commitment {commitment!r} must be a non-negative $/h at SP rates"
            )
        end, start = (
            v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)
            for v in (end, now if start is None else start)
        )
        if rest and start >= end:
            raise UsageInputError(f"existing_commitments[{i}]: start {start} is not before end {end}")
        if end > now and commitment > 0:
            active.append((float(commitment), end, max(start, now)))
    return active


def _as_utc(ts: pl.Series) -> pl.Series:
    if not isinstance(ts.dtype, pl.Datetime):
        raise UsageInputError(
            f"ts_hour has type {ts.dtype}; expected a datetime (parse strings with "
            "pl.col('ts_hour').str.to_datetime(time_zone='UTC'))"
        )
    if ts.dtype.time_zone is None:  # the marts store UTC without a zone
        return ts.dt.cast_time_unit("us").dt.replace_time_zone("UTC")
    return ts.dt.cast_time_unit("us").dt.convert_time_zone("UTC")


def _as_float(values: pl.Series) -> pl.Series:
    if not values.dtype.is_numeric():
        raise UsageInputError(f"{values.name} has type {values.dtype}; expected numbers")
    return values.cast(pl.Float64)


def _raise_first(frame: pl.DataFrame, condition: pl.Expr, column: str, problem: str, count: int) -> None:
    row = frame.filter(condition.fill_null(False)).row(0, named=True)
    raise UsageInputError(
        f"usage row {row['row']} (ts_hour {row['ts_hour']}): {column} = {row[column]!r} {problem}"
        + (f" ({count} rows affected)" if count > 1 else "")
    )
