"""Savings Plans analyzer speed, and the backtest against its targets.

Default: `recommend` on a year of hourly data (target well under 100 ms) and the backtest its targets are stated
on (8 core + 4 robustness families, 3 seeds, 24 monthly decisions; about 60 s). BENCH_SP_QUICK=1 runs one seed
(about 20 s): a single seed can put two near-optimal strategies a few hundredths of a percent either way.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import time
from datetime import datetime, timedelta, timezone

import polars as pl

from blocks_pipelines.savings_plans.analysis.analyzer import recommend
from blocks_pipelines.savings_plans.backtest.evaluate import (
    family_fractions,
    format_table,
    run_backtest,
    target_summary,
)


def year_of_usage() -> pl.DataFrame:
    rng = random.Random(0)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    n = 365 * 24
    return pl.DataFrame(
        {
            "ts_hour": [start + timedelta(hours=i) for i in range(n)],
            "eligible_on_demand_cost": [
                120
                * math.exp(0.02 * i / 720)
                * (1 + 0.3 * math.sin(2 * math.pi * i / 24))
                * math.exp(rng.gauss(0, 0.1))
                for i in range(n)
            ],
            "sp_rate_ratio": [0.72] * n,
        }
    )


def main() -> None:
    df = year_of_usage()
    existing = [(20.0, datetime(2025, 3, 1, tzinfo=timezone.utc)), (15.0, datetime(2025, 9, 1, tzinfo=timezone.utc))]
    recommend(df, existing_commitments=existing)  # warm imports
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        recommend(df, existing_commitments=existing)
        times.append((time.perf_counter() - t0) * 1000)
    print(
        f"recommend, 1 year hourly (8760 rows), 2 existing plans: median {statistics.median(times):.1f} ms, "
        f"max {max(times):.1f} ms   (target: well under 100 ms)"
    )
    three = []
    for _ in range(5):
        t0 = time.perf_counter()
        recommend(df, existing_commitments=existing, term_years=3)
        three.append((time.perf_counter() - t0) * 1000)
    print(f"recommend, 3-year term: median {statistics.median(three):.1f} ms")

    quick = os.environ.get("BENCH_SP_QUICK") == "1"
    t0 = time.perf_counter()
    results = run_backtest(seeds=(0,) if quick else (0, 1, 2), months=24)
    elapsed = time.perf_counter() - t0
    print(
        f"\nbacktest ({'quick: 24 decisions x 1 seed' if quick else '24 decisions x 3 seeds'}), "
        f"{len(results)} scenarios in {elapsed:.1f} s"
    )
    print(format_table(results))
    core_mean, behind = target_summary(family_fractions(results))
    print(
        f"ladder mean on the core families {core_mean:.3f} (target >= 0.95); families where ladder < aws: "
        f"{behind or 'none'} (target: none); load average {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
