"""Expiry and renewal: plans ending in 30/60 days are listed, a plan ending before the next review gets a replacement
queued to start the hour it ends (CreateSavingsPlan purchaseTime, Stubber-validated), and the ladder counts it."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from test_sp_purchase import OFFERING, aws_purchaser, clients, expect_assume, expect_offerings  # noqa: F401

from blocks_pipelines.savings_plans.analysis.analyzer import recommend
from blocks_pipelines.savings_plans.lifecycle.renewal import expiring_plans, lifecycle_step, propose_renewals
from blocks_pipelines.savings_plans.proposals import Commitment, decide, existing_commitments
from blocks_pipelines.savings_plans.purchase.execute import execute_purchase
from blocks_pipelines.state import ProposalStatus, get_state_store
from sp_purchase_helpers import tenant

NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)


@pytest.fixture
def store(blocks_env):
    return get_state_store()


def usage(days: int = 120, level: float = 100.0) -> pl.DataFrame:
    rng = random.Random(1)
    n = days * 24
    start = NOW - timedelta(hours=n)
    return pl.DataFrame(
        {
            "ts_hour": [start + timedelta(hours=i) for i in range(n)],
            "eligible_on_demand_cost": [
                level * (1 + 0.2 * math.sin(2 * math.pi * i / 24)) * math.exp(rng.gauss(0, 0.05)) for i in range(n)
            ],
            "sp_rate_ratio": [0.72] * n,
        }
    )


def test_plans_ending_within_30_or_60_days_are_listed():
    bought = NOW - timedelta(days=353)
    held = [
        Commitment(10.0, NOW + timedelta(days=12), "a", start=bought),
        Commitment(5.0, NOW + timedelta(days=45), "b"),
        Commitment(7.0, NOW + timedelta(days=200), "c"),
        Commitment(3.0, NOW + timedelta(days=380), "queued", start=NOW + timedelta(days=15)),
    ]
    assert [(e.arn, e.within_days, round(e.days_left), e.end_known) for e in expiring_plans(held, NOW)] == [
        ("a", 30, 12, True),
        ("b", 60, 45, False),
    ]


def test_a_queued_replacement_counts_from_its_start_only():
    df = usage()
    ends = NOW + timedelta(days=10)
    lasting = recommend(df, existing_commitments=[(40.0, NOW + timedelta(days=400))]).hourly_commitment
    expiring = recommend(df, existing_commitments=[(40.0, ends)]).hourly_commitment
    renewed = recommend(df, existing_commitments=[(40.0, ends), (40.0, ends + timedelta(days=365), ends)])
    assert renewed.hourly_commitment == pytest.approx(lasting, abs=0.05 * lasting + 0.01)
    assert renewed.hourly_commitment < expiring
    assert renewed.existing_hourly_commitment == 40.0  # the queued plan is not held yet


def test_the_replacement_is_sized_as_of_the_expiry():
    df = usage()
    ends = NOW + timedelta(days=20)
    fresh = recommend(df).hourly_commitment  # what the portfolio needs with nothing held
    replacement = recommend(df, existing_commitments=[(fresh, ends)], start_at=ends)
    assert replacement.hourly_commitment == pytest.approx(fresh, rel=0.06)
    # bought today instead, the same plan would double-cover the 20 days left: the analyzer sizes it smaller
    assert recommend(df, existing_commitments=[(fresh, ends)]).hourly_commitment < replacement.hourly_commitment


def test_renewals_are_proposed_once_queued_at_the_expiry_and_bought_with_purchase_time(store, clients):  # noqa: F811
    t, df = tenant(), usage()
    soon, later = NOW + timedelta(days=20, hours=5), NOW + timedelta(days=45)
    held = [
        Commitment(30.0, soon, "arn:soon", start=soon - timedelta(days=365)),
        Commitment(5.0, later, "arn:later", start=later - timedelta(days=365)),
        Commitment(4.0, NOW + timedelta(days=9), "arn:cur-only"),
    ]  # end assumed: listed, never renewed
    existing, meta = lifecycle_step(store, t, df, held, NOW, recommend)
    [proposal] = [store.get_proposal(pid) for pid in meta["renewal_proposals"]]
    assert proposal.status is ProposalStatus.pending_approval
    assert proposal.expected["action"] == "renew" and proposal.expected["renews"] == "arn:soon"
    assert proposal.expected["starts_at"] == soon.isoformat() and proposal.expires_at <= soon
    assert "coverage does not drop on the expiry day" in proposal.rationale
    assert [(e["savings_plan_arn"], e["within_days"], e["renewal_proposal"]) for e in meta["expiring_plans"]] == [
        ("arn:cur-only", 30, None),
        ("arn:soon", 30, proposal.proposal_id),
        ("arn:later", 60, None),
    ]
    # the ladder sees the replacement as held from the expiry
    assert (proposal.hourly_commitment, soon + timedelta(days=365), soon) in existing
    assert propose_renewals(store, t, df, held, NOW + timedelta(days=1), recommend) == []  # once per plan
    # a new ladder analysis does not supersede the pending renewal
    assert store.get_proposal(proposal.proposal_id).status is ProposalStatus.pending_approval

    decide(store, proposal.proposal_id, "approve", "alice", now=NOW)
    _, sts_stub, _, sp_stub = clients
    expect_assume(sts_stub, t, proposal.proposal_id)
    expect_offerings(sp_stub)
    commitment = f"{proposal.hourly_commitment:.3f}"
    sp_stub.add_response(
        "create_savings_plan",
        {"savingsPlanId": "sp-renewal"},
        {
            "savingsPlanOfferingId": OFFERING,
            "commitment": commitment,
            "clientToken": proposal.proposal_id,
            "tags": {"blocks:tenant": "acme_corp", "blocks:proposal": proposal.proposal_id},
            "purchaseTime": soon,
        },
    )
    # the plan it renews is still held at purchase time: the cap is judged at the start, when it has ended
    result = execute_purchase(store, t, proposal.proposal_id, aws_purchaser(t, store, clients), df, held, NOW)
    assert result.outcome == "purchased", result.message
    plans = existing_commitments(None, store.list_purchases("acme_corp"), NOW)
    [queued] = [c for c in plans if c.arn.endswith("sp-renewal")]
    assert queued.start == soon  # cover continues from the hour the old plan ends

    def cover_at(at: datetime) -> float:
        return sum(c.hourly for c in held + plans if (c.start or NOW) <= at < c.end)

    # the hour after the expiry, the replacement has taken the expired plan's place
    assert cover_at(soon + timedelta(hours=1)) == pytest.approx(
        cover_at(soon - timedelta(hours=1)) - 30.0 + queued.hourly
    )
    assert cover_at(soon + timedelta(hours=1)) == pytest.approx(5.0 + queued.hourly)
