"""Each guardrail blocks on its own, with a reason that says what was found and what to do; nothing is bought."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from test_sp_purchase import CountingPurchaser

from blocks_pipelines.savings_plans.proposals import Commitment
from blocks_pipelines.savings_plans.purchase.execute import execute_purchase
from blocks_pipelines.savings_plans.purchase.guardrails import check_anomaly, check_cap, complete_daily_spend
from blocks_pipelines.state import ProposalStatus, get_state_store
from sp_purchase_helpers import END, approved_proposal, hourly_usage, tenant


@pytest.fixture
def store(blocks_env):
    return get_state_store()


def test_cap_counts_existing_plus_new():
    assert check_cap(30.0, 10.0, 40.0).passed
    blocked = check_cap(30.0, 10.5, 40.0)
    assert not blocked.passed and "$40.500/h exceeds" in blocked.reason and "max_hourly_commitment" in blocked.reason


@pytest.mark.parametrize(("factor", "kind"), [(1.8, "spike"), (0.3, "drop")])
def test_anomaly_names_the_day_and_direction(factor, kind):
    check = check_anomaly(hourly_usage(recent_factor=factor, recent_days=2), threshold=0.5)
    assert not check.passed
    assert f"spend {kind} on {(END - timedelta(days=2)).date()}" in check.reason  # first day of the change
    assert "anomaly_threshold=50%" in check.reason


def test_steady_spend_and_moderate_change_pass_the_anomaly_gate():
    assert check_anomaly(hourly_usage(), 0.5).passed
    assert check_anomaly(hourly_usage(recent_factor=1.3, recent_days=3), 0.5).passed


def test_a_half_delivered_last_day_is_not_a_drop():
    usage = hourly_usage(end=END + timedelta(hours=5))  # 5 hours of today only
    assert complete_daily_spend(usage)["day"].max() == (END - timedelta(days=1)).date()
    assert check_anomaly(usage, 0.5).passed


def test_too_little_history_blocks():
    check = check_anomaly(hourly_usage(days=6), 0.5)
    assert not check.passed and "wait for more CUR history" in check.reason


def test_cap_blocks_the_purchase(store):
    t, usage = tenant(max_hourly_commitment=10.0), hourly_usage()
    p = approved_proposal(store, t, usage, hourly=4.0)
    held = [Commitment(7.0, END + timedelta(days=100), "arn:aws:savingsplans::111111111111:savingsplan/x")]
    buyer = CountingPurchaser()
    result = execute_purchase(store, t, p.proposal_id, buyer, usage, held, END)
    assert result.outcome == "blocked" and buyer.calls == []
    proposal = store.get_proposal(p.proposal_id)
    assert proposal.status is ProposalStatus.blocked
    assert proposal.status_reason.startswith("cap: existing $7.000/h + new $4.000/h = $11.000/h exceeds")


def test_anomaly_blocks_the_purchase(store):
    t, usage = tenant(), hourly_usage()
    p = approved_proposal(store, t, usage)
    spiked = usage.vstack(hourly_usage(days=2, end=END + timedelta(days=2), per_hour=30.0))
    buyer = CountingPurchaser()
    result = execute_purchase(store, t, p.proposal_id, buyer, spiked, [], END)
    assert result.outcome == "blocked" and buyer.calls == []
    assert "anomaly: eligible spend spike" in store.get_proposal(p.proposal_id).status_reason


def test_restated_data_makes_the_proposal_stale(store):
    t, usage = tenant(), hourly_usage()
    p = approved_proposal(store, t, usage)
    restated = usage.with_columns(
        pl.when(pl.col("ts_hour") == pl.col("ts_hour").min() + timedelta(days=3))
        .then(pl.col("eligible_on_demand_cost") + 0.5)
        .otherwise(pl.col("eligible_on_demand_cost"))
        .alias("eligible_on_demand_cost")
    )
    buyer = CountingPurchaser()
    result = execute_purchase(store, t, p.proposal_id, buyer, restated, [], END)
    assert result.outcome == "blocked" and buyer.calls == []
    assert [c.name for c in result.checks if not c.passed] == ["staleness"]
    assert "analyze again" in store.get_proposal(p.proposal_id).status_reason


def test_new_hours_after_the_window_do_not_make_it_stale(store):
    t, usage = tenant(), hourly_usage()
    p = approved_proposal(store, t, usage)
    more = usage.vstack(hourly_usage(days=1, end=END + timedelta(days=1)))
    assert execute_purchase(store, t, p.proposal_id, CountingPurchaser(), more, [], END).outcome == "purchased"


def test_expired_proposal_is_expired_not_bought(store):
    t, usage = tenant(proposal_ttl_hours=1), hourly_usage()
    p = approved_proposal(store, t, usage)
    buyer = CountingPurchaser()
    result = execute_purchase(store, t, p.proposal_id, buyer, usage, [], END + timedelta(hours=2))
    assert result.outcome == "expired" and buyer.calls == []
    assert store.get_proposal(p.proposal_id).status is ProposalStatus.expired
