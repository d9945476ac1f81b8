"""Buying an approved proposal, safely: guardrails first, then a claim in the state store, then exactly one call
to the purchaser, then Purchased. Safe to run twice, to retry, and to run concurrently for the same proposal."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import polars as pl

from blocks_pipelines.savings_plans.lifecycle.rollback import execute_rollback, is_rollback
from blocks_pipelines.savings_plans.proposals import DEFAULT_RATE_RATIO, Commitment, data_fingerprint
from blocks_pipelines.savings_plans.purchase.guardrails import (
    Check,
    blocking,
    check_anomaly,
    check_approval,
    check_cap,
    check_expiry,
    check_fresh,
)
from blocks_pipelines.savings_plans.purchase.orders import PurchaseOrder, Purchaser
from blocks_pipelines.settings import Settings
from blocks_pipelines.state.records import TERMINAL, IllegalTransitionError, Proposal, ProposalStatus, utcnow
from blocks_pipelines.state.store import StateStore, proposal_target
from blocks_pipelines.tenants.config import TenantConfig

ACTOR = "sp_purchases"
Outcome = Literal[
    "purchased",
    "already_purchased",
    "in_progress",
    "blocked",
    "expired",
    "not_approved",
    "closed",
    "returned",
    "cancelled",
    "already_done",
]


@dataclass(frozen=True)
class PurchaseResult:
    outcome: Outcome
    proposal: Proposal
    message: str
    checks: list[Check] = field(default_factory=list)
    savings_plan_id: str | None = None


def purchaser_for(tenant: TenantConfig, store: StateStore, settings: Settings | None = None) -> Purchaser:
    """Production buys through AWS; anything else records in the ledger, so a laptop can never spend money. The
    environment's purchaser resource decides (what Dagster's sp_purchases is given), so the CLI and Dagster agree."""
    from blocks_pipelines.resources import platform_resources

    return platform_resources(settings)["purchaser"].for_tenant(tenant, store)


def run_guardrails(
    tenant: TenantConfig,
    proposal: Proposal,
    store: StateStore,
    usage: pl.DataFrame,
    existing: list[Commitment],
    now: datetime,
) -> list[Check]:
    starts_at = proposal.expected.get("starts_at")
    # a queued renewal joins the plans held when it starts: the one it renews has ended by then
    at = datetime.fromisoformat(starts_at) if starts_at else now
    held = sum(c.hourly for c in existing if c.end > at)
    return [
        check_approval(proposal, store.get_decision(proposal.proposal_id)),
        check_expiry(proposal, now),
        check_cap(held, proposal.hourly_commitment, tenant.guardrails.max_hourly_commitment),
        check_anomaly(usage, tenant.guardrails.anomaly_threshold),
        check_fresh(proposal, data_fingerprint(usage, proposal.window_start, proposal.window_end)),
    ]


def _advance_to_purchased(store: StateStore, proposal_id: str, reason: str) -> Proposal:
    try:
        return store.transition_proposal(proposal_id, ProposalStatus.purchased, ACTOR, reason=reason)
    except IllegalTransitionError:  # another run got there first
        return store.get_proposal(proposal_id)


def execute_purchase(
    store: StateStore,
    tenant: TenantConfig,
    proposal_id: str,
    purchaser: Purchaser,
    usage: pl.DataFrame,
    existing: list[Commitment],
    now: datetime | None = None,
) -> PurchaseResult:
    """Buy `proposal_id` once. `usage` is the current eligible usage (analyzer format) and `existing` the plans held
    now; both are re-read by the caller at purchase time so staleness, anomaly and cap see today's data."""
    now = now or utcnow()
    proposal = store.get_proposal(proposal_id)
    if is_rollback(proposal):  # approved through the same gate and launched by the same sensor, but undoes a plan
        r = execute_rollback(store, tenant, proposal_id, purchaser, now)  # type: ignore[arg-type]
        return PurchaseResult(r.outcome, r.proposal, r.message, savings_plan_id=r.savings_plan_id)
    done = store.get_purchase(proposal_id)
    if done is not None and done.state.value == "completed":
        # a retry after a crash between the purchase and the status change finishes the bookkeeping only
        if proposal.status is ProposalStatus.approved:
            proposal = _advance_to_purchased(store, proposal_id, f"savings plan {done.savings_plan_id}")
        return PurchaseResult(
            "already_purchased",
            proposal,
            f"already purchased as {done.savings_plan_id}",
            savings_plan_id=done.savings_plan_id,
        )
    if proposal.status in TERMINAL or proposal.status in (ProposalStatus.purchased, ProposalStatus.monitoring):
        return PurchaseResult(
            "closed", proposal, f"proposal is {proposal.status.value}: {proposal.status_reason or 'nothing to buy'}"
        )
    if proposal.status is not ProposalStatus.approved:
        # not Blocked: launching a purchase by hand must not be a way to kill a proposal awaiting its decision
        store.append_audit(
            ACTOR, "purchase.refused", proposal_target(proposal_id), "not_approved", {"status": proposal.status.value}
        )
        return PurchaseResult(
            "not_approved",
            proposal,
            f"proposal is {proposal.status.value}; no purchase without "
            f"a recorded approval (`blocks sp approve {proposal_id} --approver NAME`)",
        )

    checks = run_guardrails(tenant, proposal, store, usage, existing, now)
    failed = blocking(checks)
    store.append_audit(
        ACTOR,
        "purchase.guardrails",
        proposal_target(proposal_id),
        "blocked" if failed else "passed",
        {c.name: {"passed": c.passed, "reason": c.reason} for c in checks},
    )
    if failed:
        expired = [c for c in failed if c.name == "expiry"]
        status = ProposalStatus.expired if expired else ProposalStatus.blocked
        reason = "; ".join(f"{c.name}: {c.reason}" for c in failed)
        try:
            proposal = store.transition_proposal(proposal_id, status, ACTOR, reason=reason)
        except IllegalTransitionError:
            proposal = store.get_proposal(proposal_id)
        return PurchaseResult("expired" if expired else "blocked", proposal, reason, checks)

    claim = store.claim_purchase(proposal_id, ACTOR)
    if claim is None:
        current = store.get_purchase(proposal_id)
        return PurchaseResult(
            "in_progress",
            store.get_proposal(proposal_id),
            f"another run holds the purchase ({current.state.value if current else '?'}); nothing bought here",
            checks,
        )
    # the rate the analyzer priced the new plan at; the observed mean when the analysis did not say
    rate = float(proposal.expected.get("sp_rate_ratio") or usage["sp_rate_ratio"].mean() or DEFAULT_RATE_RATIO)
    starts_at = proposal.expected.get("starts_at")
    order = PurchaseOrder(
        proposal_id=proposal_id,
        tenant_id=tenant.id,
        hourly_commitment=proposal.hourly_commitment,
        term_years=proposal.term_years,
        payment_option=proposal.payment_option,
        rate_ratio=rate,
        purchase_time=datetime.fromisoformat(starts_at) if starts_at else None,
    )
    try:
        receipt = purchaser.buy(order)
    except Exception as exc:
        store.fail_purchase(claim, ACTOR, f"{type(exc).__name__}: {exc}")
        raise
    store.complete_purchase(
        claim,
        ACTOR,
        savings_plan_id=receipt.savings_plan_id,
        savings_plan_arn=receipt.savings_plan_arn,
        hourly_commitment=proposal.hourly_commitment,
        purchaser=receipt.purchaser,
        details={**receipt.details, "start": receipt.start.isoformat(), "term_years": proposal.term_years},
    )
    proposal = _advance_to_purchased(store, proposal_id, f"{receipt.purchaser} savings plan {receipt.savings_plan_id}")
    return PurchaseResult(
        "purchased",
        proposal,
        f"bought ${proposal.hourly_commitment:.3f}/h as {receipt.savings_plan_id} ({receipt.purchaser})",
        checks,
        receipt.savings_plan_id,
    )
