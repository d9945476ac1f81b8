"""CUR deliveries announced by S3 event notifications on an SQS queue (issue #16).

Each tenant's report bucket sends `s3:ObjectCreated:*` events of its manifests (suffix `-Manifest.json`) to one SQS
queue, directly or through EventBridge (docs/deploy.md). A message only says "this (tenant, billing month) may have a
new delivery": the delivery sensor then reads that month's newest manifest, as polling would. So duplicates and
out-of-order messages (SQS standard queues have both) resolve to the same newest delivery, launched once
(run_key = delivery id). A message no tenant can use goes to the dead-letter queue with the reason.

Pure parsing and routing here; the SQS calls are the few functions at the end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote_plus

from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig

MANIFEST_SUFFIX = "-Manifest.json"
_LEGACY_PERIOD = re.compile(r"/(\d{4})(\d{2})\d{2}-\d{8}/")
_EXPORT_PERIOD = re.compile(r"/BILLING_PERIOD=(\d{4}-\d{2})/")
REASON_ATTRIBUTE = "blocks_reason"


class UnusableMessage(ValueError):
    """A message the sensor cannot act on; its text is the reason written to the dead-letter queue."""


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    event_time: str = ""

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def is_manifest(self) -> bool:
        return self.key.endswith(MANIFEST_SUFFIX)


def parse_message(body: str) -> list[ObjectCreated]:
    """The objects a message announces: an S3 notification (Records), an EventBridge "Object Created" event, either
    wrapped in SNS. S3's test event (sent when the notification is configured) announces none."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise UnusableMessage(f"the body is not JSON ({exc}): not an S3 or EventBridge event") from exc
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return parse_message(doc["Message"])  # through SNS
    if not isinstance(doc, dict):
        raise UnusableMessage("the body is not a JSON object: not an S3 or EventBridge event")
    if doc.get("Event") == "s3:TestEvent":
        return []
    if "Records" in doc:
        out = []
        for r in doc["Records"]:
            if not str(r.get("eventName", "")).startswith("ObjectCreated"):
                continue
            try:
                # S3 URL-encodes keys in notifications (a space arrives as '+')
                out.append(
                    ObjectCreated(
                        r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]), r.get("eventTime", "")
                    )
                )
            except (KeyError, TypeError) as exc:
                raise UnusableMessage(f"an S3 record has no s3.bucket.name / s3.object.key ({exc})") from exc
        return out
    if doc.get("source") == "aws.s3" and doc.get("detail-type") == "Object Created":
        detail = doc.get("detail") or {}
        try:
            return [ObjectCreated(detail["bucket"]["name"], detail["object"]["key"], doc.get("time", ""))]
        except (KeyError, TypeError) as exc:
            raise UnusableMessage(f"an EventBridge Object Created event has no bucket/object ({exc})") from exc
    raise UnusableMessage("neither S3 notification Records nor an EventBridge aws.s3 Object Created event")


def billing_period_of(key: str) -> str | None:
    """YYYY-MM of a manifest's key: legacy `.../YYYYMMDD-YYYYMMDD/...`, Data Exports
    `.../BILLING_PERIOD=YYYY-MM/...`."""
    m = _EXPORT_PERIOD.search(f"/{key}")
    if m:
        return m.group(1)
    m = _LEGACY_PERIOD.search(f"/{key}")
    return f"{m.group(1)}-{m.group(2)}" if m else None


class TenantRouter:
    """Which tenant an object belongs to: the tenant whose cur_source (bucket, prefix, report) holds the key.
    The longest prefix wins, so two tenants may share a bucket under different prefixes."""

    def __init__(self, tenants: Iterable[TenantConfig]):
        self._by_bucket: dict[str, list[tuple[str, TenantConfig]]] = {}
        for t in tenants:
            if not t.cur_source.is_s3:
                continue
            bucket, _, prefix = t.cur_source.uri.removeprefix("s3://").partition("/")
            report_prefix = f"{prefix.strip('/')}/{t.cur_source.report_name}/".lstrip("/")
            self._by_bucket.setdefault(bucket, []).append((report_prefix, t))
        for entries in self._by_bucket.values():
            entries.sort(key=lambda e: -len(e[0]))

    def route(self, obj: ObjectCreated) -> TenantConfig | None:
        return next((t for prefix, t in self._by_bucket.get(obj.bucket, []) if obj.key.startswith(prefix)), None)


# ---- SQS ------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _sqs_client(endpoint_url: str | None, region: str):
    import boto3

    return boto3.client("sqs", endpoint_url=endpoint_url, region_name=region)


def sqs_client():
    s = get_settings()
    return _sqs_client(s.sqs_endpoint_url, s.aws_region)


def receive(queue_url: str, *, max_messages: int, visibility_timeout: int) -> list[dict[str, Any]]:
    """Up to max_messages messages, 10 per call (SQS's maximum), without waiting for an empty queue to fill."""
    out: list[dict[str, Any]] = []
    while len(out) < max_messages:
        batch = (
            sqs_client()
            .receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, max_messages - len(out)),
                WaitTimeSeconds=0,
                VisibilityTimeout=visibility_timeout,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
            .get("Messages", [])
        )
        if not batch:
            break
        out += batch
    return out


def _batches(items: list, n: int = 10):
    for i in range(0, len(items), n):
        yield items[i : i + n]


def delete(queue_url: str, receipt_handles: list[str]) -> None:
    for batch in _batches(receipt_handles):
        sqs_client().delete_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(batch)]
        )


def release(queue_url: str, receipt_handles: list[str]) -> None:
    """Visible again at once: another code location's sensor may own the tenant."""
    for batch in _batches(receipt_handles):
        sqs_client().change_message_visibility_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(batch)],
        )


def dead_letter(dlq_url: str, body: str, reason: str) -> None:
    """The original body, with the reason as a message attribute (what an operator reads in the console)."""
    sqs_client().send_message(
        QueueUrl=dlq_url,
        MessageBody=body,
        MessageAttributes={REASON_ATTRIBUTE: {"DataType": "String", "StringValue": reason[:1000]}},
    )
