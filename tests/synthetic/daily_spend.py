"""Daily spend with known anomalies, for the detector's tests and benchmark.

Each series (service, account, region) has a level drawn log-uniformly between $20 and $2,000 a day, a weekly cycle
(weekends at 40-100% of weekdays), slow growth and Gaussian day-to-day noise of NOISE_PCT of its level. Spikes add
`k x noise` dollars for 1-3 days, k drawn from `spike_sizes`; the ground truth is returned beside the data.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

NOISE_PCT = 0.05


@dataclass(frozen=True)
class InjectedSpike:
    service: str
    usage_account_id: str
    region: str
    first_day: date
    days: int
    size_in_noise: float  # the spike's daily amount divided by the series' daily noise (standard deviation)
    amount_per_day: float


def synthetic_daily(
    *,
    services: int,
    accounts: int,
    days: int,
    end: date,
    spikes: int = 0,
    spike_sizes: tuple[float, float] = (3.0, 8.0),
    seed: int = 7,
    usage_types_per_series: int = 1,
) -> tuple[pl.DataFrame, list[InjectedSpike]]:
    """(daily leaf rows: usage_date, service, usage_account_id, region, usage_type, cost; the injected spikes)."""
    rng = random.Random(seed)
    n = services * accounts
    start = end - timedelta(days=days - 1)
    level = [math.exp(rng.uniform(math.log(20), math.log(2000))) for _ in range(n)]
    weekend = [rng.uniform(0.4, 1.0) for _ in range(n)]
    growth = [rng.uniform(0.0, 0.03) for _ in range(n)]  # per 30 days
    series = pl.DataFrame(
        {
            "sid": list(range(n)),
            "service": [f"Service{i % services:03d}" for i in range(n)],
            "usage_account_id": [f"{100000000000 + i // services}" for i in range(n)],
            "region": ["us-east-1"] * n,
            "level": level,
            "weekend": weekend,
            "growth": growth,
        }
    )
    day_frame = pl.DataFrame({"usage_date": pl.date_range(start, end, "1d", eager=True)}).with_row_index("t")
    frame = series.join(day_frame, how="cross")
    noise = _normal(frame.height, seed)
    base = (
        pl.col("level")
        * (1 + pl.col("growth")).pow(pl.col("t").cast(pl.Float64) / 30.0)
        * pl.when(pl.col("usage_date").dt.weekday() >= 6).then(pl.col("weekend")).otherwise(1.0)
    )
    frame = (
        frame.with_columns(base=base)
        .with_columns(noise_sd=pl.col("level") * NOISE_PCT, z=noise)
        .with_columns(cost=(pl.col("base") + pl.col("noise_sd") * pl.col("z")).clip(0.0))
    )
    injected: list[InjectedSpike] = []
    if spikes:
        rows = []
        for sid in rng.sample(range(n), min(spikes, n)):
            length = rng.choice((1, 1, 2, 3))
            first = start + timedelta(days=rng.randrange(90, days - length))  # after the baseline has formed
            size = rng.uniform(*spike_sizes)
            amount = size * level[sid] * NOISE_PCT
            injected.append(
                InjectedSpike(
                    f"Service{sid % services:03d}",
                    f"{100000000000 + sid // services}",
                    "us-east-1",
                    first,
                    length,
                    size,
                    amount,
                )
            )
            rows += [(sid, first + timedelta(days=k), amount) for k in range(length)]
        extra = pl.DataFrame(rows, schema={"sid": pl.UInt32, "usage_date": pl.Date, "extra": pl.Float64}, orient="row")
        frame = (
            frame.with_columns(pl.col("sid").cast(pl.UInt32))
            .join(extra, on=["sid", "usage_date"], how="left")
            .with_columns(pl.col("cost") + pl.col("extra").fill_null(0.0))
        )
    out = frame.select("usage_date", "service", "usage_account_id", "region", "cost")
    if usage_types_per_series > 1:
        shares = pl.DataFrame(
            {
                "usage_type": [f"UsageType{j}" for j in range(usage_types_per_series)],
                "share": [1.0 / usage_types_per_series] * usage_types_per_series,
            }
        )
        out = out.join(shares, how="cross").with_columns(pl.col("cost") * pl.col("share")).drop("share")
    else:
        out = out.with_columns(usage_type=pl.lit("BoxUsage"))
    return out.select("usage_date", "service", "usage_account_id", "region", "usage_type", "cost"), injected


def _normal(n: int, seed: int) -> pl.Series:
    """Standard normal draws by Box-Muller over two shuffled uniform grids (Python's gauss costs ~1 us a draw)."""
    u1 = (pl.int_range(n, eager=True).shuffle(seed=seed).cast(pl.Float64) + 0.5) / n
    u2 = pl.int_range(n, eager=True).shuffle(seed=seed + 1).cast(pl.Float64) / n
    return ((-2.0 * u1.log()).sqrt() * (2 * math.pi * u2).cos()).alias("z")
