"""From the eligible-usage mart to a proposal awaiting approval, and from a back-office decision to an approved or
rejected proposal. Pure helpers first (tested without a store), then the two workflows that touch the store."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import polars as pl

from blocks_pipelines.state.records import (
    Approval,
    IllegalTransitionError,
    Proposal,
    ProposalStatus,
    Purchase,
    PurchaseState,
    utcnow,
)
from blocks_pipelines.state.store import StateStore
from blocks_pipelines.tenants.config import TenantConfig

# Hours with no Savings Plans coverage carry no observed rate; 1-year no-upfront Compute SP is ~28% off on-demand.
DEFAULT_RATE_RATIO = 0.72
# The mart holds no plan end date; a plan first seen at t ends no later than t + its term, and 1 year is the
# shortest term, so this never assumes capacity lasts longer than it can.
ASSUMED_TERM = timedelta(days=365)
ANALYZER = "sp_analyzer"

Decision = Literal["approve", "reject"]


@dataclass(frozen=True)
class Commitment:
    hourly: float
    end: datetime
    arn: str
    start: datetime | None = None  # known for plans Blocks bought; later than now for a queued plan

    def as_existing(self) -> tuple:
        """The analyzer's form: ($/h, end), or ($/h, end, start) when the start is known."""
        return (self.hourly, self.end) if self.start is None else (self.hourly, self.end, self.start)


def usage_from_mart(mart: pl.DataFrame) -> pl.DataFrame:
    """`sp_eligible_usage_hourly` rows -> the analyzer's input: one row per UTC hour (ts_hour,
    eligible_on_demand_cost, sp_rate_ratio), sorted."""
    missing = {"usage_hour", "eligible_on_demand_cost", "sp_rate_ratio"} - set(mart.columns)
    if missing:
        raise ValueError(
            f"sp_eligible_usage_hourly is missing column(s) {sorted(missing)}; rebuild the dbt models "
            "(`blocks materialize`) so the mart matches docs/contracts.md"
        )
    hours = (
        mart.with_columns(pl.col("usage_hour").cast(pl.Datetime("us", "UTC")).alias("ts_hour"))
        .group_by("ts_hour")
        .agg(
            pl.col("eligible_on_demand_cost").fill_null(0).sum(),
            # a cost-weighted rate when several rows share an hour
            (
                (pl.col("sp_rate_ratio") * pl.col("eligible_on_demand_cost")).sum()
                / pl.col("eligible_on_demand_cost").filter(pl.col("sp_rate_ratio").is_not_null()).sum()
            ).alias("r"),
        )
        .sort("ts_hour")
    )
    return hours.select(
        "ts_hour",
        pl.col("eligible_on_demand_cost").cast(pl.Float64),
        pl.col("r").fill_nan(None).forward_fill().backward_fill().fill_null(DEFAULT_RATE_RATIO).alias("sp_rate_ratio"),
    )


def data_fingerprint(usage: pl.DataFrame, start: datetime | None, end: datetime | None) -> str:
    """Hash of the analysis window, rounded to a hundredth of a cent so float noise does not count as a change."""
    window = usage
    if start is not None and end is not None:
        window = usage.filter(pl.col("ts_hour").is_between(start, end))
    text = (
        window.select(
            pl.format(
                "{}|{}|{}",
                pl.col("ts_hour").dt.strftime("%Y-%m-%dT%H"),
                pl.col("eligible_on_demand_cost").round(4),
                pl.col("sp_rate_ratio").round(6),
            )
        )
        .to_series()
        .str.join("\n")
    )
    return hashlib.sha256(text.item().encode()).hexdigest()[:16]


def existing_commitments(
    position: pl.DataFrame | None, purchases: list[Purchase], now: datetime, ledger_plans: list[dict[str, Any]] = ()
) -> list[Commitment]:
    """Plans active now: those in the `sp_position_hourly` mart plus plans bought (or simulated) since, which the
    CUR has not shown yet. A plan appears once even when it is in both; a plan Blocks bought keeps its known start
    and term (the mart only shows when it was first seen, and assumes the shortest term)."""
    out: dict[str, Commitment] = {}
    if position is not None and not position.is_empty():
        plans = (
            position.filter(pl.col("savings_plan_arn") != "TOTAL")
            .group_by("savings_plan_arn")
            .agg(pl.col("usage_hour").min().alias("first"), pl.col("commitment").sort_by("usage_hour").last())
        )
        for arn, first, hourly in plans.iter_rows():
            end = first.replace(tzinfo=now.tzinfo) + ASSUMED_TERM if first.tzinfo is None else first + ASSUMED_TERM
            if end > now and hourly and hourly > 0:
                out[arn] = Commitment(float(hourly), end, arn)
    for p in purchases:
        known = p.savings_plan_arn in out and out[p.savings_plan_arn].start is not None
        if p.state is PurchaseState.completed and p.savings_plan_arn and not known:
            start = datetime.fromisoformat(p.details["start"]) if "start" in p.details else p.completed_at or now
            years = int(p.details.get("term_years", 1))
            out[p.savings_plan_arn] = Commitment(
                float(p.hourly_commitment or 0), start + years * ASSUMED_TERM, p.savings_plan_arn, start
            )
    for plan in ledger_plans:
        if plan["savings_plan_arn"] not in out or out[plan["savings_plan_arn"]].start is None:
            start = datetime.fromisoformat(plan["start"])
            out[plan["savings_plan_arn"]] = Commitment(
                float(plan["hourly_commitment"]),
                start + int(plan.get("term_years", 1)) * ASSUMED_TERM,
                plan["savings_plan_arn"],
                start,
            )
    return sorted((c for c in out.values() if c.end > now), key=lambda c: c.end)


def new_proposal_id(tenant_id: str, at: datetime, fingerprint: str, hourly: float) -> str:
    digest = hashlib.sha256(f"{tenant_id}|{at.isoformat()}|{fingerprint}|{hourly:.6f}".encode()).hexdigest()[:8]
    return f"{tenant_id}.{at:%Y%m%dT%H%M}.{digest}"


def build_proposal(
    tenant: TenantConfig, usage: pl.DataFrame, recommendation: Any, existing: list[Commitment], now: datetime
) -> Proposal:
    """The proposal record for an analyzer recommendation (status Analyzing; the workflow moves it on)."""
    start, end = usage["ts_hour"].min(), usage["ts_hour"].max()
    fingerprint = data_fingerprint(usage, start, end)
    hourly = round(float(recommendation.hourly_commitment), 3)
    expected = recommendation.model_dump(mode="json") if hasattr(recommendation, "model_dump") else dict(recommendation)
    return Proposal(
        proposal_id=new_proposal_id(tenant.id, now, fingerprint, hourly),
        tenant_id=tenant.id,
        hourly_commitment=hourly,
        existing_hourly_commitment=round(sum(c.hourly for c in existing), 6),
        term_years=tenant.guardrails.term_years,
        payment_option=tenant.guardrails.payment_option,
        expected=expected,
        rationale=str(getattr(recommendation, "rationale", "")),
        data_fingerprint=fingerprint,
        window_start=start,
        window_end=end,
        created_at=now,
        expires_at=now + timedelta(hours=tenant.guardrails.proposal_ttl_hours),
    )


# ---- workflows on the store ---------------------------------------------------------------------------------------


def expire_overdue(store: StateStore, tenant_id: str, now: datetime | None = None) -> list[str]:
    now = now or utcnow()
    expired = []
    for p in store.list_proposals(tenant_id, [ProposalStatus.pending_approval, ProposalStatus.approved]):
        if p.is_expired(now):
            try:
                store.transition_proposal(
                    p.proposal_id,
                    ProposalStatus.expired,
                    "expiry",
                    reason=f"not purchased before {p.expires_at.isoformat()}",
                )
                expired.append(p.proposal_id)
            except IllegalTransitionError:  # decided or bought meanwhile
                pass
    return expired


def publish_proposal(store: StateStore, proposal: Proposal) -> Proposal:
    """Record Analyzing -> PendingApproval, superseding older pending proposals of the tenant. Re-publishing the
    same analysis (same data, same commitment) keeps the pending proposal instead of creating a twin."""
    # a renewal or a rollback (expected.action) answers another question: a new analysis does not supersede it
    pending = [
        p
        for p in store.list_proposals(proposal.tenant_id, [ProposalStatus.pending_approval])
        if not p.expected.get("action")
    ]
    for p in pending:
        if (
            p.data_fingerprint == proposal.data_fingerprint
            and abs(p.hourly_commitment - proposal.hourly_commitment) < 1e-9
        ):
            return p
    store.create_proposal(proposal, actor=ANALYZER)
    published = store.transition_proposal(proposal.proposal_id, ProposalStatus.pending_approval, ANALYZER)
    for p in pending:
        try:
            store.transition_proposal(
                p.proposal_id, ProposalStatus.expired, ANALYZER, reason=f"superseded by {proposal.proposal_id}"
            )
        except IllegalTransitionError:
            pass
    return published


@dataclass(frozen=True)
class DecisionOutcome:
    proposal: Proposal
    decision: Approval | None  # the decision on record (maybe someone else's)
    recorded: bool  # this call's decision is the one on record
    message: str


def decide(
    store: StateStore,
    proposal_id: str,
    decision: Decision,
    approver: str,
    note: str = "",
    source: str = "cli",
    now: datetime | None = None,
) -> DecisionOutcome:
    """Record a back-office decision. Only a PendingApproval, unexpired proposal can be decided; only the first
    decision counts (a second approval, or an approval racing a rejection, is reported, not applied)."""
    now = now or utcnow()
    if decision not in ("approve", "reject"):
        raise ValueError(f"decision {decision!r}: use 'approve' or 'reject'")
    if not approver.strip():
        raise ValueError("approver is empty: name the person who decides (--approver NAME)")
    proposal = store.get_proposal(proposal_id)
    existing = store.get_decision(proposal_id)
    if existing is not None:
        return DecisionOutcome(
            proposal, existing, False, f"already decided: {existing.decision} by {existing.approver}; nothing changed"
        )
    if proposal.status is not ProposalStatus.pending_approval:
        return DecisionOutcome(
            proposal,
            None,
            False,
            f"proposal is {proposal.status.value} ({proposal.status_reason or 'no reason'}), "
            "not PendingApproval: nothing to decide",
        )
    if proposal.is_expired(now):
        expired = store.transition_proposal(
            proposal_id,
            ProposalStatus.expired,
            approver,
            reason=f"decision arrived after expiry {proposal.expires_at.isoformat()}",
        )
        return DecisionOutcome(expired, None, False, "proposal expired before the decision: analyze again")
    stored, won = store.record_decision(
        Approval(
            proposal_id=proposal_id,
            tenant_id=proposal.tenant_id,
            decision=decision,
            approver=approver.strip(),
            note=note,
            source=source,
            decided_at=now,
        )
    )
    if not won:
        return DecisionOutcome(
            store.get_proposal(proposal_id),
            stored,
            False,
            f"lost a race: {stored.decision} by {stored.approver} was recorded first",
        )
    target = ProposalStatus.approved if decision == "approve" else ProposalStatus.rejected
    reason = f"{decision} by {stored.approver}" + (f": {note}" if note else "")
    updated = store.transition_proposal(proposal_id, target, stored.approver, reason=reason)
    return DecisionOutcome(updated, stored, True, f"{target.value}: {reason}")
