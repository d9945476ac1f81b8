"""Expiry and renewal: plans ending soon are listed with every analysis, and each plan ending before the next
monthly review gets a replacement proposal queued to start the hour it ends, so coverage does not drop that day.

Why queued rather than bought now: a replacement bought today double-covers the weeks until the old plan ends
(paid twice for the same usage), and one bought at the next review leaves the days between expiry and review
on-demand. CreateSavingsPlan's purchaseTime queues the new plan to start exactly at the old plan's end.

Sizing: the analyzer decides as of the expiry (`recommend(start_at=end)`): over the replacement's own term and
review window, counting every other plan held then and the replacements already decided for earlier expiries.
So it renews what the forecast still justifies, which can be less than the expiring plan (usage fell) or more.
Plans ending later than the review (30-60 days) are listed only: the next review, closer to the date and with a
month more data, proposes theirs. Only plans whose end is known (bought by Blocks, start and term recorded) are
renewed; a plan seen only in the CUR is listed with its assumed end, since it could be a 3-year plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from blocks_pipelines.savings_plans.proposals import Commitment, build_proposal
from blocks_pipelines.state.records import Proposal, ProposalStatus
from blocks_pipelines.state.store import StateStore, proposal_target
from blocks_pipelines.tenants.config import TenantConfig

EXPIRY_HORIZONS_DAYS = (30, 60)
RENEW_WITHIN_DAYS = 30  # the ladder's review interval: later expiries are renewed at a later review
ACTOR = "sp_renewal"
MIN_COMMITMENT = 0.001
# a renewal is open (not to be proposed again) from publication until its plan is bought and watched
OPEN = (ProposalStatus.pending_approval, ProposalStatus.approved, ProposalStatus.purchased, ProposalStatus.monitoring)


@dataclass(frozen=True)
class ExpiringPlan:
    arn: str
    hourly_commitment: float
    end: datetime
    days_left: float
    within_days: int  # the first horizon (30 or 60) it falls in
    end_known: bool  # bought by Blocks (start and term recorded); else first seen in the CUR + the shortest term

    def as_metadata(self) -> dict[str, Any]:
        return {
            "savings_plan_arn": self.arn,
            "hourly_commitment": self.hourly_commitment,
            "ends_at": self.end.isoformat(),
            "days_left": round(self.days_left, 1),
            "within_days": self.within_days,
            "end_known": self.end_known,
        }


def expiring_plans(
    held: list[Commitment], now: datetime, horizons: tuple[int, ...] = EXPIRY_HORIZONS_DAYS
) -> list[ExpiringPlan]:
    out = []
    for c in sorted(held, key=lambda c: c.end):
        if c.start is not None and c.start > now:
            continue  # a queued plan is the replacement, not something expiring
        days = (c.end - now).total_seconds() / 86400.0
        within = next((h for h in horizons if 0 < days <= h), None)
        if within is not None:
            out.append(ExpiringPlan(c.arn, c.hourly, c.end, days, within, c.start is not None))
    return out


def _renewal_of(p: Proposal) -> str | None:
    return p.expected.get("renews") if p.expected.get("action") == "renew" else None


def open_renewals(store: StateStore, tenant_id: str) -> dict[str, Proposal]:
    """Expiring plan ARN -> its renewal proposal still in play."""
    return {arn: p for p in store.list_proposals(tenant_id, OPEN) if (arn := _renewal_of(p))}


def propose_renewals(
    store: StateStore,
    tenant: TenantConfig,
    usage: pl.DataFrame,
    held: list[Commitment],
    now: datetime,
    analyze: Callable[..., Any],
    **analyzer_kwargs: Any,
) -> list[Proposal]:
    """One queued replacement proposal per plan ending within RENEW_WITHIN_DAYS (none twice for the same plan)."""
    g = tenant.guardrails
    already = open_renewals(store, tenant.id)
    existing: list[tuple] = [c.as_existing() for c in held]
    created = []
    for plan in expiring_plans(held, now):
        if plan.days_left > RENEW_WITHIN_DAYS:
            continue
        if not plan.end_known:
            # a plan seen only in the CUR may be a 3-year plan: renewing it at its assumed end would double-cover
            # for years. It is listed (end_known false) for someone to confirm its end in the console.
            continue
        if plan.arn in already:
            prior = already[plan.arn]
            if prior.hourly_commitment > 0:  # counted as held from the expiry by the next decisions
                start = datetime.fromisoformat(prior.expected["starts_at"])
                existing.append((prior.hourly_commitment, start + timedelta(days=365 * prior.term_years), start))
            continue
        rec = analyze(
            usage,
            existing_commitments=existing,
            term_years=g.term_years,
            payment_option=g.payment_option,
            max_hourly_commitment=g.max_hourly_commitment,
            start_at=plan.end,
            **analyzer_kwargs,
        )
        hourly = float(rec.hourly_commitment)
        if hourly < MIN_COMMITMENT:
            store.append_audit(
                ACTOR,
                "renewal.not_needed",
                f"{tenant.id}/savingsplan/{plan.arn}",
                "skipped",
                {"ends_at": plan.end.isoformat(), "rationale": rec.rationale},
            )
            continue
        proposal = build_proposal(tenant, usage, rec, held, now)
        digest = hashlib.sha256(f"renew|{plan.arn}|{now.isoformat()}".encode()).hexdigest()[:8]
        proposal = proposal.model_copy(
            update={
                "proposal_id": f"{tenant.id}.{now:%Y%m%dT%H%M}.{digest}",
                "expected": {
                    **proposal.expected,
                    "action": "renew",
                    "renews": plan.arn,
                    "renews_hourly_commitment": plan.hourly_commitment,
                    "starts_at": plan.end.isoformat(),
                },
                "rationale": (
                    f"Renewal of ${plan.hourly_commitment:,.3f}/h ending {plan.end:%Y-%m-%d %H:%M} UTC "
                    f"({plan.days_left:.0f} days): a ${hourly:,.3f}/h plan queued to start that hour, so "
                    f"coverage does not drop on the expiry day. {proposal.rationale}"
                ),
                # the queued purchase must be placed before the old plan ends
                "expires_at": min(proposal.expires_at, plan.end),
            }
        )
        store.create_proposal(proposal, actor=ACTOR)
        created.append(store.transition_proposal(proposal.proposal_id, ProposalStatus.pending_approval, ACTOR))
        store.append_audit(
            ACTOR,
            "renewal.propose",
            proposal_target(proposal.proposal_id),
            "pending",
            {"renews": plan.arn, "hourly_commitment": hourly, "starts_at": plan.end.isoformat()},
        )
        existing.append((hourly, plan.end + timedelta(days=365 * g.term_years), plan.end))
    return created


def queued_renewals(store: StateStore, tenant_id: str, now: datetime) -> list[tuple[float, datetime, datetime]]:
    """Renewals approved but not bought yet, as the analyzer's queued plans: the ladder must not buy their share
    again between the approval and the purchase."""
    out = []
    for p in store.list_proposals(tenant_id, [ProposalStatus.pending_approval, ProposalStatus.approved]):
        if _renewal_of(p) and p.hourly_commitment > 0:
            start = datetime.fromisoformat(p.expected["starts_at"])
            if start > now:
                out.append((p.hourly_commitment, start + timedelta(days=365 * p.term_years), start))
    return out


def lifecycle_step(
    store: StateStore,
    tenant: TenantConfig,
    usage: pl.DataFrame,
    held: list[Commitment],
    now: datetime,
    analyze: Callable[..., Any],
    **analyzer_kwargs: Any,
) -> tuple[list[tuple], dict[str, Any]]:
    """Before the ladder decides: renewals proposed for plans ending soon. Returns the ladder's existing
    commitments (held plans with their starts, plus renewals in play from their start) and the metadata that
    lists expiring plans and the renewal proposals."""
    renewals = propose_renewals(store, tenant, usage, held, now, analyze, **analyzer_kwargs)
    existing = [c.as_existing() for c in held] + queued_renewals(store, tenant.id, now)
    in_play = open_renewals(store, tenant.id)
    expiring = [
        {**e.as_metadata(), "renewal_proposal": in_play[e.arn].proposal_id if e.arn in in_play else None}
        for e in expiring_plans(held, now)
    ]
    return existing, {"expiring_plans": expiring, "renewal_proposals": [r.proposal_id for r in renewals]}
