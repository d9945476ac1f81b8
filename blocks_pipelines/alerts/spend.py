"""Spend anomalies: daily cost per (service, account, region) against a seasonal, robust baseline.

Method (docs/anomalies.md explains the choices):
- expected(d) = median of the same weekday over the previous BASELINE_WEEKS weeks. Same weekday, because SME spend
  has a strong weekly cycle (dev accounts sleep at weekends): a plain trailing median flags every Monday. Median,
  because one spike in the window must not lift the baseline that judges the next one (a mean would).
- noise(d) = 1.4826 x the median absolute residual |cost - expected| over the previous NOISE_DAYS days: the MAD,
  scaled to a standard deviation for Gaussian noise, and robust to the spikes it is meant to find. Floored at
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
BASELINE_WEEKS = 8
MIN_BASELINE_WEEKS = 4  # fewer same-weekday observations than this: no baseline yet, no verdict
NOISE_DAYS = 42  # residuals the noise is the median of, all present or no verdict (28: the MAD ~22 % noisy)
MAD_TO_SD = 1.4826
RELATIVE_NOISE_FLOOR = 0.03
ABSOLUTE_NOISE_FLOOR = 0.01  # $: keeps the score finite on series that cost nothing
NEW_SERVICE_MIN_HISTORY_DAYS = 14  # a tenant's first fortnight has no "before" to be new against
TOP_USAGE_TYPES = 3
USAGE_LINE_ITEM_TYPES = ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage")


@dataclass(frozen=True)
class SpendParams:
    sensitivity: float = 5.0
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

    Rolling medians over 10,000 series with `.over()` cost ~1 s per thousand groups, so the series are laid end to
    end in one flat column, each behind a run of nulls as long as the window (rolling medians skip nulls, so no
    window reaches into the previous series), and the weekday baseline reads a second layout with the days of
    each (series, weekday) consecutive. Everything stays vectorized: gathers, scatters and two rolling medians.
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
    leaves = (
        keyed.group_by("key", "t")
        .agg(pl.col("cost").sum())
        .select("t", "cost", sid=pl.col("key").replace_strict(ids["key"], ids["sid"]))
    )
    n, first = ids.height, ids["first"].cast(pl.Int64)
    ids = ids.select("sid", *SERIES)
    # day layout: series after series, NOISE_DAYS nulls in front of each
    stride = n_days + NOISE_DAYS
    at = leaves["sid"] * stride + NOISE_DAYS + leaves["t"]
    raw = pl.repeat(None, n * stride, dtype=pl.Float64, eager=True).scatter(at, leaves["cost"])
    i = pl.int_range(n * stride, dtype=pl.Int64, eager=True)
    day = pl.DataFrame({"sid": i // stride, "t": i % stride - NOISE_DAYS, "cost": raw})
    day = day.with_columns(first=first.gather(day["sid"])).with_columns(
        cost=pl.when(pl.col("t") >= pl.col("first")).then(pl.col("cost").fill_null(0.0))
    )
    # weekday layout: for each (series, weekday) its weeks in order, BASELINE_WEEKS nulls in front
    weeks = -(-n_days // 7) + BASELINE_WEEKS
    r = pl.int_range(n * 7 * weeks, dtype=pl.Int64, eager=True)
    k, weekday, sid = r % weeks - BASELINE_WEEKS, (r // weeks) % 7, r // (7 * weeks)
    t = k * 7 + weekday
    source = pl.select(pl.when((k >= 0) & (t < n_days)).then(sid * stride + NOISE_DAYS + t)).to_series()
    by_weekday = day["cost"].gather(source)
    expected_wk = by_weekday.shift(1).rolling_median(BASELINE_WEEKS, min_samples=MIN_BASELINE_WEEKS)
    back = pl.select(
        pl.when(day["t"] >= 0).then(day["sid"] * 7 * weeks + (day["t"] % 7) * weeks + day["t"] // 7 + BASELINE_WEEKS)
    ).to_series()
    day = day.with_columns(expected=expected_wk.gather(back)).with_columns(resid=pl.col("cost") - pl.col("expected"))
    # a rolling median over nulls costs 3x one without: fill them, and keep only windows of NOISE_DAYS residuals
    absolute = pl.col("resid").abs().shift(1)
    complete = absolute.is_not_null().cast(pl.Int32).rolling_sum(NOISE_DAYS) == NOISE_DAYS
    mad = pl.when(complete).then(absolute.fill_null(0.0).rolling_median(NOISE_DAYS))
    # max_horizontal skips nulls: without the guard a series still in its warm-up would be judged on the floor alone
    floored = pl.max_horizontal(
        mad * MAD_TO_SD, pl.col("expected") * RELATIVE_NOISE_FLOOR, pl.lit(ABSOLUTE_NOISE_FLOOR)
    )
    # Two days each at least half the threshold whose sum clears it by sqrt(2) are one anomaly from the first: a
    # workload left running a weekend at 3.5 noise units a day is as unlikely by chance as one 5-unit day.
    score = pl.col("resid") / pl.col("noise")
    # Only pairs of days neither of which is anomalous alone: a spike must not start a day early because the day
    # before it was a little high.
    this, before = pl.col("score"), pl.col("score").shift(1)
    pair = (
        (this >= sensitivity / 2)
        & (before >= sensitivity / 2)
        & (this < sensitivity)
        & (before < sensitivity)
        & ((pl.col("resid") + pl.col("resid").shift(1)) / (pl.col("noise") * math.sqrt(2)) >= sensitivity)
    ).fill_null(False)
    scored = (
        day.with_columns(noise=pl.when(mad.is_not_null()).then(floored))
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
