"""Checks that must all pass before any purchase call. Pure functions: each returns a `Check` whose reason says
what was found and what to do about it, so a blocked proposal explains itself in the UI and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import polars as pl

from blocks_pipelines.state.records import Approval, Proposal

RECENT_DAYS = 3  # the days whose spend must look like the baseline
BASELINE_DAYS = 28
MIN_BASELINE_DAYS = 7


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    reason: str


def blocking(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.passed]


def check_approval(proposal: Proposal, decision: Approval | None) -> Check:
    if decision is None:
        return Check(
            "approval",
            False,
            f"proposal {proposal.proposal_id} has no recorded approval: approve it with "
            f"`blocks sp approve {proposal.proposal_id} --approver NAME` or the sp_approvals asset",
        )
    if decision.decision != "approve":
        return Check("approval", False, f"proposal {proposal.proposal_id} was rejected by {decision.approver}")
    return Check("approval", True, f"approved by {decision.approver} at {decision.decided_at.isoformat()}")


def check_expiry(proposal: Proposal, now: datetime) -> Check:
    if proposal.is_expired(now):
        return Check(
            "expiry",
            False,
            f"proposal expired at {proposal.expires_at.isoformat()} (proposal_ttl_hours); "
            "materialize sp_proposals for a fresh analysis",
        )
    return Check("expiry", True, f"valid until {proposal.expires_at.isoformat()}")


def check_cap(existing_hourly: float, new_hourly: float, cap: float) -> Check:
    total = existing_hourly + new_hourly
    if total > cap + 1e-9:
        return Check(
            "cap",
            False,
            f"existing ${existing_hourly:.3f}/h + new ${new_hourly:.3f}/h = ${total:.3f}/h exceeds "
            f"the tenant cap guardrails.max_hourly_commitment=${cap:.3f}/h; raise the cap in the tenant file "
            "or analyze again for a smaller commitment",
        )
    return Check("cap", True, f"${total:.3f}/h of ${cap:.3f}/h cap")


def check_fresh(proposal: Proposal, current_fingerprint: str) -> Check:
    if current_fingerprint != proposal.data_fingerprint:
        return Check(
            "staleness",
            False,
            f"eligible usage between {proposal.window_start} and {proposal.window_end} "
            f"changed since the analysis (fingerprint {proposal.data_fingerprint} -> {current_fingerprint}, "
            "e.g. a CUR restatement): analyze again by materializing sp_proposals",
        )
    return Check("staleness", True, "input window unchanged since analysis")


def complete_daily_spend(usage: pl.DataFrame) -> pl.DataFrame:
    """Daily eligible on-demand spend, without a trailing day the CUR has not finished delivering (a half-day
    would read as a drop)."""
    if usage.is_empty():
        return pl.DataFrame(schema={"day": pl.Date, "spend": pl.Float64})
    last_hour = usage["ts_hour"].max()
    daily = (
        usage.group_by(pl.col("ts_hour").dt.date().alias("day"))
        .agg(pl.col("eligible_on_demand_cost").sum().alias("spend"))
        .sort("day")
    )
    last_complete = (last_hour + timedelta(hours=1)).date() - timedelta(days=1)
    return daily.filter(pl.col("day") <= last_complete)


def check_anomaly(usage: pl.DataFrame, threshold: float) -> Check:
    """Each of the last RECENT_DAYS complete days against the median of the BASELINE_DAYS before them: a spike or a
    drop beyond `threshold` (relative) blocks, because a commitment sized on unusual days is a bet on them."""
    daily = complete_daily_spend(usage)
    recent, baseline = daily.tail(RECENT_DAYS), daily.head(max(daily.height - RECENT_DAYS, 0)).tail(BASELINE_DAYS)
    if recent.height < RECENT_DAYS or baseline.height < MIN_BASELINE_DAYS:
        return Check(
            "anomaly",
            False,
            f"only {daily.height} complete day(s) of eligible usage; the anomaly gate needs "
            f"{RECENT_DAYS + MIN_BASELINE_DAYS}: wait for more CUR history before buying",
        )
    median = float(baseline["spend"].median())
    if median <= 0:
        return Check("anomaly", False, "baseline eligible spend is zero: nothing steady to commit against")
    worst_day, worst_change = None, 0.0
    for day, spend in recent.iter_rows():
        change = (spend - median) / median
        if abs(change) > abs(worst_change):
            worst_day, worst_change = day, change
    if abs(worst_change) > threshold:
        kind = "spike" if worst_change > 0 else "drop"
        return Check(
            "anomaly",
            False,
            f"eligible spend {kind} on {worst_day}: {worst_change:+.0%} vs the "
            f"{baseline.height}-day median ${median:,.2f}/day (guardrails.anomaly_threshold={threshold:.0%}); "
            "wait until spend settles and analyze again, or raise the threshold if the change is planned",
        )
    return Check("anomaly", True, f"recent days within {abs(worst_change):.0%} of the baseline median")
