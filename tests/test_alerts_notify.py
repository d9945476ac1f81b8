"""Notifiers and delivery: real HTTP and SMTP servers on 127.0.0.1, SNS through botocore's Stubber, a file channel;
one message per alert and channel even with concurrent ticks; a dead channel is recorded, never raised."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.stub import ANY, Stubber

from blocks_pipelines.alerts.notify import (
    DeliveryError,
    EmailNotifier,
    FileNotifier,
    SnsNotifier,
    WebhookNotifier,
    channel_name,
    deliver,
    notifier_for,
    send_with_retries,
)
from blocks_pipelines.state import get_state_store
from blocks_pipelines.state.alert_models import AlertKind, AlertStatus, Detection, Severity
from blocks_pipelines.tenants.alert_policy import EmailChannel, FileChannel, WebhookChannel
from tests.test_state_contract import run_threads


def _detection(service="AmazonEC2") -> Detection:
    return Detection(
        kind=AlertKind.spend_spike,
        severity=Severity.high,
        dimensions={"service": service, "usage_account_id": "111111111111", "region": "us-east-1"},
        first_seen=date(2026, 11, 20),
        last_seen=date(2026, 11, 20),
        expected=300.0,
        actual=900.0,
        impact_usd=600.0,
        score=12.0,
        message=f"{service} cost $900.00 against $300.00 expected",
    )


@pytest.fixture
def store(blocks_env):
    return get_state_store()


@pytest.fixture
def http_sink():
    """A webhook receiver on 127.0.0.1: records each POST; answers with `status` (settable)."""
    received: list[dict] = []
    state = {"status": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"body": json.loads(body), "headers": dict(self.headers)})
            self.send_response(state["status"])
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received, state
    server.shutdown()


def _dead_url() -> str:
    with socket.socket() as s:  # a port nothing listens on (bound, then released)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def test_webhook_and_slack_post_the_alert(store, http_sink):
    url, received, _ = http_sink
    alert, _ = store.record_alert("acme_corp", _detection())
    WebhookNotifier("webhook:x", url).send(alert)
    WebhookNotifier("slack:x", url, slack=True).send(alert)
    plain, slack = received
    assert plain["body"]["event"] == "blocks.alert"
    assert plain["body"]["alert"]["alert_id"] == alert.alert_id and plain["body"]["alert"]["impact_usd"] == 600.0
    assert plain["headers"]["Idempotency-Key"] == alert.alert_id
    assert slack["body"]["text"].startswith("[HIGH] acme_corp: spend spike")
    fields = [f["text"] for f in slack["body"]["blocks"][1]["fields"]]
    assert fields == ["*Expected* $300.00/day", "*Actual* $900.00/day", "*Impact* $600.00", "*First seen* 2026-11-20"]


def test_a_dead_webhook_is_retried_with_backoff_then_recorded_without_failing(store):
    alert, _ = store.record_alert("acme_corp", _detection())
    sleeps: list[float] = []
    report = deliver(store, "acme_corp", [alert], [WebhookNotifier("webhook:dead", _dead_url())], sleep=sleeps.append)
    assert sleeps == [0.5, 1.0]
    assert report.sent == [] and [(a, c) for a, c, _ in report.failed] == [(alert.alert_id, "webhook:dead")]
    assert "ConnectError" in report.failed[0][2]
    meta = report.as_metadata()
    assert meta["notifications_failed"] == 1 and meta["failed_channels"] == ["webhook:dead"]
    [record] = store.list_alert_notifications("acme_corp")
    assert (record["state"], record["attempts"]) == ("failed", 3)


def test_a_rejected_webhook_is_not_retried_and_its_secret_url_stays_out_of_the_error(store, http_sink):
    url, received, state = http_sink
    state["status"] = 404
    alert, _ = store.record_alert("acme_corp", _detection())
    outcome = send_with_retries(
        WebhookNotifier("slack:x", url + "/T000/SECRET", slack=True), alert, sleep=lambda s: None
    )
    assert (outcome.ok, outcome.attempts) == (False, 1) and len(received) == 1
    assert "HTTP 404" in outcome.error and "SECRET" not in outcome.error
    state["status"] = 503  # a server error is retried
    assert send_with_retries(WebhookNotifier("w", url), alert, sleep=lambda s: None).attempts == 3


def test_a_missing_secret_is_a_visible_permanent_failure(store, monkeypatch):
    monkeypatch.delenv("ACME_SLACK_WEBHOOK", raising=False)
    alert, _ = store.record_alert("acme_corp", _detection())
    notifier = notifier_for(WebhookChannel(type="slack", url_env="ACME_SLACK_WEBHOOK"), "acme_corp", store_home())
    outcome = send_with_retries(notifier, alert, sleep=lambda s: None)
    assert (outcome.ok, outcome.attempts) == (False, 1)
    assert "ACME_SLACK_WEBHOOK is not set" in outcome.error


def store_home():
    from blocks_pipelines.settings import get_settings

    return get_settings().home


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO, MAIL, RCPT, DATA, QUIT."""

    def handle(self):
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250 test\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 go on\r\n")
                data = b""
                while (chunk := self.rfile.readline()) != b".\r\n":
                    data += chunk
                self.server.messages.append(data.decode())
                self.wfile.write(b"250 queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_email_is_sent_over_smtp(store):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.messages = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        alert, _ = store.record_alert("acme_corp", _detection())
        channel = EmailChannel(
            type="email", to=["finops@acme.example"], smtp_host="127.0.0.1", smtp_port=server.server_address[1]
        )
        EmailNotifier("email:x", channel).send(alert)
    finally:
        server.shutdown()
        server.server_close()
    [message] = server.messages
    assert "Subject: [HIGH] acme_corp: spend spike" in message and "To: finops@acme.example" in message
    assert f"Message-ID: <{alert.alert_id}@blocks>" in message and "$900.00 against $300.00" in message


def test_email_to_a_dead_server_fails_cleanly(store):
    alert, _ = store.record_alert("acme_corp", _detection())
    port = int(_dead_url().split(":")[2].split("/")[0])
    channel = EmailChannel(type="email", to=["a@b.example"], smtp_host="127.0.0.1", smtp_port=port)
    with pytest.raises(DeliveryError, match="SMTP 127.0.0.1"):
        EmailNotifier("email:x", channel).send(alert)


def test_sns_publish_matches_the_api_model(store):
    alert, _ = store.record_alert("acme_corp", _detection())
    client = boto3.client("sns", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    topic = "arn:aws:sns:us-east-1:111111111111:cost-alerts"
    with Stubber(client) as stub:
        stub.add_response(
            "publish",
            {"MessageId": "m-1"},
            {
                "TopicArn": topic,
                "Subject": "[HIGH] acme_corp: spend spike",
                "Message": ANY,
                "MessageAttributes": {
                    "tenant_id": {"DataType": "String", "StringValue": "acme_corp"},
                    "kind": {"DataType": "String", "StringValue": "spend_spike"},
                    "severity": {"DataType": "String", "StringValue": "high"},
                },
            },
        )
        stub.add_client_error("publish", service_error_code="NotFound", http_status_code=404)
        notifier = SnsNotifier("sns:x", topic, client=client)
        notifier.send(alert)
        outcome = send_with_retries(notifier, alert, sleep=lambda s: None)
        stub.assert_no_pending_responses()
    assert (outcome.ok, outcome.attempts) == (False, 1) and "NotFound" in outcome.error


def test_concurrent_ticks_write_one_notification_per_alert(store, tmp_path):
    alerts = [store.record_alert("acme_corp", _detection(s))[0] for s in ("AmazonEC2", "AmazonRDS", "AmazonS3")]
    path = tmp_path / "alerts.jsonl"
    results = run_threads(lambda i: deliver(store, "acme_corp", alerts, [FileNotifier("file:x", path)]))
    assert all(kind == "ok" for kind, _ in results)
    assert sum(len(r.sent) for _, r in results) == 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(line["alert"]["alert_id"] for line in lines) == sorted(a.alert_id for a in alerts)
    # the next tick finds them sent; an acknowledged alert is not sent at all
    later = store.record_alert("acme_corp", _detection("AWSLambda"))[0]
    store.set_alert_status("acme_corp", later.alert_id, AlertStatus.acknowledged, "alice")
    again = deliver(store, "acme_corp", store.list_alerts("acme_corp"), [FileNotifier("file:x", path)])
    assert again.sent == [] and again.skipped == 3
    assert len(path.read_text().splitlines()) == 3


def test_channel_names_are_stable_and_distinct():
    a = WebhookChannel(type="slack", url_env="A_HOOK")
    assert channel_name(a) == channel_name(WebhookChannel(type="slack", url_env="A_HOOK"))
    assert channel_name(a) != channel_name(WebhookChannel(type="slack", url_env="B_HOOK"))
    assert channel_name(FileChannel(type="file")).startswith("file:")


def test_file_channel_paths_expand_the_tenant_under_home(tmp_path):
    notifier = notifier_for(FileChannel(type="file"), "globex", tmp_path)
    assert notifier.path == tmp_path / "alerts" / "globex.jsonl"


def test_a_send_that_outlived_its_lease_does_not_fail_delivery(store, tmp_path):
    from blocks_pipelines.state.alerts import SEND_LEASE
    from blocks_pipelines.state.records import utcnow

    alert, _ = store.record_alert("acme_corp", _detection())

    class Slow:
        name = "file:slow"

        def send(self, a):  # while it sends, its lease runs out and another tick takes the claim over
            assert (
                store.claim_alert_notification("acme_corp", a.alert_id, self.name, now=utcnow() + SEND_LEASE)
                is not None
            )

    report = deliver(store, "acme_corp", [alert], [Slow()], sleep=lambda s: None)
    assert (report.sent, report.failed, report.skipped) == ([], [], 1)
    [record] = store.list_alert_notifications("acme_corp")
    assert record["state"] == "sending" and record["rounds"] == 2  # the taker's claim, for it to finish
