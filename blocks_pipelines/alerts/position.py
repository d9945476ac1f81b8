"""Savings Plans coverage and utilization dips, from the sp_position_hourly mart's TOTAL rows, by UTC day.

- Coverage dip: a day's coverage (covered / eligible on-demand $) at least `coverage_dip_points` under the median
  of the previous COVERAGE_BASELINE_DAYS days, while a commitment is held. A dip means on-demand spend the plans
  used to cover is now billed at on-demand rates (a new workload, a family moved, a plan expired).
- Utilization dip: a day's utilization (used / committed $) under the tenant's floor: commitment paid for and not
  used. Its impact is the unused commitment.
Consecutive dip days are one alert (first seen = the first day), like spend spikes.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from blocks_pipelines.state.alert_models import AlertKind, Detection, severity_for_impact

COVERAGE_BASELINE_DAYS = 14
MIN_BASELINE_DAYS = 7
MIN_ELIGIBLE_USD = 1.0  # a day with (almost) no eligible usage has no meaningful coverage


def daily_position(position: pl.DataFrame) -> pl.DataFrame:
    """usage_date, commitment, used, eligible, covered, coverage_pct, utilization_pct (TOTAL rows summed by day)."""
    total = position.filter(pl.col("savings_plan_arn") == "TOTAL")
    if "usage_date" not in total.columns:
        total = total.with_columns(usage_date=pl.col("usage_hour").dt.date())
    return (
        total.group_by("usage_date")
        .agg(
            commitment=pl.col("commitment").sum(),
            used=pl.col("used_commitment").sum(),
            eligible=pl.col("eligible_on_demand_cost").sum(),
            covered=pl.col("covered_on_demand_cost").sum(),
        )
        .sort("usage_date")
        .with_columns(
            coverage_pct=pl.when(pl.col("eligible") >= MIN_ELIGIBLE_USD).then(
                100 * pl.col("covered") / pl.col("eligible")
            ),
            utilization_pct=pl.when(pl.col("commitment") > 0).then(100 * pl.col("used") / pl.col("commitment")),
        )
    )


def _runs(days: pl.DataFrame, flag: pl.Expr) -> list[pl.DataFrame]:
    flagged = days.with_columns(flag=flag.fill_null(False)).filter(pl.col("flag"))
    if flagged.is_empty():
        return []
    gap = (pl.col("usage_date") - pl.col("usage_date").shift(1)).dt.total_days().fill_null(2)
    flagged = flagged.with_columns(run=(gap != 1).cum_sum())
    return [part for _, part in flagged.group_by("run", maintain_order=True)]


def detect_coverage_dips(
    position: pl.DataFrame, as_of: date, dip_points: float, min_impact_usd: float, since: date | None = None
) -> list[Detection]:
    days = daily_position(position).filter(pl.col("usage_date") <= as_of)
    baseline = pl.col("coverage_pct").shift(1).rolling_median(COVERAGE_BASELINE_DAYS, min_samples=MIN_BASELINE_DAYS)
    days = days.with_columns(expected=baseline)
    dip = (pl.col("commitment") > 0) & (pl.col("expected") - pl.col("coverage_pct") >= dip_points)
    out = []
    for run in _runs(days, dip):
        last = run.row(-1, named=True)
        # on-demand $ that the usual coverage would have put under a plan
        uncovered = float((run["eligible"] * (run["expected"] - run["coverage_pct"]) / 100).sum())
        if (since is not None and last["usage_date"] < since) or uncovered < min_impact_usd:
            continue
        first_seen = run["usage_date"][0]
        out.append(
            Detection(
                kind=AlertKind.coverage_dip,
                severity=severity_for_impact(uncovered, min_impact_usd),
                dimensions={"savings_plan_arn": "TOTAL"},
                first_seen=first_seen,
                last_seen=last["usage_date"],
                expected=round(last["expected"], 1),
                actual=round(last["coverage_pct"], 1),
                unit="pct",
                impact_usd=round(uncovered, 2),
                message=(
                    f"Savings Plans coverage fell to {last['coverage_pct']:.1f}% on {last['usage_date']} against "
                    f"{last['expected']:.1f}% usual (the previous {COVERAGE_BASELINE_DAYS} days' median), since "
                    f"{first_seen}: ${uncovered:,.2f} of eligible usage billed on demand instead."
                ),
            )
        )
    return out


def detect_utilization_dips(
    position: pl.DataFrame, as_of: date, floor_pct: float, min_impact_usd: float, since: date | None = None
) -> list[Detection]:
    days = daily_position(position).filter(pl.col("usage_date") <= as_of)
    out = []
    for run in _runs(days, pl.col("utilization_pct") < floor_pct):
        last = run.row(-1, named=True)
        unused = float((run["commitment"] - run["used"]).clip(0).sum())
        if (since is not None and last["usage_date"] < since) or unused < min_impact_usd:
            continue
        first_seen = run["usage_date"][0]
        out.append(
            Detection(
                kind=AlertKind.utilization_dip,
                severity=severity_for_impact(unused, min_impact_usd),
                dimensions={"savings_plan_arn": "TOTAL"},
                first_seen=first_seen,
                last_seen=last["usage_date"],
                expected=floor_pct,
                actual=round(last["utilization_pct"], 1),
                unit="pct",
                impact_usd=round(unused, 2),
                message=(
                    f"Savings Plans utilization was {last['utilization_pct']:.1f}% on {last['usage_date']}, under "
                    f"the {floor_pct:.0f}% floor since {first_seen}: ${unused:,.2f} of commitment paid and unused."
                ),
            )
        )
    return out
