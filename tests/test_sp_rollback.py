"""Rollback playbook: return proposals for oversized plans inside AWS's window, queued-plan cancellation, both through
the approval gate and executed exactly once (botocore Stubber validates ReturnSavingsPlan/DeleteQueuedSavingsPlan)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import boto3
import polars as pl
import pytest
from botocore.stub import Stubber
from pydantic import BaseModel
from test_sp_defs import buys, lake  # noqa: F401
from test_sp_purchase import expect_assume

from blocks_pipelines.savings_plans.lifecycle.rollback import (
    execute_rollback,
    propose_cancel_queued,
    propose_returns,
    return_deadline,
    undone_plans,
)
from blocks_pipelines.savings_plans.proposals import build_proposal, decide, publish_proposal
from blocks_pipelines.savings_plans.purchase.aws import AwsPurchaser
from blocks_pipelines.savings_plans.purchase.execute import execute_purchase
from blocks_pipelines.savings_plans.purchase.orders import Receipt
from blocks_pipelines.state import ProposalStatus, get_state_store
from sp_purchase_helpers import END, hourly_usage, tenant

PLAN_ID = "1b2c3d4e-aaaa-4bbb-8ccc-0123456789ab"
ARN = f"arn:aws:savingsplans::111111111111:savingsplan/{PLAN_ID}"


class BandedRecommendation(BaseModel):
    hourly_commitment: float
    rationale: str = "sized on the last 30 days"
    utilization_pct: dict = {"expected": 96.0, "p10": 90.0, "p50": 96.0, "p90": 99.5}


class FixedPurchaser:
    """Buys by recording a receipt whose plan starts at `start` (a queued plan when that is in the future)."""

    name = "ledger"

    def __init__(self, start: datetime):
        self.start = start

    def buy(self, order):
        return Receipt(PLAN_ID, ARN, self.start, "ledger")


@pytest.fixture
def store(blocks_env):
    return get_state_store()


def bought_plan(store, t, start: datetime = END, hourly: float = 5.0):
    usage = hourly_usage()
    proposal = publish_proposal(
        store, build_proposal(t, usage, BandedRecommendation(hourly_commitment=hourly), [], END)
    )
    decide(store, proposal.proposal_id, "approve", "alice", now=END)
    result = execute_purchase(store, t, proposal.proposal_id, FixedPurchaser(start), usage, [], END)
    assert result.outcome == "purchased"
    return proposal.proposal_id


def position(start: datetime, hours: int, utilization: float, commitment: float = 5.0) -> pl.DataFrame:
    stamps = [start + timedelta(hours=h) for h in range(hours)]
    return pl.DataFrame(
        {
            "usage_hour": stamps,
            "savings_plan_arn": ["TOTAL"] * hours,
            "commitment": [commitment] * hours,
            "used_commitment": [commitment * utilization] * hours,
            "eligible_on_demand_cost": [10.0] * hours,
            "covered_on_demand_cost": [commitment * utilization / 0.72] * hours,
        }
    )


def test_return_window_is_seven_days_within_the_calendar_month():
    utc = timezone.utc
    assert return_deadline(datetime(2026, 11, 20, 9, tzinfo=utc)) == datetime(2026, 11, 27, 9, tzinfo=utc)
    assert return_deadline(datetime(2026, 11, 28, 9, tzinfo=utc)) == datetime(2026, 12, 1, tzinfo=utc)
    assert return_deadline(datetime(2026, 12, 30, tzinfo=utc)) == datetime(2027, 1, 1, tzinfo=utc)


def test_an_oversized_plan_gets_one_return_proposal_while_the_window_is_open(store):
    t = tenant()
    bought_plan(store, t)
    now = END + timedelta(days=2)
    assert propose_returns(store, t, position(END, 48, 0.95), now) == []  # within its band: nothing to undo
    assert propose_returns(store, t, position(END, 12, 0.5), now) == []  # half a day is too little to judge
    [proposal] = propose_returns(store, t, position(END, 48, 0.6), now)
    assert proposal.status is ProposalStatus.pending_approval
    assert proposal.expected["action"] == "return" and proposal.expected["savings_plan_id"] == PLAN_ID
    assert proposal.expires_at == datetime(2026, 11, 27, tzinfo=timezone.utc)
    assert "60.0%, below the 90.0% P10" in proposal.rationale and "until 2026-11-27" in proposal.rationale
    assert propose_returns(store, t, position(END, 60, 0.5), now + timedelta(hours=12)) == []  # one per plan
    globex = tenant("globex")
    bought_plan(store, globex)
    late = END + timedelta(days=7, hours=1)  # the plan is as oversized, but AWS no longer takes it back
    assert propose_returns(store, globex, position(END, 160, 0.5), late) == []
    assert len(propose_returns(store, globex, position(END, 160, 0.5), late - timedelta(hours=2))) == 1


def savingsplans_clients():
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    sp = boto3.client("savingsplans", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    return sts, sp


def expect_state(stub, state: str, returnable_until: datetime | None = None) -> None:
    plan = {
        "savingsPlanId": PLAN_ID,
        "savingsPlanArn": ARN,
        "state": state,
        "commitment": "5.0",
        "savingsPlanType": "Compute",
        "paymentOption": "No Upfront",
    }
    if returnable_until is not None:
        plan["returnableUntil"] = returnable_until.strftime("%Y-%m-%dT%H:%M:%SZ")
    stub.add_response("describe_savings_plans", {"savingsPlans": [plan]}, {"savingsPlanIds": [PLAN_ID]})


def test_aws_refuses_to_call_a_return_it_would_reject(store):
    from blocks_pipelines.savings_plans.purchase.aws import PurchaseError

    t = tenant()
    sts, sp = savingsplans_clients()
    with Stubber(sts) as sts_stub, Stubber(sp) as sp_stub:
        expect_assume(sts_stub, t, "acme_corp.20261122T0000.00000000")
        expect_state(sp_stub, "active", returnable_until=datetime(2026, 11, 27, tzinfo=timezone.utc))  # past
        aws = AwsPurchaser(t, store, sts_client=sts, savingsplans_client_factory=lambda creds: sp)
        with pytest.raises(PurchaseError, match="not returnable"):
            aws.return_plan(PLAN_ID, client_token="acme_corp.20261122T0000.00000000")
        sp_stub.assert_no_pending_responses()  # no ReturnSavingsPlan was sent
    [event] = [e for e in store.list_audit("acme_corp/savingsplan/") if e.action == "savingsplans:ReturnSavingsPlan"]
    assert event.result == "refused" and "returnableUntil 2026-11-27T00:00:00Z" in event.details["error"]


def test_racing_approvals_and_runs_of_a_return_make_one_return_call(store):
    t = tenant()
    bought_plan(store, t)
    now = END + timedelta(days=2)
    [proposal] = propose_returns(store, t, position(END, 48, 0.6), now)
    pid = proposal.proposal_id
    first = decide(store, pid, "approve", "alice", now=now)
    second = decide(store, pid, "approve", "bob", now=now)
    assert first.recorded and not second.recorded

    sts, sp = savingsplans_clients()
    with Stubber(sts) as sts_stub, Stubber(sp) as sp_stub:
        expect_assume(sts_stub, t, pid)
        # exactly one return queued: a second ReturnSavingsPlan (or any CreateSavingsPlan) would fail the test
        expect_state(sp_stub, "active", returnable_until=datetime.now(timezone.utc) + timedelta(days=3))
        sp_stub.add_response(
            "return_savings_plan", {"savingsPlanId": PLAN_ID}, {"savingsPlanId": PLAN_ID, "clientToken": pid}
        )
        aws = AwsPurchaser(t, store, sts_client=sts, savingsplans_client_factory=lambda creds: sp)
        barrier = threading.Barrier(5)

        def run(_):
            barrier.wait()  # the sensor's purchase run, retried and launched twice
            return execute_purchase(store, t, pid, aws, hourly_usage(), [], now).outcome

        with ThreadPoolExecutor(5) as pool:
            outcomes = list(pool.map(run, range(5)))
        sts_stub.assert_no_pending_responses()
        sp_stub.assert_no_pending_responses()
    assert outcomes.count("returned") == 1 and set(outcomes) <= {"returned", "in_progress", "already_done"}
    done = store.get_proposal(pid)
    assert done.status is ProposalStatus.returned and done.status_reason.startswith(f"returned {PLAN_ID}")
    actions = [(e.action, e.result) for e in store.list_audit("acme_corp/")]
    assert ("savingsplans:ReturnSavingsPlan", "ok") in actions and ("rollback.return", "returned") in actions
    assert {PLAN_ID, ARN} <= undone_plans(store, "acme_corp")  # held_commitments stops counting it
    again = execute_rollback(store, t, pid, aws, now)
    assert again.outcome == "already_done"


def test_a_return_after_the_window_or_without_approval_calls_nothing(store):
    t = tenant()
    bought_plan(store, t)
    [proposal] = propose_returns(store, t, position(END, 48, 0.6), END + timedelta(days=2))

    class Refusing:
        name = "refusing"

        def return_plan(self, *a, **k):
            raise AssertionError("no call expected")

        delete_queued = return_plan

    pending = execute_rollback(store, t, proposal.proposal_id, Refusing(), END + timedelta(days=2))
    assert pending.outcome == "not_approved"
    decide(store, proposal.proposal_id, "approve", "alice", now=END + timedelta(days=3))
    late = execute_rollback(store, t, proposal.proposal_id, Refusing(), END + timedelta(days=7, hours=1))
    assert late.outcome == "expired" and late.proposal.status is ProposalStatus.expired
    assert "return window closed" in late.message


def test_a_queued_plan_is_cancelled_once_approved_and_not_after_it_starts(store):
    t = tenant()
    starts = END + timedelta(days=20)
    bought = bought_plan(store, t, start=starts)
    proposal = propose_cancel_queued(store, t, bought, "dana", now=END)
    assert proposal.expected["action"] == "cancel_queued" and proposal.status is ProposalStatus.pending_approval
    assert propose_cancel_queued(store, t, bought, "erin", now=END).proposal_id == proposal.proposal_id
    decide(store, proposal.proposal_id, "approve", "alice", now=END)
    sts, sp = savingsplans_clients()
    with Stubber(sts) as sts_stub, Stubber(sp) as sp_stub:
        expect_assume(sts_stub, t, proposal.proposal_id)
        expect_state(sp_stub, "queued")
        sp_stub.add_response("delete_queued_savings_plan", {}, {"savingsPlanId": PLAN_ID})
        aws = AwsPurchaser(t, store, sts_client=sts, savingsplans_client_factory=lambda creds: sp)
        result = execute_purchase(store, t, proposal.proposal_id, aws, hourly_usage(), [], END)
        assert execute_purchase(store, t, proposal.proposal_id, aws, hourly_usage(), [], END).outcome == "already_done"
        sp_stub.assert_no_pending_responses()
    assert result.outcome == "cancelled"
    assert store.get_proposal(proposal.proposal_id).status is ProposalStatus.returned

    started = bought_plan(store, tenant("globex"), start=END - timedelta(hours=1))
    with pytest.raises(ValueError, match="only a queued plan can be cancelled"):
        propose_cancel_queued(store, tenant("globex"), started, "dana", now=END)


def test_cancel_queued_cli_raises_a_proposal_and_explains_a_refusal(store):
    from click.testing import CliRunner

    from blocks_pipelines.savings_plans.cli import sp

    t = tenant()
    queued = bought_plan(store, t, start=datetime.now(timezone.utc) + timedelta(days=10))
    result = CliRunner().invoke(sp, ["cancel-queued", queued, "--requested-by", "dana"])
    assert result.exit_code == 0, result.output
    pid = result.output.split(":")[0]
    assert store.get_proposal(pid).expected["action"] == "cancel_queued"
    assert f"blocks sp approve {pid}" in result.output
    started = bought_plan(store, tenant("globex"), start=datetime.now(timezone.utc) - timedelta(hours=2))
    refused = CliRunner().invoke(sp, ["cancel-queued", started, "--requested-by", "dana"])
    assert refused.exit_code != 0 and "only a queued plan can be cancelled" in refused.output


def test_dagster_flow_from_an_oversized_purchase_to_its_return(lake, buys):  # noqa: F811
    import dagster as dg
    from test_sp_defs import T, latest_metadata, launch, position_rows, run, tick, write_mart

    from blocks_pipelines.savings_plans import defs as sp_defs

    instance, defs, store = dg.DagsterInstance.ephemeral(), sp_defs.build_sp_defs(tenant()), get_state_store()
    run(defs, instance, ["sp_proposals"])
    pid = latest_metadata(instance, "sp_proposals")["proposal_id"]
    decide(store, pid, "approve", "alice")
    run(
        defs,
        instance,
        ["sp_purchases", "sp_monitoring"],
        {"ops": {f"{T}__sp_purchases": {"config": {"proposal_id": pid}}}},
    )
    [plan] = store.list_ledger_plans(T)
    start = datetime.fromisoformat(plan["start"])
    # the next CUR days: usage fell, half the commitment goes unused
    commitment = 1.44 + plan["hourly_commitment"]
    write_mart("sp_position_hourly", position_rows(start, 48, commitment, commitment / 2, 20.0, 10.0))
    run(defs, instance, ["sp_monitoring"])
    md = latest_metadata(instance, "sp_monitoring")
    [rid] = md["return_proposals"]
    assert store.get_proposal(rid).expected["savings_plan_id"] == plan["savings_plan_id"]

    decide(store, rid, "approve", "bob")
    [request] = tick(defs, instance).run_requests
    assert request.run_key == rid
    launch(defs, instance, request)
    launch(defs, instance, request)  # a retried run returns nothing twice
    assert buys == [pid]  # the return went through the purchase run without buying anything
    assert store.get_proposal(rid).status is ProposalStatus.returned
    returns = [e for e in store.list_audit(f"{T}/proposal/{rid}") if e.action == "ledger.return_plan"]
    assert len(returns) == 1
    run(defs, instance, ["sp_monitoring"])
    assert latest_metadata(instance, "sp_monitoring")["status"] == "nothing purchased yet"
