"""Backtest machinery (scenarios, hindsight optimum, AWS baseline) and the targets on a reduced run."""

from __future__ import annotations

import itertools

import pytest
from click.testing import CliRunner

from blocks_pipelines.savings_plans.backtest.evaluate import (
    CORE_TARGET,
    family_fractions,
    lookback_optimal_commitment,
    run_backtest,
    target_summary,
)
from blocks_pipelines.savings_plans.backtest.hindsight import best_purchases, free_cover_bound, portfolio_value
from blocks_pipelines.savings_plans.backtest.scenarios import CORE_FAMILIES, FAMILIES, ROBUSTNESS_FAMILIES, generate
from blocks_pipelines.savings_plans.cli import sp

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs or generated API cases: make test-fast skips them


def test_scenarios_are_deterministic_and_hide_nothing_before_decisions():
    a, b = generate("bursty", 7, months=3), generate("bursty", 7, months=3)
    assert a == b
    assert a.usage != generate("bursty", 8, months=3).usage
    assert len(a.decision_hours) == 3 and a.decision_hours[0] == 182 * 24
    assert a.window_end == len(a.usage) > a.decision_hours[-1]
    with pytest.raises(ValueError, match="unknown scenario family"):
        generate("lunar", 0)


def test_lookback_optimum_matches_brute_force():
    usage = [5, 9, 1, 7, 7, 3, 12, 0, 6, 8]
    ratio = 0.7

    def savings(k):
        return sum(min(u, k) for u in usage) - ratio * k * len(usage)

    best = max((k / 100 for k in range(0, 1300)), key=savings)
    assert savings(lookback_optimal_commitment(usage, ratio) / ratio) == pytest.approx(savings(best), abs=1e-6)


def test_hindsight_optimizer_matches_brute_force_on_a_small_case():
    usage = [10, 12, 8, 11, 20, 22, 18, 21, 6, 5, 7, 6]
    starts, term, end, ratio = [0, 4, 8], 8, 12, 0.7
    legacy = [(3.0, 6)]
    best = best_purchases(usage, legacy, starts, term, end, ratio)
    value = portfolio_value(usage, legacy, starts, best, term, end, ratio)
    grid = [g / 2 for g in range(0, 45)]  # optimal covers sit at data values: integers here
    brute = max(
        portfolio_value(usage, legacy, starts, xs, term, end, ratio) for xs in itertools.product(grid, repeat=3)
    )
    assert value >= brute - 1e-6
    assert value <= free_cover_bound(usage, legacy, starts, term, end, ratio) + 1e-6


def _monthly_means(scenario):
    month = 730
    first = scenario.decision_hours[0]
    return [sum(scenario.usage[h : h + month]) / month for h in range(first, scenario.window_end - month + 1, month)]


def test_robustness_families_have_the_shapes_they_claim():
    drop = generate("drop_half", 0)
    means = _monthly_means(drop)
    assert min(means[-3:]) / max(means[:2]) == pytest.approx(0.5, abs=0.12)  # a permanent halving
    churn = generate("churn", 0)
    means = _monthly_means(churn)
    assert means[-1] < 0.6 * means[0]  # the big workload is gone by the end
    decline = _monthly_means(generate("steady_decline", 1))
    assert decline[-1] < 0.55 * decline[0] and all(b < a * 1.08 for a, b in zip(decline, decline[1:], strict=False))
    quarterly = _monthly_means(generate("quarterly", 2))
    assert max(quarterly) / min(quarterly) > 1.3
    # about a 90-day cycle: the peak months repeat every ~3 months
    peaks = [i for i in range(1, len(quarterly) - 1) if quarterly[i] >= max(quarterly[i - 1], quarterly[i + 1])]
    assert all(2 <= b - a <= 4 for a, b in zip(peaks, peaks[1:], strict=False)), peaks
    assert set(CORE_FAMILIES) | set(ROBUSTNESS_FAMILIES) == set(FAMILIES)


def test_targets_hold_on_a_reduced_run():
    results = run_backtest(FAMILIES, seeds=(0,), months=12)
    fractions = family_fractions(results)
    core_mean, behind = target_summary(fractions)
    assert core_mean >= CORE_TARGET
    # per family on the core; one 12-month seed of a robustness family is a single draw of a rare event (a drop,
    # a churn), so here they are held to beating aws together; `make bench` checks each over 3 seeds x 24 months
    assert [f for f in behind if f in CORE_FAMILIES] == []
    robust = [fractions[f] for f in ROBUSTNESS_FAMILIES]
    assert sum(r["ladder"] for r in robust) >= sum(r["aws"] for r in robust)
    for family, row in fractions.items():
        assert row["ladder"] <= 1.0 + 1e-6, family  # nothing beats hindsight


def test_cli_prints_the_table():
    result = CliRunner().invoke(sp, ["backtest", "--families", "growing", "--seed", "1", "--months", "3"])
    assert result.exit_code == 0, result.output
    assert "growing" in result.output and "ladder" in result.output and "mean" in result.output
    bad = CliRunner().invoke(sp, ["backtest", "--families", "lunar"])
    assert bad.exit_code != 0 and "unknown" in bad.output
