"""Spend anomaly detection: speed at the issue's scale and precision/recall on injected spikes.

Speed: 2 years x 200 services x 50 accounts (10,000 series, 7.3 M daily rows) through detect_spend_spikes and
detect_new_services, as one tenant's tick does (target: under 5 s).

Accuracy: spikes of 3-12x the series' daily noise (standard deviation), lasting 1-3 days, injected at random into
2,000 series of a year of daily spend with a weekly cycle, growth and Gaussian noise (tests/synthetic/daily_spend.py).
A detection is a true positive when it is on a spiked series and overlaps the spike's days. Printed per spike size
band and detector sensitivity, with min_impact_usd = 0 (the statistics alone), then with the default $50
threshold (spikes whose injected dollars are under it are left out of the recall: nobody must be told).
Target: recall >= 0.9 at precision >= 0.8 for spikes >= 3x the noise.
"""

from __future__ import annotations

import os
import resource
import time
from datetime import date, timedelta

import polars as pl

from blocks_pipelines.alerts.spend import SpendParams, detect_new_services, detect_spend_spikes
from tests.synthetic.daily_spend import synthetic_daily

END = date(2026, 11, 30)
BANDS = ((3.0, 4.0), (4.0, 6.0), (6.0, 8.0), (8.0, 12.0))


def speed() -> None:
    daily, _ = synthetic_daily(services=200, accounts=50, days=730, end=END, spikes=500)
    params = SpendParams()
    detect_spend_spikes(daily.head(10_000), END, params)  # warm polars
    times, cpu, found = [], [], 0
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        found = len(detect_spend_spikes(daily, END, params))
        found += len(detect_new_services(daily, END, params, since=END - timedelta(days=6)))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(
        f"detection, 2 years x 200 services x 50 accounts ({daily.height / 1e6:.1f} M daily rows, "
        f"{200 * 50:,} series): best {min(times):.2f} s, worst {max(times):.2f} s wall; {min(cpu):.2f} s CPU "
        f"(all threads); {found} anomalies (min_impact_usd {params.min_impact_usd:.0f})   (target: under 5 s)"
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  process peak RSS (generating the input included): {peak_mb:.0f} MB")


def accuracy(sensitivities: tuple[float, ...], min_impact_usd: float = 0.0, seed: int = 11) -> None:
    daily, injected = synthetic_daily(
        services=100, accounts=20, days=365, end=END, spikes=600, spike_sizes=(3.0, 12.0), seed=seed
    )
    truth = pl.DataFrame(
        [
            {
                "service": s.service,
                "usage_account_id": s.usage_account_id,
                "spike": i,
                "first_day": s.first_day,
                "last_day": s.first_day + timedelta(days=s.days - 1),
                "size": s.size_in_noise,
                "impact": s.amount_per_day * s.days,
            }
            for i, s in enumerate(injected)
        ]
    )
    # with a dollar threshold, a spike smaller than it is not one a user must hear about: out of the recall's truth
    # (a detection of it still counts as a true positive)
    injected_all, truth = truth, truth.filter(pl.col("impact") >= min_impact_usd)
    print(
        f"\naccuracy: {truth.height} spikes (injected impact >= ${min_impact_usd:.0f}) in {100 * 20:,} series x "
        f"365 days, sizes 3-12x the daily noise, seed {seed}; detections with min_impact_usd = {min_impact_usd:.0f}"
    )
    print(
        f"  {'sensitivity':>11} {'detections':>10} {'precision':>9}  "
        + "  ".join(f"recall {lo:.0f}-{hi:.0f}x" for lo, hi in BANDS)
        + "  recall >=3x"
    )
    for sensitivity in sensitivities:
        found = detect_spend_spikes(daily, END, SpendParams(sensitivity=sensitivity, min_impact_usd=min_impact_usd))
        det = pl.DataFrame(
            [
                {
                    "service": d.dimensions["service"],
                    "usage_account_id": d.dimensions["usage_account_id"],
                    "det": i,
                    "first_seen": d.first_seen,
                    "last_seen": d.last_seen,
                }
                for i, d in enumerate(found)
            ]
        )
        hits = det.join(injected_all, on=["service", "usage_account_id"]).filter(
            (pl.col("first_seen") <= pl.col("last_day")) & (pl.col("last_seen") >= pl.col("first_day"))
        )
        precision = hits["det"].n_unique() / max(len(found), 1)
        caught = set(hits["spike"].to_list()) & set(truth["spike"].to_list())
        recalls = []
        for lo, hi in BANDS:
            band = truth.filter((pl.col("size") >= lo) & (pl.col("size") < hi))["spike"].to_list()
            recalls.append(sum(s in caught for s in band) / max(len(band), 1))
        overall = len(caught) / truth.height
        print(
            f"  {sensitivity:>11.1f} {len(found):>10} {precision:>9.3f}  "
            + "  ".join(f"{r:>13.3f}" for r in recalls)
            + f"  {overall:>11.3f}"
        )


def main() -> None:
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    speed()
    accuracy((3.0, 3.5, 4.0, 5.0))
    accuracy((3.5, 4.0, 5.0), min_impact_usd=50.0)
    defaults = SpendParams()
    for seed in (12, 13):  # the defaults on other draws of the same generator: not tuned to one seed
        accuracy((defaults.sensitivity,), min_impact_usd=defaults.min_impact_usd, seed=seed)


if __name__ == "__main__":
    main()
