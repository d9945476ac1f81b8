"""One contract for both state stores: SQLite (local) and DynamoDB (moto server). Same calls, same answers."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from blocks_pipelines.settings import get_settings
from blocks_pipelines.state import (
    Approval,
    ConflictError,
    IllegalTransitionError,
    NotFoundError,
    Proposal,
    ProposalStatus,
    PurchaseState,
    get_state_store,
)
from blocks_pipelines.state.records import utcnow

S = ProposalStatus


@pytest.fixture
def store(store_on_each_backend):
    return store_on_each_backend  # the same contract on SQLite and on DynamoDB (moto)


def make_proposal(tenant="acme_corp", n=0, ttl_hours=72, commitment=5.0) -> Proposal:
    now = utcnow()
    return Proposal(
        proposal_id=f"{tenant}.20260915T10{n:02d}.{uuid.uuid4().hex[:8]}",
        tenant_id=tenant,
        hourly_commitment=commitment,
        data_fingerprint="abc123",
        created_at=now,
        expires_at=now + timedelta(hours=ttl_hours),
    )


def run_threads(fn, n=8):
    barrier = threading.Barrier(n)

    def go(i):
        barrier.wait()
        try:
            return ("ok", fn(i))
        except Exception as exc:  # noqa: BLE001 - the test counts outcomes of racing calls
            return ("err", exc)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, range(n)))


def test_backend_follows_settings(store):
    expected = "DynamoBackend" if get_settings().state_backend == "dynamodb" else "SqliteBackend"
    assert type(store.backend).__name__ == expected


def test_audit_is_appended_and_filtered_by_target_prefix(store):
    store.append_audit("alice", "sts:AssumeRole", "acme_corp/role/purchase", "ok", {"external_id_used": True})
    store.append_audit("bob", "recommendation.view", "globex/recommendation/r1", "ok", {})
    store.append_audit("alice", "sts:AssumeRole", "acme_corp/role/purchase", "denied", {"error": "AccessDenied"})

    acme = store.list_audit("acme_corp/")
    assert [(e.actor, e.result) for e in acme] == [("alice", "ok"), ("alice", "denied")]
    assert acme[1].details == {"error": "AccessDenied"}
    assert acme[0].at <= acme[1].at
    assert len(store.list_audit()) == 3


def test_recommendation_status_is_validated_and_audited(store):
    store.set_recommendation_status("acme_corp", "rec1", "dismissed", "alice")
    store.set_recommendation_status("acme_corp", "rec1", "done", "bob")
    store.set_recommendation_status("acme_corp", "rec2", "snoozed", "bob")
    store.set_recommendation_status("globex", "rec9", "accepted", "carol")
    assert store.get_recommendation_statuses("acme_corp") == {"rec1": "done", "rec2": "snoozed"}
    with pytest.raises(ValueError, match="'archived' is not one of open, accepted"):
        store.set_recommendation_status("acme_corp", "rec1", "archived", "alice")
    assert [e.details["status"] for e in store.list_audit("acme_corp/recommendation/rec1")] == ["dismissed", "done"]


def test_recommendation_status_compare_and_swap_has_one_winner(store):
    # a first write expects no stored status (the mart's default applied when the user read it)
    store.set_recommendation_status("acme_corp", "rec1", "accepted", "alice", expected=None)
    with pytest.raises(ConflictError, match="stored status 'accepted', expected None"):
        store.set_recommendation_status("acme_corp", "rec1", "dismissed", "bob", expected=None)
    store.set_recommendation_status("acme_corp", "rec1", "done", "bob", expected="accepted")
    with pytest.raises(ConflictError):
        store.set_recommendation_status("acme_corp", "rec1", "open", "carol", expected="accepted")

    # eight writers that all read "done" race: exactly one write lands, and only it is audited
    statuses = ["open", "accepted", "dismissed", "snoozed"] * 2
    results = run_threads(
        lambda i: store.set_recommendation_status("acme_corp", "rec1", statuses[i], f"user{i}", expected="done")
    )
    winners = [i for i, (kind, _) in enumerate(results) if kind == "ok"]
    assert len(winners) == 1
    assert all(isinstance(r, ConflictError) for kind, r in results if kind == "err")
    assert store.get_recommendation_statuses("acme_corp") == {"rec1": statuses[winners[0]]}
    audited = [(e.actor, e.details["status"]) for e in store.list_audit("acme_corp/recommendation/rec1")]
    assert audited == [("alice", "accepted"), ("bob", "done"), (f"user{winners[0]}", statuses[winners[0]])]


def test_connections_round_trip(store):
    assert store.get_connection("acme_corp") is None
    conn = {"role_arn": "arn:aws:iam::111111111111:role/R", "external_id": "x" * 16, "status": "connected"}
    store.put_connection("acme_corp", conn, actor="onboarding")
    store.put_connection("acme_corp", {**conn, "status": "failed"}, actor="probe")
    assert store.get_connection("acme_corp")["status"] == "failed"
    assert store.get_connection("globex") is None


def test_proposal_lifecycle_and_illegal_transitions(store):
    p = store.create_proposal(make_proposal(), actor="analyzer")
    with pytest.raises(ConflictError):
        store.create_proposal(p.model_copy(update={"history": []}), actor="analyzer")
    with pytest.raises(IllegalTransitionError, match="cannot move from Analyzing to Purchased"):
        store.transition_proposal(p.proposal_id, S.purchased, "x")
    for status in (S.pending_approval, S.approved, S.purchased, S.monitoring):
        store.transition_proposal(p.proposal_id, status, "flow")
    got = store.get_proposal(p.proposal_id)
    assert got.status is S.monitoring
    assert [h.status for h in got.history] == [S.analyzing, S.pending_approval, S.approved, S.purchased, S.monitoring]
    with pytest.raises(IllegalTransitionError, match="terminal"):
        store.transition_proposal(p.proposal_id, S.blocked, "x")
    refused = [e for e in store.list_audit(f"acme_corp/proposal/{p.proposal_id}") if e.result == "refused"]
    assert len(refused) == 2


def test_rejected_blocked_expired_carry_reasons(store):
    ids = []
    for n, status in enumerate((S.rejected, S.expired, S.blocked)):
        p = store.create_proposal(make_proposal(n=n), actor="analyzer")
        store.transition_proposal(p.proposal_id, S.pending_approval, "analyzer")
        store.transition_proposal(p.proposal_id, status, "flow", reason=f"because {status.value}")
        ids.append(p.proposal_id)
    got = {store.get_proposal(i).status: store.get_proposal(i).status_reason for i in ids}
    assert got == {S.rejected: "because Rejected", S.expired: "because Expired", S.blocked: "because Blocked"}
    assert [p.proposal_id for p in store.list_proposals("acme_corp", [S.expired])] == [ids[1]]
    assert len(store.list_proposals("acme_corp")) == 3 and store.list_proposals("globex") == []


def test_unknown_proposal_and_malformed_id(store):
    with pytest.raises(NotFoundError, match="not found"):
        store.get_proposal("acme_corp.20260101T0000.deadbeef")
    with pytest.raises(ValueError, match="not of the form"):
        store.get_proposal("no-such-id")


def test_racing_transitions_have_one_winner(store):
    p = store.create_proposal(make_proposal(), actor="analyzer")
    store.transition_proposal(p.proposal_id, S.pending_approval, "analyzer")
    outcomes = run_threads(lambda i: store.transition_proposal(p.proposal_id, S.approved, f"approver{i}"))
    assert sum(o == "ok" for o, _ in outcomes) == 1
    assert all(isinstance(v, IllegalTransitionError) for o, v in outcomes if o == "err")
    assert [h.status for h in store.get_proposal(p.proposal_id).history].count(S.approved) == 1


def test_racing_decisions_store_exactly_one(store):
    p = store.create_proposal(make_proposal(), actor="analyzer")

    def decide(i):
        return store.record_decision(
            Approval(
                proposal_id=p.proposal_id,
                tenant_id="acme_corp",
                decision="approve" if i % 2 else "reject",
                approver=f"person{i}",
                decided_at=utcnow(),
            )
        )

    outcomes = run_threads(decide)
    assert all(o == "ok" for o, _ in outcomes)
    winners = [stored for _, (stored, won) in outcomes if won]
    assert len(winners) == 1
    assert {(s.approver, s.decision) for _, (s, _) in outcomes} == {(winners[0].approver, winners[0].decision)}
    assert store.get_decision(p.proposal_id) == winners[0]


def test_racing_claims_give_one_purchase(store):
    p = store.create_proposal(make_proposal(), actor="analyzer")
    outcomes = run_threads(lambda i: store.claim_purchase(p.proposal_id, f"run{i}"))
    claims = [v for o, v in outcomes if o == "ok" and v is not None]
    assert len(claims) == 1 and all(o == "ok" for o, _ in outcomes)
    done = store.complete_purchase(
        claims[0], "run", savings_plan_id="sp-1", savings_plan_arn=None, hourly_commitment=5.0, purchaser="ledger"
    )
    assert done.state is PurchaseState.completed
    assert store.claim_purchase(p.proposal_id, "retry") is None  # a retried run after completion buys nothing
    with pytest.raises(ConflictError, match="no longer held"):
        store.complete_purchase(
            claims[0], "run", savings_plan_id="sp-2", savings_plan_arn=None, hourly_commitment=5.0, purchaser="ledger"
        )
    assert store.get_purchase(p.proposal_id).savings_plan_id == "sp-1"
    assert [x.proposal_id for x in store.list_purchases("acme_corp")] == [p.proposal_id]


def test_failed_or_stale_claims_are_taken_over_once(store):
    p = store.create_proposal(make_proposal(), actor="analyzer")
    first = store.claim_purchase(p.proposal_id, "run1")
    assert store.claim_purchase(p.proposal_id, "run2") is None  # live claim
    store.fail_purchase(first, "run1", "ThrottlingException")
    outcomes = run_threads(lambda i: store.claim_purchase(p.proposal_id, f"retry{i}"), n=6)
    retakes = [v for _, v in outcomes if v is not None]
    assert len(retakes) == 1 and retakes[0].attempt == 2
    # a claim whose run died is taken over after its lease
    again = store.claim_purchase(p.proposal_id, "late", lease=timedelta(0))
    assert again is not None and again.attempt == 3
    with pytest.raises(ConflictError):
        store.fail_purchase(retakes[0], "retry", "too late")


def test_ledger_plans_are_idempotent(store):
    plan = {"savings_plan_id": "ledger-1", "hourly_commitment": 2.5, "start": "2026-09-15T00:00:00+00:00"}
    assert store.record_ledger_plan("acme_corp", plan) is True
    assert store.record_ledger_plan("acme_corp", {**plan, "hourly_commitment": 9}) is False
    assert store.list_ledger_plans("acme_corp") == [plan]


def test_sqlite_audit_rows_cannot_be_rewritten(blocks_env):
    store = get_state_store()
    store.append_audit("alice", "x", "t", "ok", {})
    conn = sqlite3.connect(get_settings().state_db_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE items SET doc='{}' WHERE tbl='audit'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM items WHERE tbl='audit'")


def test_unknown_backend_is_refused(blocks_env, monkeypatch):
    monkeypatch.setenv("BLOCKS_STATE_BACKEND", "redis")
    with pytest.raises(ValueError, match="use 'sqlite' or 'dynamodb'"):
        get_state_store()
