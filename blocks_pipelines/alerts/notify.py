"""Delivering alerts: one notifier per channel of the tenant's policy (Slack/webhook, email, SNS, file).

Guarantees, whatever the channel does:
- each (alert, channel) is sent by whoever claims it in the state store, so concurrent ticks send one message;
- a send is retried with exponential backoff inside the tick, and a failed channel is retried on later ticks
  (state store: RESEND_AFTER, MAX_SEND_ROUNDS);
- a failing channel never raises out of `deliver`: the failure is recorded on the notification record (and the
  audit log) and returned in the report the Dagster asset puts in its metadata.
"""

from __future__ import annotations

import hashlib
import json
import smtplib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

import httpx

from blocks_pipelines.settings import secret
from blocks_pipelines.state.alert_models import Alert, AlertStatus
from blocks_pipelines.state.records import ConflictError
from blocks_pipelines.tenants.alert_policy import Channel, EmailChannel, FileChannel, SnsChannel, WebhookChannel

SEND_ATTEMPTS = 3
BACKOFF_BASE_S = 0.5  # 0.5 s, 1 s between the three attempts: a blip is absorbed, a dead endpoint costs ~2 s a tick
HTTP_TIMEOUT_S = 5.0
SNS_SUBJECT_MAX = 100  # SNS rejects longer subjects


class DeliveryError(Exception):
    """A send that failed; `permanent` ones (a 4xx, a missing secret) are not retried within the tick."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class Notifier(Protocol):
    name: str

    def send(self, alert: Alert) -> None:
        """Deliver one alert or raise."""


def headline(alert: Alert) -> str:
    return f"[{alert.severity.value.upper()}] {alert.tenant_id}: {alert.kind.value.replace('_', ' ')}"


def slack_payload(alert: Alert) -> dict:
    """Slack incoming-webhook message: a text fallback plus blocks with the figures."""
    facts = [
        f"*Expected* ${alert.expected:,.2f}/day" if alert.expected is not None else "",
        f"*Actual* ${alert.actual:,.2f}/day" if alert.actual is not None else "",
        f"*Impact* ${alert.impact_usd:,.2f}",
        f"*First seen* {alert.first_seen}",
    ]
    if alert.unit != "usd_per_day":
        facts = [f"*Expected* {alert.expected}", f"*Actual* {alert.actual}", f"*First seen* {alert.first_seen}"]
    return {
        "text": f"{headline(alert)}: {alert.message}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline(alert)}*\n{alert.message}"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts if f]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"alert `{alert.alert_id}`"}]},
        ],
    }


def _secret(env_var: str | None, what: str) -> str | None:
    if env_var is None:
        return None
    value = secret(env_var)
    if not value:
        raise DeliveryError(f"{what}: environment variable {env_var} is not set", permanent=True)
    return value


@dataclass
class WebhookNotifier:
    """HTTP POST of the alert as JSON; Slack incoming webhooks get Slack's message shape."""

    name: str
    url: str | None
    url_env: str | None = None
    slack: bool = False
    timeout_s: float = HTTP_TIMEOUT_S

    def send(self, alert: Alert) -> None:
        url = self.url or _secret(self.url_env, f"channel {self.name}")
        body = slack_payload(alert) if self.slack else {"event": "blocks.alert", "alert": alert.as_notification()}
        try:
            response = httpx.post(
                url, json=body, timeout=self.timeout_s, headers={"Idempotency-Key": alert.alert_id}
            )  # receivers can drop a replay
        except httpx.HTTPError as exc:
            raise DeliveryError(f"POST {_redact(url)}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 300:
            # 4xx other than 408/429 will not get better by retrying: a wrong URL or a revoked Slack hook
            permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
            raise DeliveryError(f"POST {_redact(url)}: HTTP {response.status_code} {response.text[:200]}", permanent)


def _redact(url: str) -> str:
    """A Slack webhook URL is its secret: keep scheme and host only in errors and the audit log."""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.host}/..."


@dataclass
class EmailNotifier:
    name: str
    channel: EmailChannel
    timeout_s: float = 10.0

    def send(self, alert: Alert) -> None:
        c = self.channel
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = headline(alert), c.sender, ", ".join(c.to)
        msg["Message-ID"] = f"<{alert.alert_id}@blocks>"
        msg.set_content(f"{alert.message}\n\n{json.dumps(alert.as_notification(), indent=2)}\n")
        user, password = _secret(c.username_env, self.name), _secret(c.password_env, self.name)
        try:
            with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=self.timeout_s) as smtp:
                if c.starttls:
                    smtp.starttls()
                if user:
                    smtp.login(user, password or "")
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP {c.smtp_host}:{c.smtp_port}: authentication failed", permanent=True) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {c.smtp_host}:{c.smtp_port}: {type(exc).__name__}: {exc}") from exc


@dataclass
class SnsNotifier:
    """Publishes to an SNS topic (production: fan-out to email, chat, PagerDuty subscriptions)."""

    name: str
    topic_arn: str
    region: str | None = None
    client: object = None  # a boto3 SNS client; built on first send (tests pass a Stubber-wrapped one)

    def send(self, alert: Alert) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if self.client is None:
            import boto3

            self.client = boto3.client("sns", region_name=self.region or self.topic_arn.split(":")[3])
        try:
            self.client.publish(
                TopicArn=self.topic_arn,
                Subject=headline(alert)[:SNS_SUBJECT_MAX],
                Message=json.dumps({"default": alert.message, "alert": alert.as_notification()}),
                MessageAttributes={
                    "tenant_id": {"DataType": "String", "StringValue": alert.tenant_id},
                    "kind": {"DataType": "String", "StringValue": alert.kind.value},
                    "severity": {"DataType": "String", "StringValue": alert.severity.value},
                },
            )
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            raise DeliveryError(
                f"SNS {self.topic_arn}: {code}",
                permanent=code in ("NotFound", "AuthorizationError", "InvalidParameter"),
            ) from exc
        except BotoCoreError as exc:
            raise DeliveryError(f"SNS {self.topic_arn}: {type(exc).__name__}: {exc}") from exc


@dataclass
class FileNotifier:
    """JSON lines, one per alert: what the local demo and tests read."""

    name: str
    path: Path

    def send(self, alert: Alert) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"channel": self.name, "alert": alert.as_notification()}) + "\n"
        # one write() of a short line in append mode: concurrent writers do not interleave within it
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)


def channel_name(channel: Channel) -> str:
    """Stable per channel target, so reordering the YAML does not resend and two Slack hooks stay apart."""
    target = {
        WebhookChannel: lambda c: c.url or c.url_env,
        EmailChannel: lambda c: ",".join(sorted(c.to)),
        SnsChannel: lambda c: c.topic_arn,
        FileChannel: lambda c: c.path,
    }[type(channel)](channel)
    return f"{channel.type}:{hashlib.sha256(str(target).encode()).hexdigest()[:8]}"


def notifier_for(channel: Channel, tenant_id: str, home: Path) -> Notifier:
    name = channel_name(channel)
    if isinstance(channel, WebhookChannel):
        return WebhookNotifier(name, channel.url, channel.url_env, slack=channel.type == "slack")
    if isinstance(channel, EmailChannel):
        return EmailNotifier(name, channel)
    if isinstance(channel, SnsChannel):
        return SnsNotifier(name, channel.topic_arn, channel.region)
    path = Path(channel.path.format(tenant=tenant_id))
    return FileNotifier(name, path if path.is_absolute() else home / path)


@dataclass(frozen=True)
class SendOutcome:
    ok: bool
    attempts: int
    error: str | None


def send_with_retries(
    notifier: Notifier,
    alert: Alert,
    attempts: int = SEND_ATTEMPTS,
    base_delay_s: float = BACKOFF_BASE_S,
    sleep: Callable[[float], None] = time.sleep,
) -> SendOutcome:
    error = None
    for attempt in range(1, attempts + 1):
        try:
            notifier.send(alert)
            return SendOutcome(True, attempt, None)
        except DeliveryError as exc:
            error = str(exc)
            if exc.permanent:
                return SendOutcome(False, attempt, error)
        except Exception as exc:  # noqa: BLE001 - a notifier bug must not fail the pipeline either
            error = f"{type(exc).__name__}: {exc}"
        if attempt < attempts:
            sleep(base_delay_s * 2 ** (attempt - 1))
    return SendOutcome(False, attempts, error)


@dataclass
class DeliveryReport:
    sent: list[tuple[str, str]] = field(default_factory=list)  # (alert_id, channel)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (alert_id, channel, error)
    skipped: int = 0  # already sent, being sent by another tick, or given up on

    def as_metadata(self) -> dict:
        return {
            "notifications_sent": len(self.sent),
            "notifications_failed": len(self.failed),
            "notifications_skipped": self.skipped,
            "failed_channels": sorted({c for _, c, _ in self.failed}),
            "failures": [{"alert_id": a, "channel": c, "error": e} for a, c, e in self.failed[:20]],
        }


def deliver(
    store,
    tenant_id: str,
    alerts: Iterable[Alert],
    notifiers: list[Notifier],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> DeliveryReport:
    """Send each open alert on each channel at most once (see the module doc). Never raises for a channel."""
    report = DeliveryReport()
    for alert in alerts:
        if alert.status is not AlertStatus.open:
            continue  # someone already looks at it
        for notifier in notifiers:
            claim = store.claim_alert_notification(tenant_id, alert.alert_id, notifier.name)
            if claim is None:
                report.skipped += 1
                continue
            outcome = send_with_retries(notifier, alert, sleep=sleep)
            try:
                store.finish_alert_notification(
                    tenant_id, claim, ok=outcome.ok, attempts=outcome.attempts, error=outcome.error
                )
            except ConflictError:  # our send outlived its lease and another tick took the claim over: theirs now
                report.skipped += 1
                continue
            if outcome.ok:
                report.sent.append((alert.alert_id, notifier.name))
            else:
                report.failed.append((alert.alert_id, notifier.name, outcome.error or "unknown error"))
    return report
