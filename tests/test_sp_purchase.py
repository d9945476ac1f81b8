"""The purchase path: real boto3 clients with botocore Stubber (every request validated against the AWS API model),
and exactly one CreateSavingsPlan however often or concurrently the purchase runs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber

from blocks_pipelines.savings_plans.proposals import decide
from blocks_pipelines.savings_plans.purchase.aws import AwsPurchaser, PurchaseError, role_session_name
from blocks_pipelines.savings_plans.purchase.execute import execute_purchase, purchaser_for
from blocks_pipelines.savings_plans.purchase.ledger import LedgerPurchaser
from blocks_pipelines.savings_plans.purchase.orders import Receipt
from blocks_pipelines.state import ProposalStatus, PurchaseState, get_state_store
from sp_purchase_helpers import END, approved_proposal, hourly_usage, tenant

OFFERING = "2d2e5dfc-1234-4e1b-9d6a-0123456789ab"
YEAR = 31_536_000


@pytest.fixture
def store(blocks_env):
    return get_state_store()


@pytest.fixture
def clients():
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    sp = boto3.client("savingsplans", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(sts) as sts_stub, Stubber(sp) as sp_stub:
        yield sts, sts_stub, sp, sp_stub
        sts_stub.assert_no_pending_responses()
        sp_stub.assert_no_pending_responses()


def expect_assume(stub, t, proposal_id):
    stub.add_response(
        "assume_role",
        {
            "Credentials": {
                "AccessKeyId": "ASIAEXAMPLEEXAMPLE",
                "SecretAccessKey": "s" * 40,
                "SessionToken": "tok",
                "Expiration": datetime(2030, 1, 1, tzinfo=timezone.utc),
            },
            "AssumedRoleUser": {"AssumedRoleId": "AROAEXAMPLE:blocks", "Arn": f"{t.connection.purchase_role_arn}/s"},
        },
        {
            "RoleArn": t.connection.purchase_role_arn,
            "RoleSessionName": role_session_name(proposal_id),
            "ExternalId": t.connection.external_id,
            "DurationSeconds": 900,
        },
    )


def expect_offerings(stub, payment="No Upfront", term=1):
    wanted = {"planTypes": ["Compute"], "durations": [term * YEAR], "paymentOptions": [payment], "currencies": ["USD"]}
    # a first page with a near miss (wrong currency) proves the filter and the pagination are both honoured
    stub.add_response(
        "describe_savings_plans_offerings",
        {
            "searchResults": [
                {
                    "offeringId": "wrong-currency",
                    "planType": "Compute",
                    "currency": "EUR",
                    "durationSeconds": term * YEAR,
                    "paymentOption": payment,
                }
            ],
            "nextToken": "page2",
        },
        wanted,
    )
    stub.add_response(
        "describe_savings_plans_offerings",
        {
            "searchResults": [
                {
                    "offeringId": OFFERING,
                    "planType": "Compute",
                    "currency": "USD",
                    "durationSeconds": term * YEAR,
                    "paymentOption": payment,
                    "productTypes": ["EC2", "Fargate", "Lambda"],
                }
            ]
        },
        {**wanted, "nextToken": "page2"},
    )


def expect_create(stub, proposal_id, commitment, upfront=None, plan_id="sp-0123456789"):
    params = {
        "savingsPlanOfferingId": OFFERING,
        "commitment": commitment,
        "clientToken": proposal_id,
        "tags": {"blocks:tenant": "acme_corp", "blocks:proposal": proposal_id},
    }
    if upfront:
        params["upfrontPaymentAmount"] = upfront
    stub.add_response("create_savings_plan", {"savingsPlanId": plan_id}, params)


def aws_purchaser(t, store, clients):
    sts, _, sp, _ = clients
    return AwsPurchaser(t, store, sts_client=sts, savingsplans_client_factory=lambda creds: sp)


def test_approved_proposal_is_bought_once_through_the_api(store, clients):
    t, usage = tenant(), hourly_usage()
    p = approved_proposal(store, t, usage, hourly=4.0)
    _, sts_stub, _, sp_stub = clients
    expect_assume(sts_stub, t, p.proposal_id)
    expect_offerings(sp_stub)
    expect_create(sp_stub, p.proposal_id, "4.000")
    buyer = aws_purchaser(t, store, clients)

    first = execute_purchase(store, t, p.proposal_id, buyer, usage, [], now=END)
    assert first.outcome == "purchased" and first.savings_plan_id == "sp-0123456789"
    assert first.proposal.status is ProposalStatus.purchased
    # the sensor firing again, or a retried run: no more API calls are queued, so any call would fail the stub
    again = execute_purchase(store, t, p.proposal_id, buyer, usage, [], now=END)
    assert again.outcome == "already_purchased"
    purchase = store.get_purchase(p.proposal_id)
    assert purchase.savings_plan_arn == "arn:aws:savingsplans::111111111111:savingsplan/sp-0123456789"
    role_events = [e for e in store.list_audit("acme_corp/role/purchase") if e.action == "sts:AssumeRole"]
    assert [(e.result, e.details["proposal_id"]) for e in role_events] == [("ok", p.proposal_id)]


def test_all_upfront_sends_the_upfront_amount(store, clients):
    t = tenant(payment_option="all_upfront")
    usage = hourly_usage()
    p = approved_proposal(store, t, usage, hourly=1.5)
    _, sts_stub, _, sp_stub = clients
    expect_assume(sts_stub, t, p.proposal_id)
    expect_offerings(sp_stub, payment="All Upfront")
    expect_create(sp_stub, p.proposal_id, "1.500", upfront=f"{1.5 * 8760:.2f}")
    assert (
        execute_purchase(store, t, p.proposal_id, aws_purchaser(t, store, clients), usage, [], END).outcome
        == "purchased"
    )


def test_failed_call_is_retried_with_the_same_client_token(store, clients):
    t, usage = tenant(), hourly_usage()
    p = approved_proposal(store, t, usage, hourly=2.0)
    _, sts_stub, _, sp_stub = clients
    expect_assume(sts_stub, t, p.proposal_id)
    expect_offerings(sp_stub)
    sp_stub.add_client_error(
        "create_savings_plan",
        "InternalServerException",
        "try again",
        500,
        expected_params={
            "savingsPlanOfferingId": OFFERING,
            "commitment": "2.000",
            "clientToken": p.proposal_id,
            "tags": {"blocks:tenant": "acme_corp", "blocks:proposal": p.proposal_id},
        },
    )
    buyer = aws_purchaser(t, store, clients)
    with pytest.raises(PurchaseError, match="InternalServerException"):
        execute_purchase(store, t, p.proposal_id, buyer, usage, [], END)
    assert store.get_purchase(p.proposal_id).state is PurchaseState.failed
    assert store.get_proposal(p.proposal_id).status is ProposalStatus.approved  # still buyable by a retry

    expect_assume(sts_stub, t, p.proposal_id)
    expect_offerings(sp_stub)
    expect_create(sp_stub, p.proposal_id, "2.000")
    result = execute_purchase(store, t, p.proposal_id, buyer, usage, [], END)
    assert result.outcome == "purchased" and store.get_purchase(p.proposal_id).attempt == 2


def test_role_assumption_failure_is_audited_and_buys_nothing(store, clients):
    t, usage = tenant(), hourly_usage()
    p = approved_proposal(store, t, usage)
    _, sts_stub, _, _ = clients
    sts_stub.add_client_error("assume_role", "AccessDenied", "not authorized to perform sts:AssumeRole", 403)
    with pytest.raises(PurchaseError, match="trust policy"):
        execute_purchase(store, t, p.proposal_id, aws_purchaser(t, store, clients), usage, [], END)
    [event] = store.list_audit("acme_corp/role/purchase")
    assert event.result == "failed" and "AccessDenied" in event.details["error"]


class CountingPurchaser:
    """Counts buy() calls; the sleep widens the window in which a second buyer could slip through."""

    name = "ledger"

    def __init__(self):
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def buy(self, order):
        with self.lock:
            self.calls.append(order.proposal_id)
        time.sleep(0.05)
        return Receipt(f"sp-{len(self.calls)}", None, END, "ledger")


def test_double_approval_and_concurrent_runs_buy_exactly_once(store):
    t, usage = tenant(), hourly_usage()
    p = approved_proposal(store, t, usage, approve=False)
    first = decide(store, p.proposal_id, "approve", "alice", now=END)
    second = decide(store, p.proposal_id, "approve", "bob", now=END)
    assert first.recorded and not second.recorded and "already decided" in second.message

    buyer = CountingPurchaser()
    barrier = threading.Barrier(6)

    def run(_):
        barrier.wait()
        return execute_purchase(store, t, p.proposal_id, buyer, usage, [], END).outcome

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(run, range(6)))
    assert buyer.calls == [p.proposal_id]
    assert outcomes.count("purchased") == 1
    assert set(outcomes) <= {"purchased", "in_progress", "already_purchased"}


def test_unapproved_or_rejected_proposals_are_never_bought(store):
    t, usage = tenant(), hourly_usage()
    buyer = CountingPurchaser()
    pending = approved_proposal(store, t, usage, approve=False)
    result = execute_purchase(store, t, pending.proposal_id, buyer, usage, [], END)
    assert result.outcome == "not_approved" and "recorded approval" in result.message
    assert store.get_proposal(pending.proposal_id).status is ProposalStatus.pending_approval
    decide(store, pending.proposal_id, "reject", "carol", "too early", now=END)
    result = execute_purchase(store, t, pending.proposal_id, buyer, usage, [], END)
    assert result.outcome == "closed" and "reject by carol: too early" in result.message
    assert buyer.calls == []


def test_ledger_purchaser_records_plan_and_feeds_back(store):
    t, usage = tenant(), hourly_usage()
    p = approved_proposal(store, t, usage, hourly=3.0)
    fed: list[list[dict]] = []
    buyer = LedgerPurchaser(t, store, feedback=lambda tenant_, plans: fed.append(plans) or "fed")
    result = execute_purchase(store, t, p.proposal_id, buyer, usage, [], END)
    assert result.outcome == "purchased"
    [plan] = store.list_ledger_plans("acme_corp")
    assert plan["hourly_commitment"] == 3.0 and plan["proposal_id"] == p.proposal_id
    assert abs(plan["rate_ratio"] - 0.72) < 1e-9
    assert fed == [[plan]]
    assert result.savings_plan_id == plan["savings_plan_id"]


def test_local_settings_never_pick_the_aws_purchaser(store, monkeypatch):
    assert isinstance(purchaser_for(tenant(), store), LedgerPurchaser)
    monkeypatch.setenv("BLOCKS_ENV", "production")
    assert isinstance(purchaser_for(tenant(), store), AwsPurchaser)


def test_cli_lists_and_decides(store):
    from click.testing import CliRunner

    from blocks_pipelines.savings_plans.approval.cli import approve, proposals

    t, usage = tenant(), hourly_usage(end=datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0))
    p = approved_proposal(store, t, usage, approve=False, now=datetime.now(timezone.utc))
    runner = CliRunner()
    listed = runner.invoke(proposals, ["--tenant", "acme_corp"])
    assert listed.exit_code == 0 and f"approve: blocks sp approve {p.proposal_id}" in listed.output
    ok = runner.invoke(approve, [p.proposal_id, "--approver", "alice", "--note", "go"])
    assert ok.exit_code == 0 and "Approved: approve by alice: go" in ok.output
    again = runner.invoke(approve, [p.proposal_id, "--approver", "bob", "--reject"])
    assert again.exit_code == 1 and "already decided: approve by alice" in again.output
    bad = runner.invoke(approve, ["nope", "--approver", "bob"])
    assert bad.exit_code == 1 and "not of the form" in bad.output
