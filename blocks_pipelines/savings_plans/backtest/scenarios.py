"""Synthetic hourly SP-eligible usage for backtesting commitment policies.

Every family shares the same anatomy: a base level, a daily shape (business hours), a weekday/weekend shape,
hourly and daily noise, a slow random walk of the level, and often a legacy plan the tenant already holds when
Blocks takes over (it ends at a random point mid-month in the first year, like real plans do). The family adds
the level dynamics under test. Every parameter is drawn from ranges by a seeded generator, so a family is a
distribution of scenarios, not one curve to fit.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

# The first eight are the families the analyzer was built on; the robustness families after them (issue #15) are
# the shapes that punish over-commitment: a commitment outlives a quarter's trough, a halved bill, a decline that
# sets in after a flat history, and a big workload that is switched off.
CORE_FAMILIES = ("steady", "growing", "declining", "weekly_cycles", "step_up", "step_down", "seasonal", "bursty")
ROBUSTNESS_FAMILIES = ("quarterly", "drop_half", "steady_decline", "churn")
FAMILIES = CORE_FAMILIES + ROBUSTNESS_FAMILIES
HOURS_PER_YEAR = 8760
DAYS_PER_MONTH = 365.0 / 12.0
DECISIONS_START = datetime(2024, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Scenario:
    family: str
    seed: int
    start: datetime  # first hour of usage (history begins here)
    usage: tuple[float, ...]  # on-demand-equivalent eligible $ per hour
    ratio: float  # SP rate / on-demand rate
    decision_hours: tuple[int, ...]  # index into usage of each monthly purchase decision
    window_end: int  # index one month after the last decision: the end of the scored window
    legacy: tuple[tuple[float, int], ...]  # plans held before the first decision: ($/h at SP rates, end index)
    description: str

    def hour_time(self, index: int) -> datetime:
        return self.start + timedelta(hours=index)


def month_starts(first: datetime, months: int) -> list[datetime]:
    out = []
    for m in range(months):
        year, month = divmod(first.month - 1 + m, 12)
        out.append(first.replace(year=first.year + year, month=month + 1))
    return out


def generate(family: str, seed: int, *, months: int = 24, history_days: int = 182) -> Scenario:
    """Hourly usage from `history_days` before the first decision until a month after the last decision."""
    if family not in FAMILIES:
        raise ValueError(f"unknown scenario family {family!r}; choose from {', '.join(FAMILIES)}")
    rng = random.Random(f"{family}:{seed}")
    decisions = month_starts(DECISIONS_START, months)
    start = DECISIONS_START - timedelta(days=history_days)
    n_hours = int((month_starts(decisions[-1], 2)[1] - start).total_seconds() // 3600)
    level_of, note = _family_level(family, rng)
    workload_of, workload_note = _churning_workload(rng) if family == "churn" else (None, "")

    base = rng.uniform(20.0, 200.0)
    daily_amp = rng.uniform(0.1, 0.35)
    peak_hour = rng.uniform(10.0, 18.0)
    weekend = rng.uniform(0.35, 0.6) if family == "weekly_cycles" else rng.uniform(0.85, 1.0)
    hourly_sd = rng.uniform(0.04, 0.15)
    daily_sd = rng.uniform(0.01, 0.04)
    walk_sd_day = 0.015 / math.sqrt(DAYS_PER_MONTH)
    bursts = _bursts(rng, n_hours) if family == "bursty" else {}

    usage = []
    walk, day_factor = 0.0, 1.0
    for h in range(n_hours):
        ts = start + timedelta(hours=h)
        if h % 24 == 0:
            walk += rng.gauss(0.0, walk_sd_day)
            day_factor = math.exp(rng.gauss(0.0, daily_sd) + walk)
        months_in = (ts - DECISIONS_START).total_seconds() / 3600.0 / 24.0 / DAYS_PER_MONTH
        shape = 1.0 + daily_amp * math.cos(2 * math.pi * (ts.hour - peak_hour) / 24.0)
        if ts.weekday() >= 5:
            shape *= weekend
        value = base * level_of(months_in) * shape * day_factor * math.exp(rng.gauss(0.0, hourly_sd))
        if workload_of is not None:  # flat around the clock (a batch fleet, a database), not the daily shape
            value += base * workload_of(months_in) * day_factor * math.exp(rng.gauss(0.0, hourly_sd / 2))
        usage.append(round(value * bursts.get(h, 1.0), 4))

    ratio = round(rng.uniform(0.62, 0.78), 3)
    legacy: tuple[tuple[float, int], ...] = ()
    if rng.random() < 0.7:
        first = int((decisions[0] - start).total_seconds() // 3600)
        floor = base * level_of(0.0) * (1.0 - daily_amp) + (base * workload_of(0.0) if workload_of else 0.0)
        cover = floor * rng.uniform(0.2, 0.6)
        legacy = ((round(cover * ratio, 3), first + int(rng.uniform(15, 330) * 24) + rng.randrange(24)),)
    return Scenario(
        family=family,
        seed=seed,
        start=start,
        usage=tuple(usage),
        ratio=ratio,
        decision_hours=tuple(int((d - start).total_seconds() // 3600) for d in decisions),
        window_end=n_hours,
        legacy=legacy,
        description=f"base ${base:.0f}/h, {note}{workload_note}, ratio {ratio}",
    )


def _family_level(family: str, rng: random.Random):
    """(level multiplier as a function of months since the first decision, description)."""
    if family == "growing":
        g = rng.uniform(0.02, 0.06)
        return (lambda m: math.exp(g * m)), f"growth {100 * g:.1f}%/month"
    if family == "declining":
        g = rng.uniform(0.015, 0.045)
        return (lambda m: math.exp(-g * m)), f"decline {100 * g:.1f}%/month"
    if family in ("step_up", "step_down"):
        at = rng.uniform(1.0, 20.0)
        size = rng.uniform(1.3, 1.8) if family == "step_up" else rng.uniform(0.5, 0.8)
        return (lambda m: size if m >= at else 1.0), f"x{size:.2f} at month {at:.1f}"
    if family == "seasonal":
        amp, phase = rng.uniform(0.15, 0.3), rng.uniform(0.0, 2 * math.pi)
        return (lambda m: 1.0 + amp * math.sin(2 * math.pi * m / 12.0 + phase)), f"seasonal +-{100 * amp:.0f}%"
    if family == "quarterly":
        amp, period, phase = rng.uniform(0.2, 0.3), rng.uniform(80.0, 100.0), rng.uniform(0.0, 2 * math.pi)
        return (
            (lambda m: 1.0 + amp * math.sin(2 * math.pi * m * DAYS_PER_MONTH / period + phase)),
            f"quarterly +-{100 * amp:.0f}% every {period:.0f} days",
        )
    if family == "drop_half":
        at, size = rng.uniform(1.0, 20.0), rng.uniform(0.45, 0.55)
        return (lambda m: size if m >= at else 1.0), f"permanent drop to x{size:.2f} at month {at:.1f}"
    if family == "steady_decline":
        # flat history, then a straight-line decline: the relative rate accelerates as the level falls
        onset, floor = rng.uniform(-2.0, 8.0), rng.uniform(0.3, 0.5)
        rate = (1.0 - floor) / (24.0 - onset)
        return (lambda m: 1.0 if m < onset else max(floor, 1.0 - rate * (m - onset))), (
            f"linear decline from month {onset:.1f} to x{floor:.2f} at month 24"
        )
    if family == "churn":
        return (lambda m: 1.0), "steady base"
    if family == "weekly_cycles":
        return (lambda m: 1.0), "strong weekday/weekend cycle"
    if family == "bursty":
        return (lambda m: 1.0), "random bursts x1.5-4"
    return (lambda m: 1.0), "flat"


def _churning_workload(rng: random.Random):
    """A big flat workload (as large as the rest again, or more) that winds down over 0-3 weeks at a random month."""
    share, at, wind_down = rng.uniform(0.8, 1.6), rng.uniform(1.0, 20.0), rng.uniform(0.0, 0.7)

    def level(m: float) -> float:
        if m < at:
            return share
        if m >= at + wind_down:
            return 0.0
        return share * (1.0 - (m - at) / wind_down)

    return level, f" + a x{share:.2f} workload churned at month {at:.1f} over {wind_down * DAYS_PER_MONTH:.0f} days"


def _bursts(rng: random.Random, n_hours: int) -> dict[int, float]:
    out: dict[int, float] = {}
    p = rng.uniform(0.05, 0.15)
    for day in range(n_hours // 24):
        if rng.random() < p:
            start = day * 24 + rng.randrange(24)
            factor = rng.uniform(1.5, 4.0)
            for h in range(start, min(n_hours, start + rng.randint(2, 30))):
                out[h] = factor
    return out
