"""Hourly demand curves: a growth trend times daily and weekly cycles, with noise.

Each workload profile has one curve; every resource of that profile follows it (an autoscaling group scales on
one signal), which is what gives the spend its cycles and the Savings Plans analyzer a realistic distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import polars as pl

from blocks_pipelines.sample_data.rand import normal

HOURS_PER_MONTH = 730.0  # AWS prorates monthly prices over 730 hours


@dataclass(frozen=True)
class Profile:
    name: str
    daily_amplitude: float  # +- share of the level around its mean over a day
    peak_hour_utc: int
    weekend_factor: float  # level on Saturday and Sunday relative to weekdays
    noise_sd: float  # hour-to-hour relative noise
    monthly_growth: float  # compounded growth per 30.4 days
    business_hours: bool = False  # on 08-19 UTC on weekdays only (dev environments)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("web", 0.35, 15, 0.75, 0.05, 0.035),
        Profile("batch", 0.45, 2, 1.0, 0.10, 0.045),
        Profile("dev", 0.0, 13, 1.0, 0.05, 0.01, business_hours=True),
        Profile("flat", 0.0, 0, 1.0, 0.0, 0.0),
        Profile("storage", 0.0, 0, 1.0, 0.0, 0.02),
    )
}
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def hour_grid(start: datetime, end: datetime) -> pl.Series:
    """Hour starts in [start, end), UTC, as a Datetime('us', 'UTC') series named usage_start."""
    s, e = _utc(start), _utc(end) - timedelta(hours=1)
    if e < s:
        return pl.Series("usage_start", [], dtype=pl.Datetime("us", "UTC"))
    return pl.datetime_range(s, e, interval="1h", eager=True, time_zone="UTC").alias("usage_start")


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def trend_expr(anchor: datetime, monthly_growth: float, col: str = "usage_start") -> pl.Expr:
    days = (pl.col(col) - pl.lit(_utc(anchor))).dt.total_seconds() / 86400.0
    return pl.lit(1.0 + monthly_growth).pow(days / 30.4)


def profile_levels(hours: pl.Series, anchor: datetime, *key: object) -> pl.DataFrame:
    """Demand level per (profile, hour): columns profile_idx, usage_start, level; about 1.0 on average at the
    anchor for the cyclic profiles."""
    frames = []
    hod = pl.col("usage_start").dt.hour().cast(pl.Float64)
    weekend = pl.col("usage_start").dt.weekday() >= 6  # ISO weekday: 6 = Saturday, 7 = Sunday
    for i, p in enumerate(PROFILES.values()):
        if p.business_hours:
            daily = pl.when(~weekend & (hod >= 8) & (hod < 19)).then(0.92).otherwise(0.06)
        else:
            daily = 1.0 + p.daily_amplitude * ((hod - p.peak_hour_utc) * (2 * math.pi / 24.0)).cos()
        weekly = pl.when(weekend).then(p.weekend_factor).otherwise(1.0)
        noise = 1.0 + p.noise_sd * normal(len(hours), *key, "profile", p.name)
        frames.append(
            pl.DataFrame({"usage_start": hours, "noise": noise}).select(
                pl.lit(i, dtype=pl.UInt32).alias("profile_idx"),
                "usage_start",
                (trend_expr(anchor, p.monthly_growth) * daily * weekly * pl.col("noise")).clip(0.0).alias("level"),
            )
        )
    return pl.concat(frames)
