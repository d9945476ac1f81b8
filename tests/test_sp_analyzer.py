"""The Savings Plans analyzer: mechanics, portfolio handling, caps, validation, speed-independent properties."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from blocks_pipelines.savings_plans.analysis.analyzer import recommend
from blocks_pipelines.savings_plans.analysis.input import UsageInputError
from blocks_pipelines.savings_plans.analysis.rates import ratio_for_offering
from blocks_pipelines.savings_plans.backtest.evaluate import lookback_optimal_commitment

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


def hourly_usage(
    days: int = 120, level: float = 100.0, growth_per_month: float = 0.0, ratio: float = 0.72, seed: int = 0
) -> pl.DataFrame:
    rng = random.Random(seed)
    n = days * 24
    costs = [
        level
        * math.exp(growth_per_month * (i / 24 - days) / 30)
        * (1 + 0.3 * math.sin(2 * math.pi * i / 24))
        * math.exp(rng.gauss(0, 0.08))
        for i in range(n)
    ]
    return pl.DataFrame(
        {
            "ts_hour": [START + timedelta(hours=i) for i in range(n)],
            "eligible_on_demand_cost": costs,
            "sp_rate_ratio": [ratio] * n,
        }
    )


def end_of(df: pl.DataFrame) -> datetime:
    return df["ts_hour"][-1] + timedelta(hours=1)


def test_zero_usage_buys_nothing():
    df = hourly_usage().with_columns(eligible_on_demand_cost=pl.lit(0.0))
    rec = recommend(df)
    assert rec.hourly_commitment == 0.0
    assert rec.expected_savings == 0.0
    assert "nothing to commit" in rec.rationale


def test_one_shot_on_steady_usage_covers_the_discount_quantile():
    df = hourly_usage(days=90)
    rec = recommend(df, next_review_days=None)
    recent = sorted(df["eligible_on_demand_cost"].to_list()[-28 * 24 :])
    quantile_cover = recent[int(0.28 * len(recent))]  # 28% discount -> 28th percentile (newsvendor)
    assert rec.hourly_commitment / 0.72 == pytest.approx(quantile_cover, rel=0.05)
    assert 95.0 <= rec.utilization_pct.expected <= 100.0


def test_ladder_buys_no_more_than_one_shot_and_close_to_the_lookback_optimum():
    df = hourly_usage(days=120)
    ladder = recommend(df).hourly_commitment
    one_shot = recommend(df, next_review_days=None).hourly_commitment
    aws = lookback_optimal_commitment(df["eligible_on_demand_cost"].to_list()[-720:], 0.72)
    assert 0 < ladder <= one_shot
    assert ladder == pytest.approx(aws, rel=0.15)


def test_existing_commitments_reduce_the_buy():
    df = hourly_usage()
    far = end_of(df) + timedelta(days=400)
    none = recommend(df).hourly_commitment
    some = recommend(df, existing_commitments=[(20.0, far)]).hourly_commitment
    assert some == pytest.approx(none - 20.0, abs=1.0)
    assert recommend(df, existing_commitments=[(none + 10, far)]).hourly_commitment == 0.0


def test_expiring_commitments_free_room_and_expired_ones_are_ignored():
    df = hourly_usage()
    now = end_of(df)
    lasting = recommend(df, existing_commitments=[(40.0, now + timedelta(days=400))])
    expiring = recommend(df, existing_commitments=[(40.0, now + timedelta(days=10))])
    expired = recommend(df, existing_commitments=[(40.0, now - timedelta(days=1))])
    assert expiring.hourly_commitment > lasting.hourly_commitment
    assert expiring.expiring_hourly_commitment == 40.0 and lasting.expiring_hourly_commitment == 0.0
    assert expired.existing_hourly_commitment == 0.0
    assert expired.hourly_commitment == recommend(df).hourly_commitment


def test_cap_limits_the_whole_portfolio():
    df = hourly_usage()
    far = end_of(df) + timedelta(days=400)
    free = recommend(df, existing_commitments=[(10.0, far)])
    capped = recommend(df, existing_commitments=[(10.0, far)], max_hourly_commitment=25.0)
    assert free.hourly_commitment > 15.0
    assert capped.hourly_commitment == pytest.approx(15.0)
    assert capped.capped and capped.uncapped_hourly_commitment == free.hourly_commitment
    assert "Capped" in capped.rationale
    assert recommend(df, existing_commitments=[(30.0, far)], max_hourly_commitment=25.0).hourly_commitment == 0.0


def test_declining_usage_buys_less_than_steady_at_the_same_current_level():
    steady = recommend(hourly_usage(days=150)).hourly_commitment
    declining = recommend(hourly_usage(days=150, growth_per_month=-0.06))
    assert declining.forecast.monthly_growth_pct < -3
    assert declining.hourly_commitment < steady


def test_step_change_is_detected_and_only_recent_data_is_used():
    df = hourly_usage(days=120)
    stepped = df.with_columns(
        eligible_on_demand_cost=pl.when(pl.col("ts_hour") >= START + timedelta(days=100))
        .then(pl.col("eligible_on_demand_cost") * 1.6)
        .otherwise(pl.col("eligible_on_demand_cost"))
    )
    rec = recommend(stepped)
    assert rec.forecast.step_change_days_ago == pytest.approx(20, abs=2)
    assert rec.hourly_commitment > 1.4 * recommend(df).hourly_commitment


def test_result_is_deterministic_and_complete():
    df = hourly_usage()
    a, b = recommend(df), recommend(df)
    assert a == b
    for band in (a.coverage_pct, a.utilization_pct):
        assert band.p10 <= band.p50 <= band.p90
    assert a.curve[0].hourly_commitment == 0.0 and a.curve[0].expected_savings == 0.0
    assert any(p.hourly_commitment == a.hourly_commitment for p in a.curve)
    assert 0 < a.expected_savings_pct < 28
    assert f"{a.hourly_commitment:,.3f}" in a.rationale


def test_term_and_payment_option_shift_the_rate():
    df = hourly_usage()
    three_year = recommend(df, term_years=3, payment_option="all_upfront")
    assert three_year.sp_rate_ratio == pytest.approx(ratio_for_offering(0.72, 3, "all_upfront"), abs=1e-4)
    assert three_year.sp_rate_ratio < 0.72
    with pytest.raises(ValueError, match="term_years"):
        recommend(df, term_years=2)
    with pytest.raises(ValueError, match="payment_option"):
        recommend(df, payment_option="monthly")


def test_timezone_naive_and_unsorted_input_is_accepted():
    df = hourly_usage(days=30)
    naive = df.with_columns(pl.col("ts_hour").dt.replace_time_zone(None)).reverse()
    assert recommend(naive).hourly_commitment == recommend(df).hourly_commitment


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.drop("sp_rate_ratio"), "missing column"),
        (lambda df: df.filter(pl.col("ts_hour").dt.hour() == 0), "not hourly"),
        (
            lambda df: df.with_columns(
                eligible_on_demand_cost=pl.when(pl.col("ts_hour") == START + timedelta(hours=5))
                .then(-1.0)
                .otherwise(pl.col("eligible_on_demand_cost"))
            ),
            r"row 5 .*eligible_on_demand_cost = -1.0 is negative",
        ),
        (lambda df: df.with_columns(sp_rate_ratio=pl.lit(1.3)), r"sp_rate_ratio = 1.3 is outside \(0, 1\]"),
        (lambda df: df.with_columns(sp_rate_ratio=pl.lit(0.0)), "outside"),
        (lambda df: pl.concat([df, df.head(1)]), "more than once"),
        (lambda df: df.with_columns(pl.col("ts_hour") + timedelta(minutes=30)), "hour boundary"),
        (lambda df: df.with_columns(pl.col("ts_hour").dt.strftime("%Y-%m-%d %H:00")), "expected a datetime"),
        (lambda df: df.head(0), "no rows"),
    ],
)
def test_bad_input_is_rejected_with_a_precise_message(mutate, message):
    with pytest.raises(UsageInputError, match=message):
        recommend(mutate(hourly_usage(days=10)))


def test_bad_existing_commitments_are_rejected():
    with pytest.raises(UsageInputError, match=r"existing_commitments\[0\]"):
        recommend(hourly_usage(days=10), existing_commitments=[(-1.0, START)])


def _daily_levels_usage(levels: list[float], seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [
        lvl * (1 + 0.2 * math.sin(2 * math.pi * h / 24)) * math.exp(rng.gauss(0, 0.05))
        for lvl in levels
        for h in range(24)
    ]


def test_a_bounded_cycle_is_not_projected_as_a_random_walk():
    from blocks_pipelines.savings_plans.analysis.forecast import fit_forecast

    # a +-25% quarterly cycle ending at its trough: the year ahead swings back up, it does not keep falling
    cycle = [
        100 * (1 + 0.25 * math.sin(2 * math.pi * d / 91 - math.pi / 2 + 2 * math.pi * 17 / 91)) for d in range(-240, 0)
    ]
    forecast = fit_forecast(_daily_levels_usage(cycle))
    assert forecast.step_days_ago is None  # last quarter's trough coming round again is not a new regime
    spread_a_year = math.sqrt(forecast.drift_variance(365))
    assert spread_a_year < 0.4  # a walk with the cycle's month-to-month moves would be > 0.8
    assert forecast.log_level_mean(90) > forecast.log_level  # it returns toward the half-year median
    # a random walk of the same monthly size keeps spreading
    rng = random.Random(3)
    walk, level = [], 100.0
    for _ in range(240):
        level *= math.exp(rng.gauss(0, 0.12 / math.sqrt(30)))
        walk.append(level)
    wander = fit_forecast(_daily_levels_usage(walk))
    assert wander.drift_variance(365) > 3 * wander.drift_variance(60)


def test_a_permanent_drop_stops_buying_and_is_treated_as_a_new_level():
    days = [100.0] * 150 + [50.0] * 30
    df = pl.DataFrame(
        {
            "ts_hour": [START + timedelta(hours=i) for i in range(len(days) * 24)],
            "eligible_on_demand_cost": _daily_levels_usage(days),
            "sp_rate_ratio": [0.72] * (len(days) * 24),
        }
    )
    held = [(0.72 * 45.0, end_of(df) + timedelta(days=200))]  # already covers most of the new, lower level
    rec = recommend(df, existing_commitments=held)
    assert rec.forecast.step_change_days_ago is not None and rec.forecast.step_change_pct < -40
    assert rec.hourly_commitment == 0.0


def test_a_monthly_cycle_does_not_read_as_a_trend():
    from blocks_pipelines.savings_plans.analysis.forecast import fit_forecast

    # month-end batch load, +-30% over ~30 days, seen from the same phase every month: no trend to project
    days = [100 * (1 + 0.3 * math.sin(2 * math.pi * d / 30.4)) for d in range(-180, 0)]
    forecast = fit_forecast(_daily_levels_usage(days))
    assert abs(forecast.monthly_growth()) < 0.02
    growing = fit_forecast(_daily_levels_usage([100 * math.exp(0.05 * d / 30) for d in range(-180, 0)]))
    assert growing.monthly_growth() > 0.03  # a real trend still comes through
