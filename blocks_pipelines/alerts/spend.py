"""Spend anomalies: daily cost per (service, account, region) against a seasonal, robust baseline.

Method (docs/anomalies.md explains the choices and the benchmark behind them):
- expected(d) = level(d) x (1 + offset(weekday of d)). The level is the median of the last five weekly means (a
  week holds every weekday once, so the weekly cycle cancels; one spike touches at most two of them). The offset
  is the weekday's cost relative to the level (cost / level - 1), as the mean of its last BASELINE_WEEKS values
  without the highest and lowest: day-of-week aware, relative because a weekly cycle scales with the bill (so
  growth does not drift it), and a one-off spike (or outage) is dropped instead of lifting the baseline.
- noise(d) = the standard deviation of the residuals cost - expected over the previous NOISE_DAYS days, measured
  robustly: each residual clipped at NOISE_CLIP x the estimate, re-estimated NOISE_PASSES times. Floored at
  RELATIVE_NOISE_FLOOR of the baseline, so a perfectly flat series (storage) does not alert on a 1% wobble.
- score(d) = (cost - expected) / noise; a day with score >= sensitivity is anomalous, and so are two consecutive
  days each over half of it whose summed excess clears it by sqrt(2). Consecutive anomalous days of
  one series are ONE anomaly (first seen = its first day), raised when its dollar impact (sum of cost - expected)
  reaches the tenant's min_impact_usd: a 10x spike on a $2/day series is noise to a finance team.
- Only increases are anomalies (as in AWS Cost Anomaly Detection): a drop in spend costs nobody money.

Usage line items only (Usage, DiscountedUsage, SavingsPlanCoveredUsage) at amortized cost: monthly fees, tax, credits
and refunds land on the 1st by design and would be "anomalies" every month.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from blocks_pipelines.state.alert_models import AlertKind, Detection, UsageTypeContribution, severity_for_impact

SERIES = ("service", "usage_account_id", "region")
BASELINE_WEEKS = 12  # same-weekday offsets the weekday's offset is the trimmed mean of
MIN_BASELINE_WEEKS = 3  # fewer same-weekday offsets than this: no baseline yet, no verdict
NOISE_DAYS = 91  # residuals the noise is measured over (42: the scale ~12 % noisy, and false alarms doubled)
MIN_NOISE_DAYS = 28  # fewer residuals than this: no verdict yet
NOISE_CLIP = 3.0
NOISE_PASSES = 2
MEAN_ABS_TO_SD = math.sqrt(math.pi / 2)  # E|Z| = sqrt(2/pi) for Gaussian noise
# E[min(|Z|, c)] for a standard normal Z: what a clipped mean absolute residual is per unit of standard deviation
CLIPPED_MEAN_ABS_PER_SD = math.sqrt(2 / math.pi) * (1 - math.exp(-(NOISE_CLIP**2) / 2)) + NOISE_CLIP * math.erfc(
    NOISE_CLIP / math.sqrt(2)
)
PAD = NOISE_DAYS + 1  # nulls in front of each series in the day layout: longer than any window
RELATIVE_NOISE_FLOOR = 0.03
ABSOLUTE_NOISE_FLOOR = 0.01  # $: keeps the score finite on series that cost nothing
NEW_SERVICE_MIN_HISTORY_DAYS = 14  # a tenant's first fortnight has no "before" to be new against
TOP_USAGE_TYPES = 3
USAGE_LINE_ITEM_TYPES = ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage")


@dataclass(frozen=True)
class SpendParams:
    sensitivity: float = 4.0
    min_impact_usd: float = 50.0


def usage_daily(spend_hourly: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """The spend_hourly mart as the detector's daily leaf rows (usage_date, SERIES, usage_type, cost)."""
    return (
        spend_hourly.lazy()
        .filter(pl.col("line_item_type").is_in(USAGE_LINE_ITEM_TYPES))
        .with_columns(
            pl.col("region").fill_null(""),
            usage_type=pl.when(pl.col("usage_type").fill_null("") == "")
            .then(pl.lit("(none)"))
            .otherwise(pl.col("usage_type")),
        )
        .group_by("usage_date", *SERIES, "usage_type")
        .agg(cost=pl.col("amortized_cost").sum())
        .collect()
    )


def score_days(daily: pl.DataFrame, as_of: date, sensitivity: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(one row per series-day from the series' first day to as_of: sid, usage_date, cost, expected, resid, noise,
    score, flagged; the series ids). A day without rows costs 0 from the series' first day on: a workload that
    stopped is a zero, not a gap.

    Rolling windows over 10,000 series with `.over()` cost ~1 s per thousand groups, so the series are laid end to
    end in one flat column, each behind a run of nulls as long as the longest window (no window reaches into the
    previous series), and the weekday offsets are read through a second layout with the days of each
    (series, weekday) consecutive. Only O(n) rolling sums, means, minima and maxima: a rolling median costs ~160 ns
    an element (1.4 s for the weekday baseline alone at 10,000 series x 2 years), these ~10 ns.
    """
    start = daily["usage_date"].min()
    n_days = (as_of - start).days + 1
    # grouping on a 64-bit hash of the series is ~4x faster than on its three strings (a collision among 10,000
    # series has odds of ~1e-11)
    keyed = daily.select(
        *SERIES, "cost", key=pl.struct(SERIES).hash(), t=(pl.col("usage_date") - start).dt.total_days()
    )
    ids = keyed.group_by("key").agg(*(pl.col(c).first() for c in SERIES), first=pl.col("t").min()).sort(SERIES)
    ids = ids.with_row_index("sid").with_columns(pl.col("sid").cast(pl.Int64))
    n, first = ids.height, ids["first"].cast(pl.Int64)
    # day layout: series after series, PAD nulls in front of each; a leaf's slot is its series' offset plus its day
    stride = n_days + PAD
    leaves = (
        keyed.select("cost", at=pl.col("key").replace_strict(ids["key"], ids["sid"]) * stride + PAD + pl.col("t"))
        .group_by("at")
        .agg(pl.col("cost").sum())
    )
    ids = ids.select("sid", *SERIES)
    raw = pl.repeat(None, n * stride, dtype=pl.Float64, eager=True).scatter(leaves["at"], leaves["cost"])
    i = pl.int_range(n * stride, dtype=pl.Int64, eager=True)
    day = pl.DataFrame({"sid": i // stride, "t": i % stride - PAD, "cost": raw})
    day = day.with_columns(first=first.gather(day["sid"])).with_columns(
        cost=pl.when(pl.col("t") >= pl.col("first")).then(pl.col("cost").fill_null(0.0))
    )
    # level: the median of the last five weekly means (a week holds every weekday once, so the cycle cancels); a
    # spike of up to a week lands in at most two of them and leaves the median clean. Until five weeks exist, the
    # median of three (a series' fourth and fifth weeks).
    day = day.with_columns(week_mean=pl.col("cost").shift(1).rolling_mean(7, min_samples=7))
    day = day.with_columns(pl.col("week_mean").shift(7 * k).alias(f"week_{k}") for k in range(5))
    w = [pl.col(f"week_{k}") for k in range(5)]
    low, high = _median5_bounds(*w[:4])
    day = (
        day.with_columns(low=low, high=high, median3=_median3(*w[:3]))
        .with_columns(level=pl.coalesce(_median3(w[4], pl.col("low"), pl.col("high")), pl.col("median3")))
        .drop(*(f"week_{k}" for k in range(5)), "low", "high", "median3")
        .with_columns(offset=pl.when(pl.col("level") > 0).then(pl.col("cost") / pl.col("level") - 1))
    )
    # weekday layout: for each (series, weekday) its weeks in order, BASELINE_WEEKS nulls in front
    weeks = -(-n_days // 7) + BASELINE_WEEKS
    r = pl.int_range(n * 7 * weeks, dtype=pl.Int64, eager=True)
    k, weekday, sid = r % weeks - BASELINE_WEEKS, (r // weeks) % 7, r // (7 * weeks)
    t = k * 7 + weekday
    source = pl.select(pl.when((k >= 0) & (t < n_days)).then(sid * stride + PAD + t)).to_series()
    # the weekday's offset: mean of its last BASELINE_WEEKS offsets without the highest and the lowest (a level of
    # 0, a series that cost nothing for five weeks, has no offset: no verdict until it has a level again)
    before = pl.col("before")
    window = (
        pl.DataFrame({"before": day["offset"].gather(source).shift(1)})
        .with_columns(
            count=before.is_not_null().cast(pl.Int32).rolling_sum(BASELINE_WEEKS),
            total=before.rolling_sum(BASELINE_WEEKS, min_samples=1),
            top=before.rolling_max(BASELINE_WEEKS, min_samples=1),
            bottom=before.rolling_min(BASELINE_WEEKS, min_samples=1),
        )
        .select(
            pl.when(pl.col("count") >= MIN_BASELINE_WEEKS).then(
                (pl.col("total") - pl.col("top") - pl.col("bottom")) / (pl.col("count") - 2)
            )
        )
    )
    offset_wk = window.to_series()
    back = pl.select(
        pl.when(day["t"] >= 0).then(day["sid"] * 7 * weeks + (day["t"] % 7) * weeks + day["t"] // 7 + BASELINE_WEEKS)
    ).to_series()
    day = day.with_columns(expected=pl.col("level") * (1 + offset_wk.gather(back))).with_columns(
        resid=pl.col("cost") - pl.col("expected")
    )
    # noise: a clipped mean absolute residual, re-clipped NOISE_PASSES times at NOISE_CLIP x the previous estimate
    # (a Huber-type scale). A residual only enters the windows after its own day, clipped against the scale that
    # judged it, so a spike adds at most NOISE_CLIP noise units to one of NOISE_DAYS days.
    absolute = pl.col("resid").abs()
    scale = absolute.shift(1).rolling_mean(NOISE_DAYS, min_samples=MIN_NOISE_DAYS) * MEAN_ABS_TO_SD
    for _ in range(NOISE_PASSES):
        clipped = pl.when(absolute.is_not_null()).then(pl.min_horizontal(absolute, NOISE_CLIP * scale))
        scale = clipped.shift(1).rolling_mean(NOISE_DAYS, min_samples=MIN_NOISE_DAYS) / CLIPPED_MEAN_ABS_PER_SD
    day = day.with_columns(scale=scale)
    # max_horizontal skips nulls: without the guard a series still in its warm-up would be judged on the floor alone
    floored = pl.max_horizontal(
        pl.col("scale"), pl.col("expected") * RELATIVE_NOISE_FLOOR, pl.lit(ABSOLUTE_NOISE_FLOOR)
    )
    # Two days each at least half the threshold whose sum clears it by sqrt(2) are one anomaly from the first: a
    # workload left running a weekend at 3 noise units a day is as unlikely by chance as one 4-unit day.
    score = pl.col("resid") / pl.col("noise")
    # Only pairs of days neither of which is anomalous alone: a spike must not start a day early because the day
    # before it was a little high.
    this, prior = pl.col("score"), pl.col("score").shift(1)
    pair = (
        (this >= sensitivity / 2)
        & (prior >= sensitivity / 2)
        & (this < sensitivity)
        & (prior < sensitivity)
        & ((pl.col("resid") + pl.col("resid").shift(1)) / (pl.col("noise") * math.sqrt(2)) >= sensitivity)
    ).fill_null(False)
    scored = (
        day.with_columns(noise=pl.when(pl.col("scale").is_not_null()).then(floored))
        .with_columns(score=score)
        .with_columns(pair=pair)
        .with_columns(
            flagged=(
                (pl.col("score") >= sensitivity).fill_null(False)
                | pl.col("pair")
                | pl.col("pair").shift(-1).fill_null(False)
            )
        )
        .filter(pl.col("cost").is_not_null())
        .with_columns(usage_date=pl.lit(start) + pl.duration(days=pl.col("t")))
    )
    return scored.select("sid", "usage_date", "cost", "expected", "resid", "noise", "score", "flagged"), ids


def _median3(a: pl.Expr, b: pl.Expr, c: pl.Expr) -> pl.Expr:
    # `+` and not sum_horizontal: null when a value is missing (the horizontal reductions skip nulls)
    return a + b + c - pl.max_horizontal(a, b, c) - pl.min_horizontal(a, b, c)


def _median5_bounds(a: pl.Expr, b: pl.Expr, c: pl.Expr, d: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """The median of five values a..e is the median of e and these two (min/max alone: elementwise and O(n), where
    a list median over 8 M rows costs ~1 s). Separate columns, so each is computed once."""
    return (
        pl.max_horizontal(pl.min_horizontal(a, b), pl.min_horizontal(c, d)),
        pl.min_horizontal(pl.max_horizontal(a, b), pl.max_horizontal(c, d)),
    )


def anomaly_runs(scored: pl.DataFrame, min_impact_usd: float, since: date | None = None) -> pl.DataFrame:
    """One row per run of consecutive flagged days of a series with impact >= min_impact_usd, ending on or after
    `since`: sid, first_seen, last_seen, days, impact_usd, and the last day's expected, actual and score."""
    flagged = scored.filter(pl.col("flagged"))
    if flagged.is_empty():
        return flagged.select("sid").with_columns(first_seen=pl.lit(None, pl.Date)).clear()
    gap = (pl.col("usage_date") - pl.col("usage_date").shift(1)).dt.total_days().over("sid")
    runs = (
        flagged.with_columns(run=(gap.fill_null(2) != 1).cum_sum().over("sid"))
        .group_by("sid", "run")
        .agg(
            first_seen=pl.col("usage_date").min(),
            last_seen=pl.col("usage_date").max(),
            days=pl.len(),
            impact_usd=pl.col("resid").sum(),
            expected=pl.col("expected").last(),
            actual=pl.col("cost").last(),
            score=pl.col("score").last(),
        )
        .filter(pl.col("impact_usd") >= min_impact_usd)
    )
    if since is not None:
        runs = runs.filter(pl.col("last_seen") >= since)
    return runs.drop("run").sort("impact_usd", descending=True)


def top_usage_types(leaves: pl.DataFrame, runs: pl.DataFrame) -> dict[int, list[UsageTypeContribution]]:
    """Per anomaly (runs: row id n, SERIES, last_seen), each usage type's cost on the last day against its own
    same-weekday median over the previous BASELINE_WEEKS weeks (0 where it had no rows): what moved inside the
    series, largest first. leaves: the anomalous series' daily rows (SERIES, usage_date, usage_type, cost)."""
    weeks = pl.DataFrame({"k": list(range(BASELINE_WEEKS + 1))}, schema={"k": pl.Int64})
    firsts = leaves.group_by(SERIES).agg(first=pl.col("usage_date").min())
    days = (
        runs.select("n", *SERIES, "last_seen")
        .join(weeks, how="cross")
        .with_columns(usage_date=(pl.col("last_seen") - pl.duration(weeks=pl.col("k"))).cast(pl.Date))
        .join(firsts, on=SERIES)
        .filter(pl.col("usage_date") >= pl.col("first"))
    )
    by_day = leaves.group_by(*SERIES, "usage_type", "usage_date").agg(pl.col("cost").sum())
    cells = (
        days.join(leaves.select(*SERIES, "usage_type").unique(), on=SERIES)
        .join(by_day, on=[*SERIES, "usage_type", "usage_date"], how="left")
        .with_columns(pl.col("cost").fill_null(0.0))
    )
    moved = (
        cells.group_by("n", "usage_type")
        .agg(
            actual=pl.col("cost").filter(pl.col("k") == 0).sum(),
            expected=pl.col("cost").filter(pl.col("k") > 0).median().fill_null(0.0),
        )
        .with_columns(impact=pl.col("actual") - pl.col("expected"))
        .sort("n", "impact", "usage_type", descending=[False, True, False])
        .group_by("n", maintain_order=True)
        .head(TOP_USAGE_TYPES)
    )
    out: dict[int, list[UsageTypeContribution]] = {}
    for r in moved.iter_rows(named=True):
        out.setdefault(r["n"], []).append(
            UsageTypeContribution(
                usage_type=str(r["usage_type"]),
                actual=round(r["actual"], 2),
                expected=round(r["expected"], 2),
                impact=round(r["impact"], 2),
            )
        )
    return out


def detect_spend_spikes(
    daily: pl.DataFrame, as_of: date, params: SpendParams, since: date | None = None
) -> list[Detection]:
    """Spend spikes among daily leaf rows (usage_date, service, usage_account_id, region, usage_type, cost) up to
    and including `as_of` (the last complete day); only anomalies still going on `since` or later."""
    daily = daily.filter(pl.col("usage_date") <= as_of)
    if daily.is_empty():
        return []
    scored, ids = score_days(daily, as_of, params.sensitivity)
    runs = anomaly_runs(scored, params.min_impact_usd, since).join(ids, on="sid")
    if runs.is_empty():
        return []
    runs = runs.with_row_index("n").with_columns(pl.col("n").cast(pl.Int64))
    tops = top_usage_types(daily.join(runs.select(SERIES).unique(), on=SERIES), runs)
    out = []
    for r in runs.iter_rows(named=True):
        keys = {c: r[c] for c in SERIES}
        top = tops.get(r["n"], [])
        lead = f"; mostly {top[0].usage_type} (+${top[0].impact:,.2f})" if top and top[0].impact > 0 else ""
        span = f"since {r['first_seen']} ({r['days']} days)" if r["days"] > 1 else f"on {r['first_seen']}"
        out.append(
            Detection(
                kind=AlertKind.spend_spike,
                severity=severity_for_impact(r["impact_usd"], params.min_impact_usd),
                dimensions={k: str(v) for k, v in keys.items()},
                first_seen=r["first_seen"],
                last_seen=r["last_seen"],
                expected=round(r["expected"], 2),
                actual=round(r["actual"], 2),
                impact_usd=round(r["impact_usd"], 2),
                score=round(r["score"], 1),
                top_usage_types=top,
                message=(
                    f"{keys['service']} in {keys['usage_account_id']} ({keys['region'] or 'global'}) cost "
                    f"${r['actual']:,.2f} on {r['last_seen']} against ${r['expected']:,.2f} expected for that weekday"
                    f" {span}: ${r['impact_usd']:,.2f} above the baseline{lead}."
                ),
            )
        )
    return out


def detect_new_services(daily: pl.DataFrame, as_of: date, params: SpendParams, since: date) -> list[Detection]:
    """A service the tenant never used before, first billed on or after `since`, once it has cost at least a
    tenth of min_impact_usd (a new service is worth a look before it is worth a spike)."""
    daily = daily.filter(pl.col("usage_date") <= as_of)
    if daily.is_empty():
        return []
    history_start = daily["usage_date"].min()
    firsts = (
        daily.group_by("service")
        .agg(
            first_seen=pl.col("usage_date").min(),
            last_seen=pl.col("usage_date").max(),
            total=pl.col("cost").sum(),
            accounts=pl.col("usage_account_id").unique().sort(),
        )
        .filter(
            (pl.col("first_seen") >= since)
            & (pl.col("first_seen") >= history_start + timedelta(days=NEW_SERVICE_MIN_HISTORY_DAYS))
            & (pl.col("total") >= params.min_impact_usd / 10)
        )
    )
    out = []
    for r in firsts.iter_rows(named=True):
        svc = daily.filter(pl.col("service") == r["service"])
        by_type = svc.group_by("usage_type").agg(pl.col("cost").sum()).sort("cost", descending=True)
        last_day = svc.filter(pl.col("usage_date") == r["last_seen"])["cost"].sum()
        top = [
            UsageTypeContribution(usage_type=u, actual=round(c, 2), expected=0.0, impact=round(c, 2))
            for u, c in by_type.head(TOP_USAGE_TYPES).iter_rows()
        ]
        out.append(
            Detection(
                kind=AlertKind.new_service,
                severity=severity_for_impact(r["total"], params.min_impact_usd),
                dimensions={"service": r["service"]},
                first_seen=r["first_seen"],
                last_seen=r["last_seen"],
                expected=0.0,
                actual=round(last_day, 2),
                impact_usd=round(r["total"], 2),
                top_usage_types=top,
                message=(
                    f"New service {r['service']}: first billed on {r['first_seen']} in "
                    f"{', '.join(r['accounts'])}; ${r['total']:,.2f} so far."
                ),
            )
        )
    return out
