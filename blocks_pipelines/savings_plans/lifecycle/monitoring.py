"""After a purchase: did coverage and utilization land where the analysis said they would?

Pure functions over the `sp_position_hourly` mart's TOTAL rows. Hours before the plan started are the baseline;
hours after are judged against the analyzer's P10 bands (utilization below its P10 is the failure that costs money:
paying for commitment nobody uses) and against the coverage the tenant had before (a purchase must not be followed
by lower coverage).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

BASELINE = timedelta(days=7)
COVERAGE_TOLERANCE = 0.02  # hourly noise; a dip below the baseline by more than this fails the check
UTILIZATION_FLOOR = 0.9  # used when the analysis carried no utilization band


@dataclass(frozen=True)
class Band:
    p10: float
    p50: float
    p90: float


def find_band(expected: dict[str, Any], word: str) -> Band | None:
    """The first {p10, p50, p90} mapping under a key mentioning `word` (the analyzer's utilization_pct), at any
    depth, as fractions (keys ending in _pct hold percentages)."""
    for key, value in expected.items():
        if isinstance(value, dict):
            lowered = {str(k).lower(): v for k, v in value.items()}
            if word in key.lower() and {"p10", "p50", "p90"} <= lowered.keys():
                scale = 100.0 if key.lower().endswith("_pct") else 1.0
                return Band(*(float(lowered[p]) / scale for p in ("p10", "p50", "p90")))
            nested = find_band(value, word)
            if nested:
                return nested
    return None


@dataclass(frozen=True)
class MonitoringReport:
    since: datetime
    hours_after: int
    coverage_before: float | None
    coverage_after: float | None
    utilization_after: float | None
    utilization_band: Band | None
    coverage_band: Band | None

    @property
    def utilization_ok(self) -> tuple[bool, str]:
        if self.utilization_after is None:
            return True, f"no CUR hours since {self.since.isoformat()} yet: nothing to judge"
        floor = self.utilization_band.p10 if self.utilization_band else UTILIZATION_FLOOR
        source = "the analysis' P10 band" if self.utilization_band else "the default floor"
        ok = self.utilization_after + 1e-9 >= floor
        return ok, (
            f"utilization {self.utilization_after:.1%} over {self.hours_after} h "
            f"{'>=' if ok else 'is below'} {floor:.1%} ({source})"
            + ("" if ok else "; usage fell under the commitment: review the tenant before buying more")
        )

    @property
    def coverage_ok(self) -> tuple[bool, str]:
        if self.coverage_after is None:
            return True, f"no CUR hours since {self.since.isoformat()} yet: nothing to judge"
        floors = []
        if self.coverage_before is not None:
            floors.append(
                (self.coverage_before - COVERAGE_TOLERANCE, f"the 7 days before ({self.coverage_before:.1%})")
            )
        if self.coverage_band is not None:
            floors.append((self.coverage_band.p10, f"the analysis' P10 band ({self.coverage_band.p10:.1%})"))
        if not floors:
            return True, f"coverage {self.coverage_after:.1%}; no baseline to compare with"
        floor, what = max(floors)
        ok = self.coverage_after + 1e-9 >= floor
        return ok, (
            f"coverage {self.coverage_after:.1%} {'holds against' if ok else 'dipped below'} {what}"
            + ("" if ok else "; eligible usage moved off covered services or a plan expired")
        )


def _ratio(rows: pl.DataFrame, num: str, den: str) -> float | None:
    total = rows[den].sum() if rows.height else 0
    return float(rows[num].sum() / total) if total and total > 0 else None


def monitor(position: pl.DataFrame, since: datetime, expected: dict[str, Any]) -> MonitoringReport:
    """`position`: sp_position_hourly rows; `since`: when the newest purchased plan started."""
    total = position.filter(pl.col("savings_plan_arn") == "TOTAL").with_columns(
        pl.col("usage_hour").cast(pl.Datetime("us", "UTC"))
    )
    after = total.filter(pl.col("usage_hour") >= since)
    before = total.filter(pl.col("usage_hour").is_between(since - BASELINE, since, closed="left"))
    return MonitoringReport(
        since=since,
        hours_after=after.height,
        coverage_before=_ratio(before, "covered_on_demand_cost", "eligible_on_demand_cost"),
        coverage_after=_ratio(after, "covered_on_demand_cost", "eligible_on_demand_cost"),
        utilization_after=_ratio(after, "used_commitment", "commitment"),
        utilization_band=find_band(expected, "utilization"),
        coverage_band=find_band(expected, "coverage"),
    )
