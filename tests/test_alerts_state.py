"""Alerts in the state store, one contract for SQLite and DynamoDB (moto): stored once, notified once per channel
even with concurrent ticks, acknowledged and resolved with an audit trail, isolated per tenant."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from blocks_pipelines.state import ConflictError, NotFoundError
from blocks_pipelines.state.alert_models import AlertKind, AlertStatus, Detection, Severity
from blocks_pipelines.state.alerts import MAX_SEND_ROUNDS, RESEND_AFTER, SEND_LEASE
from blocks_pipelines.state.records import utcnow
from tests.test_state_contract import run_threads


@pytest.fixture
def store(store_on_each_backend):
    return store_on_each_backend  # the same contract on SQLite and on DynamoDB (moto)


def spike(last_seen=date(2026, 11, 20), impact=600.0, service="AmazonEC2") -> Detection:
    return Detection(
        kind=AlertKind.spend_spike,
        severity=Severity.high,
        dimensions={"service": service, "usage_account_id": "111111111111", "region": "us-east-1"},
        first_seen=date(2026, 11, 20),
        last_seen=last_seen,
        expected=300.0,
        actual=300.0 + impact,
        impact_usd=impact,
        score=12.0,
        message=f"{service} +${impact}",
    )


def test_an_alert_is_stored_once_and_takes_the_figures_of_later_ticks(store):
    alert, created = store.record_alert("acme_corp", spike())
    assert created and alert.status is AlertStatus.open
    again, created = store.record_alert("acme_corp", spike())
    assert not created and again.alert_id == alert.alert_id
    longer, created = store.record_alert("acme_corp", spike(last_seen=date(2026, 11, 22), impact=1800.0))
    assert not created and longer.alert_id == alert.alert_id
    stored = store.get_alert("acme_corp", alert.alert_id)
    assert (stored.last_seen, stored.impact_usd, stored.first_seen) == (date(2026, 11, 22), 1800.0, date(2026, 11, 20))
    assert len(store.list_alerts("acme_corp")) == 1
    assert [e.action for e in store.list_audit(f"acme_corp/alert/{alert.alert_id}")] == ["alert.raise"]


def test_concurrent_ticks_raise_one_alert(store):
    results = run_threads(lambda i: store.record_alert("acme_corp", spike()))
    assert all(kind == "ok" for kind, _ in results)
    assert sum(created for _, (_, created) in results) == 1
    assert len(store.list_alerts("acme_corp")) == 1


def test_concurrent_ticks_claim_one_notification_per_channel(store):
    alert, _ = store.record_alert("acme_corp", spike())
    results = run_threads(lambda i: store.claim_alert_notification("acme_corp", alert.alert_id, "slack"))
    claims = [c for kind, c in results if kind == "ok" and c is not None]
    assert len(claims) == 1
    store.finish_alert_notification("acme_corp", claims[0], ok=True, attempts=1)
    # another channel is its own claim; a sent channel is never claimed again, however late
    assert store.claim_alert_notification("acme_corp", alert.alert_id, "email") is not None
    much_later = utcnow() + timedelta(days=9)
    assert store.claim_alert_notification("acme_corp", alert.alert_id, "slack", now=much_later) is None
    sent = {n["channel"]: n for n in store.list_alert_notifications("acme_corp")}
    assert sent["slack"]["state"] == "sent" and sent["slack"]["sent_at"] and sent["email"]["state"] == "sending"


def test_a_failed_channel_is_retried_on_later_ticks_then_left_visible(store):
    alert, _ = store.record_alert("acme_corp", spike())
    now = utcnow()
    claim = store.claim_alert_notification("acme_corp", alert.alert_id, "webhook", now=now)
    store.finish_alert_notification("acme_corp", claim, ok=False, attempts=3, error="ConnectionRefused")
    # not on the very next tick: a channel that is down is not hammered
    assert store.claim_alert_notification("acme_corp", alert.alert_id, "webhook", now=now) is None
    for round_ in range(2, MAX_SEND_ROUNDS + 1):
        now += RESEND_AFTER
        claim = store.claim_alert_notification("acme_corp", alert.alert_id, "webhook", now=now)
        assert claim is not None and claim["rounds"] == round_
        store.finish_alert_notification("acme_corp", claim, ok=False, attempts=3, error="ConnectionRefused")
    assert store.claim_alert_notification("acme_corp", alert.alert_id, "webhook", now=now + RESEND_AFTER) is None
    [record] = store.list_alert_notifications("acme_corp")
    assert (record["state"], record["rounds"], record["attempts"], record["error"]) == (
        "failed",
        MAX_SEND_ROUNDS,
        3 * MAX_SEND_ROUNDS,
        "ConnectionRefused",
    )
    audit = store.list_audit(f"acme_corp/alert/{alert.alert_id}")
    assert [e.result for e in audit if e.action == "alert.notify.webhook"] == ["failed"] * MAX_SEND_ROUNDS


def test_a_crashed_sender_is_taken_over_after_its_lease_and_loses_its_claim(store):
    alert, _ = store.record_alert("acme_corp", spike())
    now = utcnow()
    stale = store.claim_alert_notification("acme_corp", alert.alert_id, "sns", now=now)
    assert store.claim_alert_notification("acme_corp", alert.alert_id, "sns", now=now + SEND_LEASE / 2) is None
    taken = store.claim_alert_notification("acme_corp", alert.alert_id, "sns", now=now + SEND_LEASE)
    assert taken is not None
    with pytest.raises(ConflictError, match="no longer held"):
        store.finish_alert_notification("acme_corp", stale, ok=True, attempts=1)
    assert store.finish_alert_notification("acme_corp", taken, ok=True, attempts=1)["state"] == "sent"


def test_acknowledge_and_resolve_are_audited_and_survive_re_detection(store):
    alert, _ = store.record_alert("acme_corp", spike())
    acked = store.set_alert_status("acme_corp", alert.alert_id, AlertStatus.acknowledged, "alice", note="known")
    assert (acked.status, acked.status_by, acked.note) == (AlertStatus.acknowledged, "alice", "known")
    # the next tick re-detects a longer anomaly: figures move, the person's acknowledgement stays
    store.record_alert("acme_corp", spike(last_seen=date(2026, 11, 21), impact=900.0))
    stored = store.get_alert("acme_corp", alert.alert_id)
    assert (stored.status, stored.impact_usd) == (AlertStatus.acknowledged, 900.0)
    with pytest.raises(ConflictError, match="acknowledged now, not open"):
        store.set_alert_status("acme_corp", alert.alert_id, AlertStatus.resolved, "bob", expected=AlertStatus.open)
    store.set_alert_status("acme_corp", alert.alert_id, AlertStatus.resolved, "bob", expected=AlertStatus.acknowledged)
    assert [a.alert_id for a in store.list_alerts("acme_corp", [AlertStatus.resolved])] == [alert.alert_id]
    assert store.list_alerts("acme_corp", [AlertStatus.open]) == []
    actions = [(e.actor, e.action) for e in store.list_audit(f"acme_corp/alert/{alert.alert_id}")]
    assert actions == [("detector", "alert.raise"), ("alice", "alert.acknowledged"), ("bob", "alert.resolved")]


def test_alerts_are_isolated_per_tenant(store):
    alert, _ = store.record_alert("acme_corp", spike())
    other, created = store.record_alert("globex", spike())
    assert created and other.alert_id != alert.alert_id  # the id hashes the tenant in
    assert [a.tenant_id for a in store.list_alerts("globex")] == ["globex"]
    with pytest.raises(NotFoundError):
        store.get_alert("globex", alert.alert_id)
    with pytest.raises(NotFoundError):
        store.set_alert_status("globex", alert.alert_id, AlertStatus.acknowledged, "mallory")
    assert store.get_alert("acme_corp", alert.alert_id).status is AlertStatus.open
