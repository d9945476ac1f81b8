"""Replays purchase policies on scenario families with the future hidden, and scores them against hindsight.

Each policy decides at the start of every month (24 decisions, 1-year plans) seeing only the usage before that
moment and the plans it holds. A purchase becomes a plan active for 8760 hours. Scores are the value the
purchases add over the decision window (backtest_hindsight.portfolio_value) as a fraction of the hindsight-best
set of monthly purchases on the same scenario. Policies:
- ladder: Blocks' analyzer every month (`recommend` with the portfolio so far, next review in a month),
- aws: what Cost Explorer's recommendation does, re-run monthly: the additional commitment that would have
  saved the most over the last 30 days given the plans active now (it ignores trend and upcoming expiries),
- one_shot: the analyzer sized for a single purchase (no ladder), bought once a year (months 0 and 12) as a
  team buying plans by hand would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from blocks_pipelines.savings_plans.analysis.analyzer import recommend
from blocks_pipelines.savings_plans.backtest.hindsight import best_purchases, free_cover_bound, portfolio_value
from blocks_pipelines.savings_plans.backtest.scenarios import (
    CORE_FAMILIES,
    FAMILIES,
    HOURS_PER_YEAR,
    Scenario,
    generate,
)

AWS_LOOKBACK_HOURS = 30 * 24
ANALYZER_HISTORY_HOURS = 400 * 24  # the analyzer reads at most this much; trimming keeps frames small
POLICIES = ("ladder", "aws", "one_shot")
CORE_TARGET = 0.95  # ladder mean on the core families; on every family the ladder must match or beat aws
TIE_TOLERANCE = 0.005  # both near-optimal on flat usage: a single seed can put either a few 0.1% ahead

# (scenario, decision index, active plans as ($/h at SP rates, end index)) -> $/h at SP rates to buy
Policy = Callable[[Scenario, int, list[tuple[float, int]]], float]


def ladder_policy(scenario: Scenario, j: int, active: list[tuple[float, int]]) -> float:
    return _analyzer_buy(scenario, j, active, next_review_days=30.0)


def one_shot_policy(scenario: Scenario, j: int, active: list[tuple[float, int]]) -> float:
    if j % 12:
        return 0.0
    return _analyzer_buy(scenario, j, active, next_review_days=None)


def aws_policy(scenario: Scenario, j: int, active: list[tuple[float, int]]) -> float:
    now = scenario.decision_hours[j]
    held = sum(c for c, _ in active) / scenario.ratio
    lookback = scenario.usage[max(0, now - AWS_LOOKBACK_HOURS) : now]
    return lookback_optimal_commitment([u - held for u in lookback], scenario.ratio)


def lookback_optimal_commitment(uncovered: Sequence[float], ratio: float) -> float:
    """$/h at SP rates maximizing savings over past hours of uncovered on-demand usage: its (1 - r)-quantile."""
    values = sorted(max(0.0, u) for u in uncovered)
    if not values:
        return 0.0
    # cover k saves sum(min(u, k)) - r k n; the slope #{u > k} - r n turns negative past the (1 - r)-quantile
    cover = values[min(len(values) - 1, int((1.0 - ratio) * len(values)))]
    return round(cover * ratio, 3)


POLICY_FUNCS: dict[str, Policy] = {"ladder": ladder_policy, "aws": aws_policy, "one_shot": one_shot_policy}


def _analyzer_buy(scenario: Scenario, j: int, active: list[tuple[float, int]], next_review_days) -> float:
    now = scenario.decision_hours[j]
    first = max(0, now - ANALYZER_HISTORY_HOURS)
    frame = usage_frame(scenario, first, now)
    existing = [(c, scenario.hour_time(end)) for c, end in active]
    rec = recommend(frame, existing_commitments=existing, next_review_days=next_review_days)
    return rec.hourly_commitment


def usage_frame(scenario: Scenario, first: int, end: int) -> pl.DataFrame:
    start: datetime = scenario.hour_time(first)
    return pl.DataFrame(
        {
            "ts_hour": pl.datetime_range(
                start, scenario.hour_time(end - 1), "1h", time_unit="us", time_zone="UTC", eager=True
            ),
            "eligible_on_demand_cost": scenario.usage[first:end],
            "sp_rate_ratio": [scenario.ratio] * (end - first),
        }
    )


def replay(scenario: Scenario, policy: Policy, term: int = HOURS_PER_YEAR) -> list[float]:
    """$/h at SP rates bought at each decision, each decision seeing only the past."""
    bought: list[float] = []
    for j, now in enumerate(scenario.decision_hours):
        held = [(c, e) for c, e in scenario.legacy if e > now]
        held += [
            (c, s + term) for c, s in zip(bought, scenario.decision_hours, strict=False) if s + term > now and c > 0
        ]
        bought.append(max(0.0, policy(scenario, j, held)))
    return bought


@dataclass
class ScenarioResult:
    family: str
    seed: int
    description: str
    optimum: float  # $ value of the hindsight-best purchases
    upper_bound: float  # free-cover relaxation, >= the true optimum
    values: dict[str, float] = field(default_factory=dict)  # policy -> $ value

    def fraction(self, policy: str) -> float:
        return self.values[policy] / self.optimum if self.optimum > 0 else 1.0


def evaluate(scenario: Scenario, policies: Sequence[str] = POLICIES, term: int = HOURS_PER_YEAR) -> ScenarioResult:
    legacy = [(c / scenario.ratio, e) for c, e in scenario.legacy]
    starts, ratio, usage = scenario.decision_hours, scenario.ratio, scenario.usage
    end = scenario.window_end
    best = best_purchases(usage, legacy, starts, term, end, ratio)
    result = ScenarioResult(
        family=scenario.family,
        seed=scenario.seed,
        description=scenario.description,
        optimum=portfolio_value(usage, legacy, starts, best, term, end, ratio),
        upper_bound=free_cover_bound(usage, legacy, starts, term, end, ratio),
    )
    for name in policies:
        covers = [c / ratio for c in replay(scenario, POLICY_FUNCS[name], term)]
        result.values[name] = portfolio_value(usage, legacy, starts, covers, term, end, ratio)
    return result


def run_backtest(
    families: Sequence[str] = FAMILIES,
    seeds: Sequence[int] = (0, 1, 2),
    months: int = 24,
    progress: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    results = []
    for family in families:
        for seed in seeds:
            result = evaluate(generate(family, seed, months=months))
            results.append(result)
            if progress:
                progress(result)
    return results


def family_fractions(results: Sequence[ScenarioResult]) -> dict[str, dict[str, float]]:
    """family -> policy -> total value / total optimum over the family's scenarios (stable when one is small)."""
    out: dict[str, dict[str, float]] = {}
    for family in dict.fromkeys(r.family for r in results):
        rows = [r for r in results if r.family == family]
        optimum = sum(r.optimum for r in rows)
        out[family] = {p: sum(r.values[p] for r in rows) / optimum for p in rows[0].values}
        out[family]["bound_gap"] = sum(r.upper_bound for r in rows) / optimum
    return out


def target_summary(fractions: dict[str, dict[str, float]]) -> tuple[float | None, list[str]]:
    """(ladder mean over the core families present, families where the ladder trails aws beyond a tie)."""
    core = [row["ladder"] for family, row in fractions.items() if family in CORE_FAMILIES]
    behind = [family for family, row in fractions.items() if row["ladder"] < row["aws"] - TIE_TOLERANCE]
    return (sum(core) / len(core) if core else None), behind


def format_table(results: Sequence[ScenarioResult]) -> str:
    fractions = family_fractions(results)
    policies = [p for p in POLICIES if p in next(iter(fractions.values()))]
    header = f"{'family':<17}" + "".join(f"{p:>10}" for p in policies) + f"{'opt/bound':>11}  ladder>=aws"
    lines = [header, "-" * len(header)]
    for family, row in fractions.items():
        ok = "yes" if row.get("ladder", 0) >= row.get("aws", 0) - TIE_TOLERANCE else "NO"
        mark = "" if family in CORE_FAMILIES else " *"
        lines.append(
            f"{family + mark:<17}"
            + "".join(f"{row[p]:>10.3f}" for p in policies)
            + f"{1 / row['bound_gap']:>11.3f}  {ok}"
        )
    lines.append("-" * len(header))
    groups = [
        ("mean, core", [f for f in fractions if f in CORE_FAMILIES]),
        ("mean, robust *", [f for f in fractions if f not in CORE_FAMILIES]),
        ("mean, all", list(fractions)),
    ]
    for label, members in groups:
        if members and len(members) < len(fractions) or label == "mean, all":
            means = {p: sum(fractions[f][p] for f in members) / len(members) for p in policies}
            lines.append(f"{label:<17}" + "".join(f"{means[p]:>10.3f}" for p in policies))
    core_mean, behind = target_summary(fractions)
    lines.append(
        "Values are net savings as a fraction of the hindsight-best monthly purchases (1.000 = optimum); "
        "* = robustness families (issue #15)."
    )
    lines.append(
        f"Targets: ladder mean on the core families >= {CORE_TARGET:.2f}"
        + (f" (now {core_mean:.3f})" if core_mean is not None else "")
        + f"; ladder >= aws on every family (ties within {TIE_TOLERANCE:.1%}): "
        + (f"behind on {', '.join(behind)}" if behind else "holds")
        + "."
    )
    return "\n".join(lines)
