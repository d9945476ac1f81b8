"""Alerts in the state store: each one stored once, notified once per channel, acknowledged or resolved by people.

Built on the backend's two conditional writes, so SQLite and DynamoDB give the same guarantees:
- an alert is created with create-if-absent keyed by its stable id: the tick that re-detects it updates the figures
  (compare-and-swap) and never raises it again;
- a notification is sent by whoever *claims* (alert, channel) first: concurrent ticks send one message. A failed
  send can be claimed again on a later tick (one taker), up to MAX_SEND_ROUNDS, so a channel that was down catches
  up without ever sending twice after a success.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from blocks_pipelines.state.alert_models import SEVERITY_RANK, Alert, AlertStatus, Detection
from blocks_pipelines.state.records import ConflictError, NotFoundError, utcnow

ALERTS = "alerts"
NOTIFICATIONS = "alert_notifications"
CAS_RETRIES = 20
MAX_SEND_ROUNDS = 5  # ticks that may retry a failing channel before the failure is left for a person to see
SEND_LEASE = timedelta(minutes=10)  # a claim older than this belongs to a crashed run and can be taken over
RESEND_AFTER = timedelta(minutes=5)  # a failed channel is retried at most this often


def _target(tenant_id: str, alert_id: str) -> str:
    return f"{tenant_id}/alert/{alert_id}"


class AlertRecords:
    """Mixed into StateStore (which provides `backend` and `append_audit`)."""

    backend: Any

    def append_audit(self, actor: str, action: str, target: str, result: str, details: Any) -> None: ...

    def record_alert(self, tenant_id: str, detection: Detection, now: datetime | None = None) -> tuple[Alert, bool]:
        """Store a detection as an alert. Returns (the stored alert, whether this call created it). A known alert
        takes the new figures (the anomaly went on for more days) and keeps its status and who set it."""
        now = now or utcnow()
        aid = detection.id_for(tenant_id)
        fresh = Alert(**detection.model_dump(), alert_id=aid, tenant_id=tenant_id, detected_at=now, updated_at=now)
        for _ in range(CAS_RETRIES):
            if self.backend.put_new(ALERTS, tenant_id, aid, fresh.model_dump(mode="json")):
                self.append_audit(
                    "detector",
                    "alert.raise",
                    _target(tenant_id, aid),
                    "ok",
                    {
                        "kind": detection.kind.value,
                        "severity": detection.severity.value,
                        "impact_usd": round(detection.impact_usd, 2),
                    },
                )
                return fresh, True
            rec = self.backend.get(ALERTS, tenant_id, aid)
            if rec is None:
                continue
            stored = Alert.model_validate(rec.doc)
            if detection.last_seen < stored.last_seen or _same_figures(stored, detection):
                return stored, False
            severity = max(stored.severity, detection.severity, key=SEVERITY_RANK.__getitem__)
            updated = stored.model_copy(
                update={
                    **{
                        k: getattr(detection, k)
                        for k in (
                            "last_seen",
                            "expected",
                            "actual",
                            "impact_usd",
                            "score",
                            "top_usage_types",
                            "message",
                        )
                    },
                    "severity": severity,
                    "updated_at": now,
                }
            )
            if self.backend.replace(ALERTS, tenant_id, aid, updated.model_dump(mode="json"), rec.version):
                return updated, False
        raise ConflictError(f"alert {aid} of {tenant_id}: gave up after {CAS_RETRIES} concurrent updates")

    def get_alert(self, tenant_id: str, alert_id: str) -> Alert:
        rec = self.backend.get(ALERTS, tenant_id, alert_id)
        if rec is None:
            raise NotFoundError(f"alert {alert_id} not found for tenant {tenant_id}")
        return Alert.model_validate(rec.doc)

    def list_alerts(self, tenant_id: str, statuses: Iterable[AlertStatus] | None = None) -> list[Alert]:
        wanted = set(statuses) if statuses is not None else None
        alerts = [Alert.model_validate(d) for d in self.backend.query(ALERTS, tenant_id)]
        alerts = [a for a in alerts if wanted is None or a.status in wanted]
        return sorted(alerts, key=lambda a: (a.last_seen, a.impact_usd), reverse=True)

    def set_alert_status(
        self,
        tenant_id: str,
        alert_id: str,
        status: AlertStatus,
        actor: str,
        note: str = "",
        expected: AlertStatus | None = None,
    ) -> Alert:
        """Acknowledge, resolve or reopen. With `expected`, a compare-and-swap: ConflictError when the stored status
        is no longer the one the caller saw."""
        for _ in range(CAS_RETRIES):
            rec = self.backend.get(ALERTS, tenant_id, alert_id)
            if rec is None:
                raise NotFoundError(f"alert {alert_id} not found for tenant {tenant_id}")
            current = Alert.model_validate(rec.doc)
            if expected is not None and current.status is not expected:
                raise ConflictError(f"alert {alert_id} is {current.status.value} now, not {expected.value}: reload")
            if current.status is status and note == current.note:
                return current
            now = utcnow()
            updated = current.model_copy(
                update={"status": status, "status_by": actor, "status_at": now, "note": note, "updated_at": now}
            )
            if self.backend.replace(ALERTS, tenant_id, alert_id, updated.model_dump(mode="json"), rec.version):
                self.append_audit(
                    actor,
                    f"alert.{status.value}",
                    _target(tenant_id, alert_id),
                    "ok",
                    {"from": current.status.value, "note": note},
                )
                return updated
            if expected is not None:
                raise ConflictError(f"alert {alert_id} changed meanwhile: reload and retry")
        raise ConflictError(f"alert {alert_id}: gave up after {CAS_RETRIES} concurrent updates")

    # ---- notifications ------------------------------------------------------------------------------------------
    def claim_alert_notification(
        self, tenant_id: str, alert_id: str, channel: str, now: datetime | None = None
    ) -> dict[str, Any] | None:
        """The right to send this alert on this channel, or None: sent already, another tick is sending, or the
        channel failed MAX_SEND_ROUNDS times (then the failure stays visible in list_alert_notifications)."""
        now = now or utcnow()
        sk = f"{alert_id}#{channel}"
        claim = {
            "alert_id": alert_id,
            "channel": channel,
            "state": "sending",
            "rounds": 1,
            "attempts": 0,
            "claimed_at": now.isoformat(),
            "error": None,
            "sent_at": None,
        }
        if self.backend.put_new(NOTIFICATIONS, tenant_id, sk, claim):
            return claim
        rec = self.backend.get(NOTIFICATIONS, tenant_id, sk)
        if rec is None:
            return None
        doc = rec.doc
        age = now - datetime.fromisoformat(doc["claimed_at"])
        retry_failed = doc["state"] == "failed" and doc["rounds"] < MAX_SEND_ROUNDS and age >= RESEND_AFTER
        if not (retry_failed or (doc["state"] == "sending" and age >= SEND_LEASE)):
            return None
        taken = {**doc, "state": "sending", "rounds": doc["rounds"] + 1, "claimed_at": now.isoformat()}
        return taken if self.backend.replace(NOTIFICATIONS, tenant_id, sk, taken, rec.version) else None

    def finish_alert_notification(
        self, tenant_id: str, claim: dict[str, Any], *, ok: bool, attempts: int, error: str | None = None
    ) -> dict[str, Any]:
        sk = f"{claim['alert_id']}#{claim['channel']}"
        rec = self.backend.get(NOTIFICATIONS, tenant_id, sk)
        if rec is None or rec.doc["claimed_at"] != claim["claimed_at"] or rec.doc["state"] != "sending":
            raise ConflictError(f"notification {sk}: the claim is no longer held")
        done = {
            **rec.doc,
            "state": "sent" if ok else "failed",
            "attempts": rec.doc["attempts"] + attempts,
            "error": error,
            "sent_at": utcnow().isoformat() if ok else None,
        }
        if not self.backend.replace(NOTIFICATIONS, tenant_id, sk, done, rec.version):
            raise ConflictError(f"notification {sk}: lost to a concurrent writer")
        self.append_audit(
            "notifier",
            f"alert.notify.{claim['channel']}",
            _target(tenant_id, claim["alert_id"]),
            done["state"],
            {"attempts": attempts, "error": error},
        )
        return done

    def list_alert_notifications(self, tenant_id: str) -> list[dict[str, Any]]:
        return self.backend.query(NOTIFICATIONS, tenant_id)


def _same_figures(stored: Alert, detection: Detection) -> bool:
    return (
        stored.last_seen == detection.last_seen
        and stored.actual == detection.actual
        and stored.impact_usd == detection.impact_usd
    )
