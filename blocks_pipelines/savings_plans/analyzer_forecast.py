"""Forecast of hourly eligible usage over a commitment's term, from recent history.

Model: u(t) = level(t) * z, where level is a log-linear trend fitted robustly on recent daily means and z is the
empirical distribution of recent hours divided by their level (it keeps the daily/weekly shape, noise and
bursts). The future level is uncertain: its log is normal around a damped trend, with a spread that grows like
a random walk plus the trend's own estimation error. Robustness choices:
- an abrupt level change (step) in the last months is detected and only the data after it is used,
- the trend is a recency-weighted Theil-Sen slope on day pairs a whole number of weeks apart, so weekly cycles
  and outlier days do not bias it,
- the trend is damped (it is assumed to fade over ~6 months), since extrapolating a slope for a year is the
  classic way to over-commit.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from statistics import NormalDist, median

TREND_WINDOW_DAYS = 56
TREND_HALF_LIFE_DAYS = 28.0
TREND_DAMPING_DAYS = 180.0
SHAPE_WINDOW_DAYS = 28
LEVEL_WINDOW_DAYS = 14
STEP_SEARCH_DAYS = 120
STEP_MIN_AFTER_DAYS = 7
STEP_BEFORE_DAYS = 28
STEP_MIN_LOG_SIZE = 0.1  # ~10%: smaller level changes are left to the trend
STEP_MIN_SCORE = 5.0
MIN_MONTHLY_VOLATILITY = 0.03  # businesses drift a few % a month even when history looks flat
MAX_MONTHLY_VOLATILITY = 0.35
PRIOR_SLOPE_SE_PER_DAY = 0.05 / 30  # when there is too little data for a slope: +-5% a month
LEVEL_NODES = 7  # equal-probability quantiles of the level distribution


@dataclass(frozen=True)
class ShapeDistribution:
    """Empirical distribution of usage / level over recent hours, with O(log n) tail queries."""

    values: tuple[float, ...]  # sorted
    suffix_sums: tuple[float, ...]  # suffix_sums[i] = sum(values[i:])

    @classmethod
    def of(cls, samples: list[float]) -> ShapeDistribution:
        values = sorted(samples)
        suffix = list(accumulate(reversed(values)))[::-1] + [0.0]
        return cls(tuple(values), tuple(suffix))

    @property
    def mean(self) -> float:
        return self.suffix_sums[0] / len(self.values)

    def survival(self, y: float) -> float:
        """P(z > y)."""
        return 1.0 - bisect_right(self.values, y) / len(self.values)

    def partial_expectation(self, y: float) -> float:
        """E[(z - y)^+]."""
        i = bisect_right(self.values, y)
        return (self.suffix_sums[i] - y * (len(self.values) - i)) / len(self.values)


@dataclass(frozen=True)
class UsageForecast:
    log_level: float  # log of the level scale at the decision time
    slope_per_day: float  # log-level drift per day, before damping
    slope_se_per_day: float
    monthly_volatility: float  # sd of the log level's random walk per 30 days
    shape: ShapeDistribution
    recent_days: tuple[tuple[float, ...], ...]  # last days' 24 hourly z values, oldest first
    window_days: int  # days of history the forecast rests on
    step_days_ago: int | None  # an abrupt level change detected this many days ago
    step_log_size: float
    recent_hourly_mean: float  # $/h over the last 7 days

    def log_level_mean(self, days_ahead: float) -> float:
        drift = self.slope_per_day * TREND_DAMPING_DAYS * (1.0 - math.exp(-days_ahead / TREND_DAMPING_DAYS))
        return self.log_level + drift

    def log_level_sd(self, days_ahead: float) -> float:
        days = max(days_ahead, 0.0)
        return math.sqrt(self.monthly_volatility**2 * days / 30.0 + (self.slope_se_per_day * days) ** 2)

    def level_nodes(self, days_ahead: float) -> list[float]:
        """Equal-probability level scenarios (quantiles at (i + 0.5) / n)."""
        mu, sd = self.log_level_mean(days_ahead), self.log_level_sd(days_ahead)
        return [math.exp(mu + sd * z) for z in _STANDARD_NODES]

    def monthly_growth(self) -> float:
        return math.exp(self.slope_per_day * 30.0) - 1.0


_STANDARD_NODES = tuple(NormalDist().inv_cdf((i + 0.5) / LEVEL_NODES) for i in range(LEVEL_NODES))


def fit_forecast(costs: list[float]) -> UsageForecast | None:
    """None when the recent history has no eligible usage at all (nothing to commit to)."""
    n_days = len(costs) // 24
    if n_days == 0:
        raise ValueError("at least 24 hours of usage are needed to forecast")
    hourly = costs[len(costs) - 24 * n_days:]
    daily = [sum(hourly[24 * i: 24 * i + 24]) / 24.0 for i in range(n_days)]
    recent_mean = sum(daily[-7:]) / len(daily[-7:])
    if max(daily[-SHAPE_WINDOW_DAYS:]) <= 0.0:
        return None
    floor = 1e-6 * max(daily)
    logs = [math.log(max(d, floor)) for d in daily]
    noise = _daily_noise(logs)

    step_at, step_size = _detect_step(logs, noise)
    window = step_at if step_at is not None else min(n_days, STEP_SEARCH_DAYS + STEP_BEFORE_DAYS)
    slope, slope_se = _trend(logs[-min(window, TREND_WINDOW_DAYS):], noise)
    # day i (0-based from the oldest) is centred (n_days - i - 0.5) days before the decision
    level_days = min(window, LEVEL_WINDOW_DAYS)
    level = median(logs[n_days - 1 - k] + slope * (k + 0.5) for k in range(level_days))
    volatility = _monthly_volatility(logs[-window:] if window >= 42 else logs, slope)

    shape_days = min(window, SHAPE_WINDOW_DAYS)
    recent_days = []
    for k in range(shape_days, 0, -1):
        day = hourly[24 * (n_days - k): 24 * (n_days - k + 1)]
        recent_days.append(tuple(
            u / math.exp(level - slope * (k - (h + 0.5) / 24.0)) for h, u in enumerate(day)
        ))
    return UsageForecast(
        log_level=level,
        slope_per_day=slope,
        slope_se_per_day=slope_se,
        monthly_volatility=volatility,
        shape=ShapeDistribution.of([z for day in recent_days for z in day]),
        recent_days=tuple(recent_days),
        window_days=window,
        step_days_ago=step_at,
        step_log_size=step_size,
        recent_hourly_mean=recent_mean,
    )


def _daily_noise(logs: list[float]) -> float:
    """Robust sd of one day's log level around its neighbourhood (lag-7 differences cancel weekly cycles)."""
    recent = logs[-TREND_WINDOW_DAYS:]
    lag = 7 if len(recent) >= 14 else 1
    diffs = [b - a for a, b in zip(recent, recent[lag:])]
    if not diffs:
        return 0.05
    mid = median(diffs)
    return max(1.4826 * median(abs(d - mid) for d in diffs) / math.sqrt(2.0), 0.005)


def _detect_step(logs: list[float], noise: float) -> tuple[int | None, float]:
    """Most significant abrupt level change: (days ago, log size) or (None, 0)."""
    n = len(logs)
    best: tuple[float, int, float] | None = None
    for after in range(STEP_MIN_AFTER_DAYS, min(STEP_SEARCH_DAYS, n - 14) + 1):
        before = logs[max(0, n - after - STEP_BEFORE_DAYS): n - after]
        recent = logs[n - after:]
        size = median(recent) - median(before)
        score = abs(size) / (1.25 * noise * math.sqrt(1.0 / len(recent) + 1.0 / len(before)))
        if best is None or score > best[0]:
            best = (score, after, size)
    if best is None or best[0] < STEP_MIN_SCORE or abs(best[2]) < STEP_MIN_LOG_SIZE:
        return None, 0.0
    score, after, size = best
    # a steady trend also separates two windows; only call it a step if the earlier trend cannot explain it
    before = logs[max(0, n - after - STEP_BEFORE_DAYS): n - after]
    trend_before, _ = _trend(before, noise)
    explained = trend_before * (len(before) / 2.0 + after / 2.0)
    if abs(size - explained) < STEP_MIN_LOG_SIZE:
        return None, 0.0
    return after, size


def _trend(logs: list[float], noise: float) -> tuple[float, float]:
    """(slope per day, its standard error) by recency-weighted Theil-Sen over whole-week day pairs."""
    n = len(logs)
    if n < 14:
        return 0.0, PRIOR_SLOPE_SE_PER_DAY
    pairs = []
    for lag in range(7, n, 7):
        for i in range(n - lag):
            age = n - (i + lag / 2.0)
            pairs.append(((logs[i + lag] - logs[i]) / lag, 0.5 ** (age / TREND_HALF_LIFE_DAYS)))
    slope = _weighted_median(pairs)
    # OLS standard error for n evenly spaced days, inflated by the median's inefficiency
    se = 1.25 * noise / math.sqrt(n * (n * n - 1) / 12.0)
    return slope, se


def _monthly_volatility(logs: list[float], slope: float) -> float:
    """Robust sd of the detrended change in weekly mean log level over 4 weeks."""
    weeks = [sum(logs[i: i + 7]) / 7.0 for i in range(len(logs) % 7, len(logs), 7)]
    changes = [b - a - 28.0 * slope for a, b in zip(weeks, weeks[4:])]
    if len(changes) < 3:
        return MIN_MONTHLY_VOLATILITY * 2
    mid = median(changes)
    sd = 1.4826 * median(abs(c - mid) for c in changes) * math.sqrt(30.0 / 28.0)
    return min(max(sd, MIN_MONTHLY_VOLATILITY), MAX_MONTHLY_VOLATILITY)


def _weighted_median(pairs: list[tuple[float, float]]) -> float:
    pairs.sort()
    half = sum(w for _, w in pairs) / 2.0
    acc = 0.0
    for value, weight in pairs:
        acc += weight
        if acc >= half:
            return value
    return pairs[-1][0]
