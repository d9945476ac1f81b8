"""Forecast of hourly eligible usage over a commitment's term, from recent history.

Model: u(t) = level(t) * z, where level is a log-linear trend fitted robustly on recent daily means and z is the
empirical distribution of recent hours divided by their level (it keeps the daily/weekly shape, noise and
bursts). The future level is uncertain: its log is normal around a damped trend, with a spread that grows like
a random walk plus the trend's own estimation error. Robustness choices:
- an abrupt level change (step) in the last months is detected and only the data after it is used,
- the trend is a recency-weighted Theil-Sen slope on day pairs a whole number of weeks apart, so weekly cycles
  and outlier days do not bias it, shrunk toward zero in proportion to how little data supports it,
- the trend is damped (it is assumed to fade over ~6 months), since extrapolating a slope for a year is the
  classic way to over-commit,
- with more than a year of history, an annual cycle (one harmonic plus a linear trend fitted on weekly levels) is
  used when it is large and statistically clear: a plan bought at a seasonal peak otherwise runs into the trough.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from statistics import NormalDist, median

TREND_WINDOW_DAYS = 91
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
SPREAD_MAX_LAG_WEEKS = 13  # a quarter: long enough to see a quarterly cycle turn
SPREAD_ANCHOR_DAYS = 182  # a bounded level returns toward its median over the last half year
PRIOR_SLOPE_SE_PER_DAY = 0.05 / 30  # prior on trends: +-5% a month
LEVEL_NODES = 7  # equal-probability quantiles of the level distribution
YEAR_DAYS = 365.25
SEASON_MIN_DAYS = 392  # a full year plus a month, so the cycle is seen once with some overlap
SEASON_MIN_AMPLITUDE = 0.05
SEASON_MIN_F = 10.0  # F statistic of the harmonic terms against trend alone


@dataclass(frozen=True)
class ShapeDistribution:
    """Empirical distribution of usage / level over recent hours, with O(log n) tail queries."""

    values: tuple[float, ...]  # sorted
    suffix_sums: tuple[float, ...]  # suffix_sums[i] = sum(values[i:])
    mean: float

    @classmethod
    def of(cls, samples: list[float]) -> ShapeDistribution:
        values = sorted(samples)
        suffix = list(accumulate(reversed(values)))[::-1] + [0.0]
        return cls(tuple(values), tuple(suffix), suffix[0] / len(values))

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
    season: tuple[float, float] = (0.0, 0.0)  # annual cycle (cos, sin) coefficients, phase 0 = now
    season_slope_per_day: float = 0.0  # the trend fitted jointly with the cycle (replaces the local one)
    # variance of the level's drift away from now, by horizon: (days, log variance) knots, linear between them and
    # extended past the last knot by the slope per day; empty means the random walk of monthly_volatility
    spread_knots: tuple[tuple[float, float], ...] = ()
    spread_tail_per_day: float = 0.0
    # a bounded level (a cycle, a regime that comes and goes) returns toward its recent median rather than staying
    # where it stands today: log gap to that median (0 for a random walk) and how fast it closes
    reversion_gap: float = 0.0
    reversion_days: float = 30.0

    @property
    def seasonal(self) -> bool:
        return self.season != (0.0, 0.0)

    def seasonal_amplitude(self) -> float:
        return math.hypot(*self.season)

    def log_level_mean(self, days_ahead: float) -> float:
        if not self.seasonal:
            reversion = self.reversion_gap * (1.0 - math.exp(-max(days_ahead, 0.0) / self.reversion_days))
            return self.log_level + self.slope_per_day * _damped_days(days_ahead) + reversion
        c, s = self.season
        w = 2 * math.pi * days_ahead / YEAR_DAYS
        cycle = c * (math.cos(w) - 1.0) + s * math.sin(w)
        return self.log_level + self.season_slope_per_day * _damped_days(days_ahead) + cycle

    def log_level_sd(self, days_ahead: float) -> float:
        days = max(days_ahead, 0.0)
        trend_sd = self.slope_se_per_day * _damped_days(days)
        return math.sqrt(self.drift_variance(days) + trend_sd**2)

    def drift_variance(self, days: float) -> float:
        knots = self.spread_knots
        if not knots:
            return self.monthly_volatility**2 * days / 30.0
        if days >= knots[-1][0]:
            return knots[-1][1] + self.spread_tail_per_day * (days - knots[-1][0])
        i = bisect_right([d for d, _ in knots], days)
        (d0, v0), (d1, v1) = ((0.0, 0.0), knots[0]) if i == 0 else (knots[i - 1], knots[i])
        return v0 + (v1 - v0) * (days - d0) / (d1 - d0)

    def level_nodes(self, days_ahead: float) -> list[float]:
        """Equal-probability level scenarios (quantiles at (i + 0.5) / n)."""
        mu, sd = self.log_level_mean(days_ahead), self.log_level_sd(days_ahead)
        return [math.exp(mu + sd * z) for z in _STANDARD_NODES]

    def monthly_growth(self) -> float:
        return math.exp(self.slope_per_day * 30.0) - 1.0


def _damped_days(days_ahead: float) -> float:
    """How many days of the current trend a horizon carries, given the trend fades."""
    return TREND_DAMPING_DAYS * (1.0 - math.exp(-days_ahead / TREND_DAMPING_DAYS))


_STANDARD_NODES = tuple(NormalDist().inv_cdf((i + 0.5) / LEVEL_NODES) for i in range(LEVEL_NODES))


def fit_forecast(costs: list[float]) -> UsageForecast | None:
    """None when the recent history has no eligible usage at all (nothing to commit to)."""
    n_days = len(costs) // 24
    if n_days == 0:
        raise ValueError("at least 24 hours of usage are needed to forecast")
    hourly = costs[len(costs) - 24 * n_days :]
    daily = [sum(hourly[24 * i : 24 * i + 24]) / 24.0 for i in range(n_days)]
    recent_mean = sum(daily[-7:]) / len(daily[-7:])
    if max(daily[-SHAPE_WINDOW_DAYS:]) <= 0.0:
        return None
    floor = 1e-6 * max(daily)
    logs = [math.log(max(d, floor)) for d in daily]
    noise = _daily_noise(logs)

    step_at, step_size = _detect_step(logs, noise)
    window = step_at if step_at is not None else min(n_days, STEP_SEARCH_DAYS + STEP_BEFORE_DAYS)
    trend_logs = logs[-min(window, TREND_WINDOW_DAYS) :]
    slope, _ = _trend(trend_logs, noise)
    season = _annual_cycle(logs) if step_at is None and n_days >= SEASON_MIN_DAYS else None
    season_logs = logs
    if season is not None:
        c, s_, _ = season
        season_logs = [v - _cycle(c, s_, -(n_days - i - 0.5)) for i, v in enumerate(logs)]
    spread_logs = season_logs[-window:] if window >= 42 else season_logs
    volatility = _monthly_volatility(spread_logs, slope if season is None else season[2])
    # the level drifts as a random walk (volatility), and a random walk shows apparent trends: the slope's
    # shrinkage toward zero must count that drift as well as day-to-day noise
    slope, slope_se = _trend(trend_logs, _trend_noise(trend_logs, noise, slope), volatility**2 / 30.0)
    # day i (0-based from the oldest) is centred (n_days - i - 0.5) days before the decision
    level_days = min(window, LEVEL_WINDOW_DAYS)
    level = median(logs[n_days - 1 - k] + slope * (k + 0.5) for k in range(level_days))

    # all the history shows how far the level swings (a quarter's cycle needs half a year to show); across a
    # detected step the older days are moved onto the new level, so the step itself does not read as volatility
    history = (
        season_logs if step_at is None else ([v + step_size for v in season_logs[:-step_at]] + season_logs[-step_at:])
    )
    knots, tail, bounded, settle_days = _drift_spread(history, slope if season is None else season[2])
    gap = 0.0
    if step_at is None and season is None and bounded > 0.0:
        # the window's weekly levels, each moved to today along the trend
        recent_logs = season_logs[-SPREAD_ANCHOR_DAYS:]
        n_recent = len(recent_logs)
        anchor = median(
            median(recent_logs[i : i + 7]) + slope * (n_recent - i - 3.5) for i in range(n_recent % 7, n_recent, 7)
        )
        gap = bounded * (anchor - level)

    shape_days = min(window, SHAPE_WINDOW_DAYS)
    recent_days = []
    for k in range(shape_days, 0, -1):
        day = hourly[24 * (n_days - k) : 24 * (n_days - k + 1)]
        recent_days.append(tuple(u / math.exp(level - slope * (k - (h + 0.5) / 24.0)) for h, u in enumerate(day)))
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
        season=(0.0, 0.0) if season is None else (season[0], season[1]),
        season_slope_per_day=0.0 if season is None else season[2],
        spread_knots=knots,
        spread_tail_per_day=tail,
        reversion_gap=gap,
        reversion_days=settle_days,
    )


def _cycle(c: float, s: float, days: float) -> float:
    w = 2 * math.pi * days / YEAR_DAYS
    return c * math.cos(w) + s * math.sin(w)


def _annual_cycle(logs: list[float]) -> tuple[float, float, float] | None:
    """(cos, sin, slope per day) of y = a + b t + c cos(wt) + d sin(wt) fitted on weekly median log levels
    (t in days, 0 = now), or None when the cycle is small or not clearly better than a trend alone."""
    n = len(logs)
    weeks = [(-(n - i - 3.5), median(logs[i : i + 7])) for i in range(n % 7, n, 7)]
    if len(weeks) < 20:
        return None
    full_rows = [
        [1.0, t, math.cos(2 * math.pi * t / YEAR_DAYS), math.sin(2 * math.pi * t / YEAR_DAYS)] for t, _ in weeks
    ]
    ys = [y for _, y in weeks]
    full = _least_squares(full_rows, ys)
    trend = _least_squares([r[:2] for r in full_rows], ys)
    if full is None or trend is None:
        return None
    rss_full = sum(
        (y - sum(c * x for c, x in zip(full, r, strict=False))) ** 2 for r, y in zip(full_rows, ys, strict=False)
    )
    rss_trend = sum((y - trend[0] - trend[1] * r[1]) ** 2 for r, y in zip(full_rows, ys, strict=False))
    dof = len(ys) - 4
    f_stat = ((rss_trend - rss_full) / 2.0) / max(rss_full / dof, 1e-12)
    if f_stat < SEASON_MIN_F or math.hypot(full[2], full[3]) < SEASON_MIN_AMPLITUDE:
        return None
    # a one-off level shift inside the year also looks like half a cycle: the cycle must explain the year
    # better than the best trend-plus-step model does
    if _best_step_rss([r[1] for r in full_rows], ys) <= rss_full:
        return None
    return full[2], full[3], full[1]


def _best_step_rss(ts: list[float], ys: list[float]) -> float:
    best = math.inf
    for cut in range(4, len(ts) - 4):
        rows = [[1.0, t, 1.0 if i >= cut else 0.0] for i, t in enumerate(ts)]
        coef = _least_squares(rows, ys)
        if coef is not None:
            best = min(
                best,
                sum(
                    (y - sum(c * x for c, x in zip(coef, r, strict=False))) ** 2 for r, y in zip(rows, ys, strict=False)
                ),
            )
    return best


def _least_squares(rows: list[list[float]], ys: list[float]) -> list[float] | None:
    """Ordinary least squares by the normal equations (a handful of columns)."""
    k = len(rows[0])
    a = [
        [sum(r[i] * r[j] for r in rows) for j in range(k)] + [sum(r[i] * y for r, y in zip(rows, ys, strict=False))]
        for i in range(k)
    ]
    for col in range(k):
        pivot = max(range(col, k), key=lambda i: abs(a[i][col]))
        if abs(a[pivot][col]) < 1e-12:
            return None
        a[col], a[pivot] = a[pivot], a[col]
        for i in range(k):
            if i != col:
                factor = a[i][col] / a[col][col]
                a[i] = [v - factor * p for v, p in zip(a[i], a[col], strict=False)]
    return [a[i][k] / a[i][i] for i in range(k)]


def _daily_noise(logs: list[float]) -> float:
    """Robust sd of one day's log level around its neighbourhood (lag-7 differences cancel weekly cycles)."""
    recent = logs[-TREND_WINDOW_DAYS:]
    lag = 7 if len(recent) >= 14 else 1
    diffs = [b - a for a, b in zip(recent, recent[lag:], strict=False)]
    if not diffs:
        return 0.05
    mid = median(diffs)
    return max(1.4826 * median(abs(d - mid) for d in diffs) / math.sqrt(2.0), 0.005)


def _trend_noise(logs: list[float], noise: float, slope: float) -> float:
    """Day-level noise for the trend's standard error, at least what the weekly levels' scatter around the trend
    implies (sqrt(7) x their sd): a cycle of a few weeks leaves day-to-day changes small but moves whole weeks, and
    a recency-weighted slope then reads its latest phase as a trend; counting that scatter shrinks such a slope."""
    n = len(logs)
    weeks = [(n - i - 3.5, median(logs[i : i + 7])) for i in range(n % 7, n, 7)]
    if len(weeks) < 4:
        return noise
    residuals = [w + slope * age for age, w in weeks]
    mid = median(residuals)
    spread = 1.4826 * median(abs(r - mid) for r in residuals)
    return max(noise, math.sqrt(7.0) * spread)


def _detect_step(logs: list[float], noise: float) -> tuple[int | None, float]:
    """Most recent-era abrupt level change: (days ago, log size) or (None, 0).

    The split point minimizes the total absolute deviation of the two sides from their medians (an L1
    two-segment fit, robust to outlier days and exact about where the change happened); it is kept only if it
    is large, significant against day-to-day noise, and not explained by the trend that preceded it.
    """
    span = logs[-(STEP_SEARCH_DAYS + STEP_BEFORE_DAYS) :]
    n = len(span)
    best: tuple[float, int] | None = None
    for after in range(STEP_MIN_AFTER_DAYS, min(STEP_SEARCH_DAYS, n - 14) + 1):
        cost = _abs_dev(span[: n - after]) + _abs_dev(span[n - after :])
        if best is None or cost < best[0]:
            best = (cost, after)
    if best is None:
        return None, 0.0
    after = best[1]
    before, recent = span[max(0, n - after - STEP_BEFORE_DAYS) : n - after], span[n - after :]
    size = median(recent) - median(before)
    score = abs(size) / (1.25 * noise * math.sqrt(1.0 / len(recent) + 1.0 / len(before)))
    if score < STEP_MIN_SCORE or abs(size) < STEP_MIN_LOG_SIZE:
        return None, 0.0
    # a steady trend also separates two windows; only call it a step if the earlier trend cannot explain it
    trend_before, _ = _trend(before, noise)
    explained = trend_before * (len(before) / 2.0 + after / 2.0)
    if abs(size - explained) < STEP_MIN_LOG_SIZE:
        return None, 0.0
    # a level the series already held a cycle ago is a swing, not a new regime: weeks before the change that sat
    # at the new level (a quarterly peak or trough coming round again) veto it
    level_after = median(recent)
    earlier = span[: n - after]
    weeks = [median(earlier[i : i + 7]) for i in range(0, len(earlier) - 6, 7)]
    if any(abs(w - level_after) < STEP_MIN_LOG_SIZE / 2 for w in weeks):
        return None, 0.0
    return after, size


def _abs_dev(values: list[float]) -> float:
    mid = median(values)
    return sum(abs(v - mid) for v in values)


def _trend(logs: list[float], noise: float, walk_var_per_day: float = 0.0) -> tuple[float, float]:
    """(slope per day, its standard error): recency-weighted Theil-Sen over whole-week day pairs, shrunk
    toward zero by a +-5%/month prior so a few weeks of data cannot project a steep trend.

    The shrinkage weighs the slope against the error of a recency-weighted least-squares slope when the level
    is a trend plus a random walk of `walk_var_per_day` plus day-to-day noise (inflated for the median's
    inefficiency): a drifting level fakes trends, so on flat-but-noisy usage an apparent slope is mostly shrunk
    away instead of being projected for a year. The returned standard error (which widens the projected level)
    counts the noise only: the walk's future spread is already in the forecast's volatility.
    """
    n = len(logs)
    if n < 14:
        return 0.0, PRIOR_SLOPE_SE_PER_DAY
    pairs = []
    for lag in range(7, n, 7):
        for i in range(n - lag):
            age = n - (i + lag / 2.0)
            pairs.append(((logs[i + lag] - logs[i]) / lag, 0.5 ** (age / TREND_HALF_LIFE_DAYS)))
    slope = _weighted_median(pairs)
    noise_var = _slope_variance(n, (1.25 * noise) ** 2, 0.0)
    data_var = noise_var + _slope_variance(n, 0.0, walk_var_per_day)
    prior_var = PRIOR_SLOPE_SE_PER_DAY**2
    shrink = prior_var / (prior_var + data_var)
    return slope * shrink, math.sqrt(shrink * noise_var)


def _slope_variance(n: int, noise_var: float, walk_var_per_day: float) -> float:
    """Variance of the recency-weighted least-squares slope over n daily values y_i = a + b i + walk_i + e_i."""
    weights = [0.5 ** ((n - i - 0.5) / TREND_HALF_LIFE_DAYS) for i in range(n)]
    total = sum(weights)
    centre = sum(w * i for i, w in enumerate(weights)) / total
    spread = sum(w * (i - centre) ** 2 for i, w in enumerate(weights))
    coef = [w * (i - centre) / spread for i, w in enumerate(weights)]
    # the walk's step into day k moves every later day: its weight in the slope is the tail sum of coef
    tail, walk_sum = 0.0, 0.0
    for c in reversed(coef[1:]):
        tail += c
        walk_sum += tail * tail
    return noise_var * sum(c * c for c in coef) + walk_var_per_day * walk_sum


def _monthly_volatility(logs: list[float], slope: float) -> float:
    """sd per 30 days of the level's random walk, from a robust variogram of weekly median log levels.

    A change over k weeks has variance 2 s_w^2 + k * 7/30 * v, where s_w^2 is the noise of one week's level
    (bursts, odd days) and v the monthly drift variance: comparing 1- and 4-week changes separates the two, so
    noisy weeks are not mistaken for a drifting level.
    """
    weeks = [median(logs[i : i + 7]) for i in range(len(logs) % 7, len(logs), 7)]
    var1 = _robust_variance([b - a - 7.0 * slope for a, b in zip(weeks, weeks[1:], strict=False)])
    var4 = _robust_variance([b - a - 28.0 * slope for a, b in zip(weeks, weeks[4:], strict=False)])
    if var1 is None or var4 is None:
        return MIN_MONTHLY_VOLATILITY * 2
    drift = max(0.0, var4 - var1) * 30.0 / 21.0
    return min(max(math.sqrt(drift), MIN_MONTHLY_VOLATILITY), MAX_MONTHLY_VOLATILITY)


def _drift_spread(logs: list[float], slope: float) -> tuple[tuple[tuple[float, float], ...], float, float, float]:
    """How far the level has drifted from where it stood, by horizon: the robust variogram of weekly median log
    levels (detrended) at lags of 1..SPREAD_MAX_LAG_WEEKS weeks, minus the one-week noise, made nondecreasing.

    A random walk's variogram keeps growing, so its tail slope carries it on; a bounded cycle (a quarterly peak
    and trough) saturates at its peak-to-trough spread instead of being projected as a walk for a year, which
    sized commitments for a collapse that the history never showed. Past the lags the history supports, the
    spread grows at the slope of the variogram's second half, never slower than MIN_MONTHLY_VOLATILITY's walk.
    Also returns how bounded the level is (0 = it drifts like a walk: the variogram's second half rises as fast as
    its average; 1 = it has stopped rising) and the days it takes to reach most of its spread (how fast a bounded
    level returns). Empty knots when there are too few weeks (the caller then uses the random walk).
    """
    weeks = [median(logs[i : i + 7]) for i in range(len(logs) % 7, len(logs), 7)]
    max_lag = min(SPREAD_MAX_LAG_WEEKS, len(weeks) // 2)
    if max_lag < 4:
        return (), 0.0, 0.0, 30.0
    gammas = []
    for k in range(1, max_lag + 1):
        gammas.append(_trimmed_mean_square([b - a - 7.0 * k * slope for a, b in zip(weeks, weeks[k:], strict=False)]))
    noise = gammas[0] / 2.0  # the one-week change is two weeks' noise plus a week of drift (small)
    floor_per_day = MIN_MONTHLY_VOLATILITY**2 / 30.0
    cap_per_day = MAX_MONTHLY_VOLATILITY**2 / 30.0
    knots, envelope = [], 0.0
    for k, gamma in enumerate(gammas, start=1):
        days = 7.0 * k
        envelope = max(envelope, gamma - 2.0 * noise)
        knots.append((days, min(max(envelope, floor_per_day * days), cap_per_day * days)))
    half = max_lag // 2
    tail = (knots[-1][1] - knots[half - 1][1]) / (knots[-1][0] - knots[half - 1][0])
    average = knots[-1][1] / knots[-1][0]
    bounded = min(max(1.0 - tail / average, 0.0), 1.0) if average > floor_per_day else 0.0
    settle = next(d for d, v in knots if v >= 0.8 * knots[-1][1])
    return tuple(knots), min(max(tail, floor_per_day), cap_per_day), bounded, max(settle / 2.0, 7.0)


def _trimmed_mean_square(values: list[float]) -> float:
    """Mean square without the largest 10% (one odd week must not read as volatility). Not a MAD: a cycle's changes
    are two-humped (up or down by about the swing), where a MAD overstates the spread by half."""
    ordered = sorted(v * v for v in values)
    kept = ordered[: max(1, math.ceil(0.9 * len(ordered)))]
    return sum(kept) / len(kept)


def _robust_variance(values: list[float]) -> float | None:
    if len(values) < 3:
        return None
    mid = median(values)
    return (1.4826 * median(abs(v - mid) for v in values)) ** 2


def _weighted_median(pairs: list[tuple[float, float]]) -> float:
    pairs.sort()
    half = sum(w for _, w in pairs) / 2.0
    acc = 0.0
    for value, weight in pairs:
        acc += weight
        if acc >= half:
            return value
    return pairs[-1][0]
