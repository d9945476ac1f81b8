"""Savings Plans analyzer: how much additional hourly commitment to buy now.

Mechanics (REFERENCE.md section 2). A commitment of C $/h at SP rates covers C / r of on-demand-equivalent usage
(r = SP rate / on-demand rate). In an hour with eligible usage u against a portfolio covering K, the plan saves
min(u, K) - r K versus on-demand. The marginal unit of cover at level K saves P(u > K) - r per hour, so the best
cover is the (1 - r)-quantile of usage (a newsvendor problem: at a 28% discount cover the 28th percentile).

The decision:
- usage over the new plan's term is forecast as a distribution per week (see analyzer_forecast),
- plans already held cover their share until they end, so an expiring plan frees room for the new one,
- Blocks ladders: it decides again every `next_review_days`. Until then only this purchase can add cover, so the
  full marginal value counts. After that, a later tranche can top up any shortfall but nothing can undo an
  excess, so only the expected loss of excess counts. The tranche is sized where the expected marginal value
  crosses zero. With `next_review_days=None` (a one-shot purchase) it is the plain newsvendor over the term.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl
from pydantic import BaseModel, Field

from blocks_pipelines.savings_plans.analysis.forecast import UsageForecast, fit_forecast
from blocks_pipelines.savings_plans.analysis.input import read_commitments, read_usage
from blocks_pipelines.savings_plans.analysis.rates import ratio_for_offering, validate_offering

HOURS_PER_YEAR = 8760
BLOCK_HOURS = 7 * 24
BAND_DAYS = 30
CURVE_POINTS = 12
MIN_COMMITMENT = 0.001  # CreateSavingsPlan's smallest commitment and its granularity, $/h


class Band(BaseModel):
    expected: float = Field(description="aggregate over the window (total covered / total eligible, ...)")
    p10: float
    p50: float
    p90: float


class CurvePoint(BaseModel):
    hourly_commitment: float = Field(description="additional $/h at SP rates")
    expected_savings: float = Field(description="$ saved by this additional plan over its term")
    savings_pct: float = Field(description="expected_savings as % of eligible on-demand spend over the term")
    coverage_pct: float
    utilization_pct: float | None


class ForecastSummary(BaseModel):
    recent_hourly_on_demand: float = Field(description="eligible on-demand $/h, mean of the last 7 days")
    monthly_growth_pct: float = Field(description="fitted trend of the level, % per month (damped when projected)")
    monthly_volatility_pct: float = Field(description="sd of the level's month-to-month drift, %")
    history_days_used: int
    step_change_days_ago: int | None
    step_change_pct: float | None


class Recommendation(BaseModel):
    hourly_commitment: float = Field(description="additional $/h to buy now, at SP rates")
    uncapped_hourly_commitment: float
    term_years: int
    payment_option: str
    sp_rate_ratio: float = Field(description="SP rate / on-demand rate assumed for the new plan")
    observed_sp_rate_ratio: float
    rate_source: str = Field(
        default="",
        description="where sp_rate_ratio comes from: real offering rates or the "
        "typical discount table, and how much of the mix was priced",
    )
    decision_time: datetime
    existing_hourly_commitment: float = Field(description="active plans now, $/h at SP rates")
    expiring_hourly_commitment: float = Field(description="part of the existing $/h that ends within the new term")
    max_hourly_commitment: float | None
    capped: bool
    coverage_pct: Band = Field(description="daily coverage of the whole portfolio over the next 30 days, %")
    utilization_pct: Band | None = Field(description="daily utilization of the whole portfolio, next 30 days, %")
    term_coverage_pct: float
    term_utilization_pct: float | None
    expected_savings: float = Field(description="$ the new plan saves over its term vs on-demand")
    expected_monthly_savings: float
    expected_savings_pct: float = Field(description="expected_savings as % of eligible on-demand over the term")
    expected_eligible_on_demand: float = Field(description="forecast eligible on-demand $ over the term")
    curve: list[CurvePoint]
    forecast: ForecastSummary | None
    rationale: str


@dataclass(frozen=True)
class _Block:
    hours: int
    existing: float  # on-demand-equivalent cover of plans still active, $/h
    in_review: bool  # before the next decision: only this purchase can add cover
    levels: tuple[float, ...]  # equal-probability level scenarios


def recommend(
    usage: pl.DataFrame,
    *,
    existing_commitments: Sequence[tuple[float, datetime]] = (),
    term_years: int = 1,
    payment_option: str = "no_upfront",
    max_hourly_commitment: float | None = None,
    next_review_days: float | None = 30.0,
    offering_ratio: float | None = None,
    rate_source: str | None = None,
    start_at: datetime | None = None,
) -> Recommendation:
    """Recommend the additional Savings Plan commitment to buy at the end of `usage`.

    usage: one row per UTC hour with ts_hour, eligible_on_demand_cost, sp_rate_ratio.
    existing_commitments: plans as ($/h at SP rates, end time) or ($/h, end, start) for a queued plan that starts
        later (a renewal); ended ones are ignored.
    max_hourly_commitment: cap on the whole portfolio ($/h held after this purchase).
    next_review_days: when the next purchase decision happens (Blocks' monthly ladder); None for a one-shot buy.
    offering_ratio: the new plan's SP rate / on-demand rate from real offering rates (offering_rates.quote);
        None scales the observed ratio by the typical discount table. rate_source says which, for the proposal.
    start_at: when the new plan starts, if later than now: a replacement queued to begin as an expiring plan ends
        (its term, its review and its savings are counted from then; the bands still describe the next 30 days).
    """
    validate_offering(term_years, payment_option)
    if max_hourly_commitment is not None and max_hourly_commitment < 0:
        raise ValueError(f"max_hourly_commitment={max_hourly_commitment} must be >= 0 (or None for no cap)")
    if next_review_days is not None and next_review_days <= 0:
        raise ValueError(f"next_review_days={next_review_days} must be > 0 (or None for a one-shot purchase)")
    data = read_usage(usage)
    now = data.end
    active = read_commitments(existing_commitments, now)
    observed = data.observed_ratio
    if offering_ratio is not None and not 0.0 < offering_ratio <= 1.0:
        raise ValueError(f"offering_ratio={offering_ratio} must be in (0, 1]: SP rate / on-demand rate")
    ratio = offering_ratio if offering_ratio is not None else ratio_for_offering(observed, term_years, payment_option)
    source = rate_source or (
        "offering rates" if offering_ratio is not None else "typical discount table scaled from the observed rate"
    )
    term_hours = HOURS_PER_YEAR * term_years
    existing_sp = sum(c for c, _, start in active if start <= now)
    # (on-demand-equivalent cover, hours from now until it starts (0 unless queued), hours until it ends)
    cover = [
        (c / observed, max(0.0, (start - now).total_seconds() / 3600.0), (end - now).total_seconds() / 3600.0)
        for c, end, start in active
    ]
    expiring_sp = sum(
        c for c, end, start in active if start <= now and (end - now).total_seconds() / 3600.0 < term_hours
    )
    # the cap holds for the portfolio over the new plan's life: from its start (a renewal's predecessor has ended
    # by then), including plans queued to start later
    starts = now if start_at is None else max(now, start_at)
    moments = [starts] + [start for _, _, start in active if starts < start]
    held_then = max(sum(c for c, end, start in active if start <= t < end) for t in moments)
    room = None if max_hourly_commitment is None else max(0.0, max_hourly_commitment - held_then)

    forecast = fit_forecast(data.costs)
    if forecast is None:
        zero = _zero_usage(
            data, ratio, observed, term_years, payment_option, existing_sp, expiring_sp, max_hourly_commitment
        )
        zero.rate_source = source
        return zero
    review_hours = term_hours if next_review_days is None else min(term_hours, int(next_review_days * 24))
    offset = 0 if start_at is None else max(0, math.ceil((start_at - now).total_seconds() / 3600.0))
    blocks = _term_blocks(forecast, cover, term_hours, review_hours, offset)

    best_cover = _best_cover(blocks, forecast, ratio)
    uncapped = _floor_commitment(best_cover * ratio)
    commitment = uncapped if room is None else min(uncapped, _floor_commitment(room))
    x = commitment / ratio
    model = _TermModel(blocks, forecast, ratio)
    outcome = model.outcome(x)
    coverage, utilization = _daily_bands(forecast, cover, x, offset)
    curve = _curve(model, forecast, ratio, x, best_cover)
    summary = ForecastSummary(
        recent_hourly_on_demand=round(forecast.recent_hourly_mean, 4),
        monthly_growth_pct=round(100 * forecast.monthly_growth(), 2),
        monthly_volatility_pct=round(100 * forecast.monthly_volatility, 2),
        history_days_used=forecast.window_days,
        step_change_days_ago=forecast.step_days_ago,
        step_change_pct=None if forecast.step_days_ago is None else round(100 * math.expm1(forecast.step_log_size), 1),
    )
    rec = Recommendation(
        hourly_commitment=commitment,
        uncapped_hourly_commitment=uncapped,
        term_years=term_years,
        payment_option=payment_option,
        sp_rate_ratio=round(ratio, 4),
        observed_sp_rate_ratio=round(observed, 4),
        rate_source=source,
        decision_time=now,
        existing_hourly_commitment=round(existing_sp, 4),
        expiring_hourly_commitment=round(expiring_sp, 4),
        max_hourly_commitment=max_hourly_commitment,
        capped=commitment < uncapped,
        coverage_pct=coverage,
        utilization_pct=utilization,
        term_coverage_pct=outcome.coverage_pct,
        term_utilization_pct=outcome.utilization_pct,
        expected_savings=round(outcome.savings, 2),
        expected_monthly_savings=round(outcome.savings * 730.0 / term_hours, 2),
        expected_savings_pct=outcome.savings_pct,
        expected_eligible_on_demand=round(outcome.eligible, 2),
        curve=curve,
        forecast=summary,
        rationale="",
    )
    rec.rationale = _rationale(rec, next_review_days, data.filled_hours)
    return rec


def _term_blocks(
    forecast: UsageForecast,
    cover: list[tuple[float, float, float]],
    term_hours: int,
    review_hours: int,
    offset: int = 0,
) -> list[_Block]:
    """The new plan's term (from `offset` hours ahead) in weekly blocks, cut where held plans start or end."""
    end_hours, review_end = offset + term_hours, offset + review_hours
    cuts = set(range(offset, end_hours, BLOCK_HOURS)) | {end_hours, review_end}
    cuts |= {math.ceil(h) for _, starts, ends in cover for h in (starts, ends) if offset < h < end_hours}
    cuts = sorted(cuts)
    blocks = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        existing = sum(k for k, starts, ends in cover if starts <= start < ends)
        mid_days = (start + end) / 48.0
        blocks.append(_Block(end - start, existing, end <= review_end, tuple(forecast.level_nodes(mid_days))))
    return blocks


def _marginal_value(blocks: list[_Block], forecast: UsageForecast, ratio: float, x: float) -> float:
    """d(expected ladder value)/dx, in hours of cover; nonincreasing in x."""
    shape = forecast.shape
    total = 0.0
    for b in blocks:
        level_sum = 0.0
        for level in b.levels:
            value = shape.survival((b.existing + x) / level) - ratio
            level_sum += value if b.in_review or value < 0.0 else 0.0
        total += b.hours * level_sum
    return total


def _best_cover(blocks: list[_Block], forecast: UsageForecast, ratio: float) -> float:
    """The largest x (on-demand $/h) whose marginal value is still positive, by bisection."""
    if _marginal_value(blocks, forecast, ratio, 0.0) <= 0.0:
        return 0.0
    lo, hi = 0.0, max(b.levels[-1] for b in blocks) * forecast.shape.values[-1]
    for _ in range(48):
        mid = (lo + hi) / 2.0
        if _marginal_value(blocks, forecast, ratio, mid) > 0.0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-6 * hi:
            break
    return lo


@dataclass(frozen=True)
class _Outcome:
    savings: float
    eligible: float
    coverage_pct: float
    utilization_pct: float | None
    savings_pct: float


class _TermModel:
    """The term's (block, level scenario) cells with everything that does not depend on the new cover."""

    def __init__(self, blocks: list[_Block], forecast: UsageForecast, ratio: float):
        shape = forecast.shape
        self.shape, self.ratio = shape, ratio
        weight = 1.0 / len(blocks[0].levels)
        # (hours x probability, level, existing cover, level x E[(z - existing/level)^+])
        self.cells = [
            (b.hours * weight, level, b.existing, level * shape.partial_expectation(b.existing / level))
            for b in blocks
            for level in b.levels
        ]
        self.eligible = sum(w * level * shape.mean for w, level, _, _ in self.cells)
        self.hours = sum(b.hours for b in blocks)

    def outcome(self, x: float) -> _Outcome:
        pe = self.shape.partial_expectation
        mean = self.shape.mean
        savings = covered = capacity = 0.0
        for w, level, existing, uncovered_before in self.cells:
            uncovered_after = level * pe((existing + x) / level)
            covered += w * (level * mean - uncovered_after)
            savings += w * (uncovered_before - uncovered_after)
            capacity += w * (existing + x)
        savings -= self.ratio * x * self.hours
        eligible = self.eligible
        return _Outcome(
            savings=savings,
            eligible=eligible,
            coverage_pct=round(100 * covered / eligible, 2) if eligible > 0 else 0.0,
            utilization_pct=round(100 * covered / capacity, 2) if capacity > 0 else None,
            savings_pct=round(100 * savings / eligible, 2) if eligible > 0 else 0.0,
        )


def _daily_bands(
    forecast: UsageForecast, cover: list[tuple[float, float, float]], x: float, offset: int = 0
) -> tuple[Band, Band | None]:
    """Daily coverage/utilization over the next 30 days: recent days' shapes (same weekday) x level scenarios."""
    days = forecast.recent_days
    coverages, utilizations = [], []
    covered_total = eligible_total = capacity_total = 0.0
    for j in range(BAND_DAYS):
        hour = (j + 0.5) * 24
        k = (x if hour >= offset else 0.0) + sum(c for c, starts, ends in cover if starts <= hour < ends)
        profile = days[j % len(days)]
        for level in forecast.level_nodes(j + 0.5):
            used = sum(min(level * z, k) for z in profile)
            demand = level * sum(profile)
            coverages.append(100 * used / demand if demand > 0 else 100.0)
            if k > 0:
                utilizations.append(100 * used / (24 * k))
            covered_total += used
            eligible_total += demand
            capacity_total += 24 * k
    coverage = _band(coverages, 100 * covered_total / eligible_total if eligible_total > 0 else 100.0)
    utilization = _band(utilizations, 100 * covered_total / capacity_total) if utilizations else None
    return coverage, utilization


def _band(values: list[float], expected: float) -> Band:
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return Band(expected=round(expected, 2), p10=q(0.1), p50=q(0.5), p90=q(0.9))


def _curve(model: _TermModel, forecast: UsageForecast, ratio: float, x: float, best: float) -> list[CurvePoint]:
    median_level = math.exp(forecast.log_level) * forecast.shape.values[len(forecast.shape.values) // 2]
    top = max(2.0 * max(x, best), median_level)
    covers = sorted({top * i / CURVE_POINTS for i in range(CURVE_POINTS + 1)} | {x})
    points = []
    for cover in covers:
        outcome = model.outcome(cover)
        points.append(
            CurvePoint(
                hourly_commitment=round(cover * ratio, 3),
                expected_savings=round(outcome.savings, 2),
                savings_pct=outcome.savings_pct,
                coverage_pct=outcome.coverage_pct,
                utilization_pct=outcome.utilization_pct,
            )
        )
    return points


def _floor_commitment(value: float) -> float:
    steps = math.floor(value / MIN_COMMITMENT + 1e-9)
    return round(steps * MIN_COMMITMENT, 3) if steps >= 1 else 0.0


def _zero_usage(data, ratio, observed, term_years, payment_option, existing_sp, expiring_sp, cap) -> Recommendation:
    return Recommendation(
        hourly_commitment=0.0,
        uncapped_hourly_commitment=0.0,
        term_years=term_years,
        payment_option=payment_option,
        sp_rate_ratio=round(ratio, 4),
        observed_sp_rate_ratio=round(observed, 4),
        decision_time=data.end,
        existing_hourly_commitment=round(existing_sp, 4),
        expiring_hourly_commitment=round(expiring_sp, 4),
        max_hourly_commitment=cap,
        capped=False,
        coverage_pct=Band(expected=0.0, p10=0.0, p50=0.0, p90=0.0),
        utilization_pct=None,
        term_coverage_pct=0.0,
        term_utilization_pct=None,
        expected_savings=0.0,
        expected_monthly_savings=0.0,
        expected_savings_pct=0.0,
        expected_eligible_on_demand=0.0,
        curve=[],
        forecast=None,
        rationale="No Savings Plans-eligible usage in the last 28 days: there is nothing to commit to, buy $0/h.",
    )


def _rationale(rec: Recommendation, next_review_days: float | None, filled_hours: int) -> str:
    f = rec.forecast
    parts = [
        f"Buy ${rec.hourly_commitment:,.3f}/h more of a {rec.term_years}-year {rec.payment_option.replace('_', ' ')} "
        f"Savings Plan (SP rate {rec.sp_rate_ratio:.2f} x on-demand, {100 * (1 - rec.sp_rate_ratio):.0f}% off; "
        f"rates: {rec.rate_source}).",
        f"Eligible on-demand-equivalent spend averaged ${f.recent_hourly_on_demand:,.2f}/h over the last 7 days; "
        f"the fitted trend is {f.monthly_growth_pct:+.1f}%/month (assumed to fade over ~6 months) and the level "
        f"drifts about {f.monthly_volatility_pct:.0f}% a month, from {f.history_days_used} days of history.",
    ]
    if f.step_change_days_ago is not None:
        parts.append(
            f"A step change of {f.step_change_pct:+.0f}% happened {f.step_change_days_ago} days ago, "
            "so only the data since then is used."
        )
    if rec.existing_hourly_commitment > 0:
        parts.append(
            f"Plans already held commit ${rec.existing_hourly_commitment:,.3f}/h, of which "
            f"${rec.expiring_hourly_commitment:,.3f}/h ends within the new term and frees room then."
        )
    if next_review_days is not None:
        parts.append(
            f"Sized for a ladder: the next decision is in {next_review_days:g} days and can add more, "
            "but nothing can undo an excess, so later months only count against over-commitment."
        )
    if rec.capped:
        parts.append(
            f"Capped by the tenant's maximum of ${rec.max_hourly_commitment:,.3f}/h in total "
            f"(uncapped: ${rec.uncapped_hourly_commitment:,.3f}/h)."
        )
    util = rec.utilization_pct
    parts.append(
        f"Expected over the next 30 days: coverage {rec.coverage_pct.expected:.1f}% (daily P10-P90 "
        f"{rec.coverage_pct.p10:.1f}-{rec.coverage_pct.p90:.1f}%)"
        + (f", utilization {util.expected:.1f}% (P10-P90 {util.p10:.1f}-{util.p90:.1f}%)." if util else ".")
    )
    parts.append(
        f"Expected savings of the new plan: ${rec.expected_savings:,.0f} over its term "
        f"(${rec.expected_monthly_savings:,.0f}/month, {rec.expected_savings_pct:.1f}% of eligible on-demand)."
    )
    if filled_hours:
        parts.append(f"{filled_hours} hours missing from the input were counted as no eligible usage.")
    return " ".join(parts)
