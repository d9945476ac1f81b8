"""Rollback playbook: undo a plan that proved oversized, while AWS still allows it.

Two rollbacks exist (docs/savings_plans_lifecycle.md has AWS's rules and their sources):
- return: an active plan bought within the last 7 days and in the same UTC calendar month can be returned with
  ReturnSavingsPlan (100% of any upfront refunded; at most 10 returns per management account and calendar year).
  AWS reports the deadline per plan as `returnableUntil` (DescribeSavingsPlans); it is authoritative when known.
- cancel: a queued plan (bought with a future purchaseTime, e.g. a renewal that starts when its predecessor ends)
  can be deleted with DeleteQueuedSavingsPlan until it starts.

Both are proposals through the same approval gate as a purchase (PendingApproval -> Approved by a person), with
`expected.action` saying which. Execution claims the proposal in the state store first, so racing runs or repeated
approvals make exactly one AWS call; every step is audited. A return proposal is raised when the portfolio's
utilization since the plan started is below the P10 band its own analysis promised.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal, Protocol

import polars as pl

from blocks_pipelines.savings_plans.lifecycle.monitoring import find_band, monitor
from blocks_pipelines.savings_plans.purchase.guardrails import check_approval
from blocks_pipelines.state.records import (
    IllegalTransitionError,
    Proposal,
    ProposalStatus,
    Purchase,
    PurchaseState,
    utcnow,
)
from blocks_pipelines.state.store import StateStore, proposal_target
from blocks_pipelines.tenants.config import TenantConfig

ACTOR = "sp_rollback"
RETURN_DAYS = 7
RETURNS_PER_YEAR = 10  # per management account and calendar year
MIN_HOURS_OBSERVED = 24  # a day of CUR hours after the start before a plan is judged
Action = Literal["return", "cancel_queued"]
Outcome = Literal[
    "returned", "cancelled", "already_done", "in_progress", "not_approved", "closed", "expired", "blocked"
]
OPEN = (ProposalStatus.pending_approval, ProposalStatus.approved, ProposalStatus.returned)


class PlanUndoer(Protocol):
    name: str

    def return_plan(self, savings_plan_id: str, client_token: str) -> dict[str, Any]: ...

    def delete_queued(self, savings_plan_id: str, client_token: str) -> dict[str, Any]: ...


def return_deadline(start: datetime) -> datetime:
    """The end of AWS's return window: 7 days after the start, but never past the end of its UTC month."""
    start = start.astimezone(timezone.utc)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return min(start + timedelta(days=RETURN_DAYS), datetime(year, month, 1, tzinfo=timezone.utc))


def is_rollback(proposal: Proposal) -> bool:
    return proposal.expected.get("action") in ("return", "cancel_queued")


def _plan_start(purchase: Purchase) -> datetime | None:
    start = purchase.details.get("start")
    return datetime.fromisoformat(start) if start else purchase.completed_at


def plan_deadline(purchase: Purchase) -> datetime | None:
    """AWS's returnableUntil when the purchase recorded it, else the documented window from the start."""
    recorded = purchase.details.get("returnable_until")
    if recorded:
        return datetime.fromisoformat(recorded)
    start = _plan_start(purchase)
    return return_deadline(start) if start else None


@dataclass(frozen=True)
class ReturnCandidate:
    bought_by: str  # the purchase proposal
    savings_plan_id: str
    savings_plan_arn: str | None
    hourly_commitment: float
    start: datetime
    returnable_until: datetime
    utilization: float
    utilization_p10: float
    hours_observed: int


def return_candidates(
    position: pl.DataFrame, purchases: list[Purchase], proposals: dict[str, Proposal], now: datetime
) -> list[ReturnCandidate]:
    """Plans still inside their return window whose portfolio utilization since they started is below the P10
    band of the analysis that bought them."""
    out = []
    for p in purchases:
        bought = proposals.get(p.proposal_id)
        if p.state is not PurchaseState.completed or bought is None or is_rollback(bought) or not p.savings_plan_id:
            continue
        start, deadline = _plan_start(p), plan_deadline(p)
        if start is None or deadline is None or not start <= now < deadline:
            continue
        band = find_band(bought.expected, "utilization")
        report = monitor(position, start, bought.expected)
        if band is None or report.utilization_after is None or report.hours_after < MIN_HOURS_OBSERVED:
            continue
        if report.utilization_after < band.p10:
            out.append(
                ReturnCandidate(
                    p.proposal_id,
                    p.savings_plan_id,
                    p.savings_plan_arn,
                    float(p.hourly_commitment or 0.0),
                    start,
                    deadline,
                    report.utilization_after,
                    band.p10,
                    report.hours_after,
                )
            )
    return out


def _rollback_id(tenant_id: str, now: datetime, action: str, plan_id: str) -> str:
    digest = hashlib.sha256(f"{tenant_id}|{action}|{plan_id}".encode()).hexdigest()[:8]
    return f"{tenant_id}.{now:%Y%m%dT%H%M}.{digest}"


def _open_rollback(store: StateStore, tenant_id: str, action: str, plan_id: str) -> Proposal | None:
    for p in store.list_proposals(tenant_id, OPEN):
        if p.expected.get("action") == action and p.expected.get("savings_plan_id") == plan_id:
            return p
    return None


def _publish(store: StateStore, proposal: Proposal) -> Proposal:
    # not proposals.publish_proposal: a rollback must not supersede a pending purchase proposal, nor vice versa
    store.create_proposal(proposal, actor=ACTOR)
    return store.transition_proposal(proposal.proposal_id, ProposalStatus.pending_approval, ACTOR)


def returns_this_year(store: StateStore, tenant_id: str, now: datetime) -> int:
    done = [store.get_purchase(p.proposal_id) for p in store.list_proposals(tenant_id, [ProposalStatus.returned])]
    return sum(
        1
        for d in done
        if d and d.details.get("action") == "return" and d.completed_at and d.completed_at.year == now.year
    )


def propose_returns(
    store: StateStore, tenant: TenantConfig, position: pl.DataFrame | None, now: datetime | None = None
) -> list[Proposal]:
    """A `return` proposal awaiting approval for each new candidate (one per plan, ever)."""
    now = now or utcnow()
    if position is None or position.is_empty():
        return []
    proposals = {p.proposal_id: p for p in store.list_proposals(tenant.id)}
    created = []
    for c in return_candidates(position, store.list_purchases(tenant.id), proposals, now):
        if _open_rollback(store, tenant.id, "return", c.savings_plan_id):
            continue
        used = returns_this_year(store, tenant.id, now)
        rationale = (
            f"Return plan {c.savings_plan_id} (${c.hourly_commitment:,.3f}/h, started {c.start:%Y-%m-%d %H:%M} "
            f"UTC): utilization over its first {c.hours_observed} h is {c.utilization:.1%}, below the "
            f"{c.utilization_p10:.1%} P10 its analysis ({c.bought_by}) expected, so the commitment is larger than "
            f"the usage it meets. AWS accepts the return until {c.returnable_until:%Y-%m-%d %H:%M} UTC (7 days "
            f"after purchase, within its calendar month); any upfront payment is refunded in full and the usage "
            f"it covered goes back to on-demand or other plans. Returns used this calendar year: {used} of "
            f"{RETURNS_PER_YEAR}."
        )
        proposal = Proposal(
            proposal_id=_rollback_id(tenant.id, now, "return", c.savings_plan_id),
            tenant_id=tenant.id,
            hourly_commitment=c.hourly_commitment,
            term_years=1,
            payment_option="no_upfront",
            expected={
                "action": "return",
                "savings_plan_id": c.savings_plan_id,
                "savings_plan_arn": c.savings_plan_arn,
                "bought_by": c.bought_by,
                "utilization": round(c.utilization, 4),
                "utilization_p10": round(c.utilization_p10, 4),
                "hours_observed": c.hours_observed,
                "returnable_until": c.returnable_until.isoformat(),
                "returns_used_this_year": used,
            },
            rationale=rationale,
            data_fingerprint=hashlib.sha256(c.savings_plan_id.encode()).hexdigest()[:16],
            created_at=now,
            expires_at=c.returnable_until,
        )
        created.append(_publish(store, proposal))
        store.append_audit(
            ACTOR,
            "rollback.propose_return",
            proposal_target(proposal.proposal_id),
            "pending",
            {"savings_plan_id": c.savings_plan_id, "utilization": c.utilization, "p10": c.utilization_p10},
        )
    return created


def propose_cancel_queued(
    store: StateStore, tenant: TenantConfig, purchase_proposal_id: str, requested_by: str, now: datetime | None = None
) -> Proposal:
    """A `cancel_queued` proposal for a plan bought to start later; refused once the plan has started."""
    now = now or utcnow()
    purchase = store.get_purchase(purchase_proposal_id)
    if purchase is None or purchase.state is not PurchaseState.completed or not purchase.savings_plan_id:
        raise ValueError(f"{purchase_proposal_id} bought no plan: nothing to cancel")
    start = _plan_start(purchase)
    if start is None or start <= now:
        raise ValueError(
            f"plan {purchase.savings_plan_id} started at {start}; only a queued plan can be cancelled "
            "(a started plan can be returned within its return window)"
        )
    existing = _open_rollback(store, tenant.id, "cancel_queued", purchase.savings_plan_id)
    if existing:
        return existing
    proposal = Proposal(
        proposal_id=_rollback_id(tenant.id, now, "cancel_queued", purchase.savings_plan_id),
        tenant_id=tenant.id,
        hourly_commitment=float(purchase.hourly_commitment or 0.0),
        expected={
            "action": "cancel_queued",
            "savings_plan_id": purchase.savings_plan_id,
            "savings_plan_arn": purchase.savings_plan_arn,
            "bought_by": purchase_proposal_id,
            "starts_at": start.isoformat(),
            "requested_by": requested_by,
        },
        rationale=(
            f"Cancel queued plan {purchase.savings_plan_id} (${purchase.hourly_commitment or 0:,.3f}/h, "
            f"due to start {start:%Y-%m-%d %H:%M} UTC), requested by {requested_by}. Nothing is charged for a "
            "queued plan; once it starts only a return (7 days, same month) can undo it."
        ),
        data_fingerprint=hashlib.sha256(purchase.savings_plan_id.encode()).hexdigest()[:16],
        created_at=now,
        expires_at=start,
    )
    return _publish(store, proposal)


@dataclass(frozen=True)
class RollbackResult:
    outcome: Outcome
    proposal: Proposal
    message: str
    savings_plan_id: str | None = None


def _close(store: StateStore, proposal_id: str, status: ProposalStatus, reason: str) -> Proposal:
    try:
        return store.transition_proposal(proposal_id, status, ACTOR, reason=reason)
    except IllegalTransitionError:  # another run got there first
        return store.get_proposal(proposal_id)


def execute_rollback(
    store: StateStore, tenant: TenantConfig, proposal_id: str, undoer: PlanUndoer, now: datetime | None = None
) -> RollbackResult:
    """Return or cancel the plan of an approved rollback proposal: one AWS call, however often this runs."""
    now = now or utcnow()
    proposal = store.get_proposal(proposal_id)
    action: Action = proposal.expected["action"]
    plan_id = str(proposal.expected["savings_plan_id"])
    done_word = "returned" if action == "return" else "cancelled"
    done = store.get_purchase(proposal_id)
    if done is not None and done.state is PurchaseState.completed:
        if proposal.status is ProposalStatus.approved:  # crashed between the call and the status change
            proposal = _close(store, proposal_id, ProposalStatus.returned, f"{done_word} {plan_id}")
        return RollbackResult("already_done", proposal, f"plan {plan_id} already {done_word}", plan_id)
    if proposal.status is not ProposalStatus.approved:
        kind = "closed" if proposal.status not in (ProposalStatus.pending_approval,) else "not_approved"
        store.append_audit(
            ACTOR, f"rollback.{action}.refused", proposal_target(proposal_id), kind, {"status": proposal.status.value}
        )
        return RollbackResult(
            kind, proposal, f"proposal is {proposal.status.value}: nothing is {done_word} without a recorded approval"
        )
    approval = check_approval(proposal, store.get_decision(proposal_id))
    if not approval.passed:
        return RollbackResult("not_approved", proposal, approval.reason)
    if action == "return":
        deadline = datetime.fromisoformat(proposal.expected["returnable_until"])
        if now >= deadline:
            reason = f"return window closed at {deadline.isoformat()}: the plan runs its term"
            return RollbackResult("expired", _close(store, proposal_id, ProposalStatus.expired, reason), reason)
        if returns_this_year(store, tenant.id, now) >= RETURNS_PER_YEAR:
            reason = f"{RETURNS_PER_YEAR} returns already made this calendar year (AWS's quota)"
            return RollbackResult("blocked", _close(store, proposal_id, ProposalStatus.blocked, reason), reason)
    elif now >= datetime.fromisoformat(proposal.expected["starts_at"]):
        reason = "the plan has started: it can no longer be cancelled, only returned within its window"
        return RollbackResult("blocked", _close(store, proposal_id, ProposalStatus.blocked, reason), reason)

    claim = store.claim_purchase(proposal_id, ACTOR)
    if claim is None:
        return RollbackResult(
            "in_progress", store.get_proposal(proposal_id), f"another run holds this {action}; nothing called here"
        )
    try:
        if action == "return":
            details = undoer.return_plan(plan_id, client_token=proposal_id)
        else:
            details = undoer.delete_queued(plan_id, client_token=proposal_id)
    except Exception as exc:
        store.fail_purchase(claim, ACTOR, f"{type(exc).__name__}: {exc}")
        store.append_audit(
            ACTOR,
            f"rollback.{action}",
            proposal_target(proposal_id),
            "failed",
            {"savings_plan_id": plan_id, "error": str(exc)},
        )
        raise
    # the record holds no ARN, so nothing reading purchases counts it as a plan held
    store.complete_purchase(
        claim,
        ACTOR,
        savings_plan_id=plan_id,
        savings_plan_arn=None,
        hourly_commitment=0.0,
        purchaser=undoer.name,
        details={
            "action": action,
            "savings_plan_arn": proposal.expected.get("savings_plan_arn"),
            "hourly_commitment": proposal.hourly_commitment,
            **details,
        },
    )
    store.append_audit(
        ACTOR,
        f"rollback.{action}",
        proposal_target(proposal_id),
        done_word,
        {"savings_plan_id": plan_id, "undoer": undoer.name, **details},
    )
    proposal = _close(store, proposal_id, ProposalStatus.returned, f"{done_word} {plan_id} via {undoer.name}")
    return RollbackResult(done_word, proposal, f"plan {plan_id} {done_word} ({undoer.name})", plan_id)


def undone_plans(store: StateStore, tenant_id: str) -> set[str]:
    """Ids and ARNs of plans returned or cancelled, which no longer cover anything."""
    out: set[str] = set()
    for p in store.list_proposals(tenant_id, [ProposalStatus.returned]):
        out |= {str(v) for k, v in p.expected.items() if k in ("savings_plan_id", "savings_plan_arn") and v}
    return out
