"""Event-driven deliveries (issue #16): S3 event notifications of manifests -> SQS -> the code location's one queue
sensor, against moto (the bucket's real notification configuration delivers the messages)."""

import json
import time
import uuid

import boto3
import dagster as dg
import pytest
import yaml
from dagster._core.test_utils import create_run_for_test

from blocks_pipelines.ingestion import delivery_queue as q
from blocks_pipelines.ingestion import delivery_sensors
from blocks_pipelines.ingestion.defs import RANGE_END_TAG, RANGE_START_TAG, build_ingestion_defs
from blocks_pipelines.ingestion.delivery_sensors import delivery_poll_sensor, delivery_queue_sensor
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry
from tests.synthetic.cur_frames import cur2_frame, write_export_delivery

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs, crash-injected processes or moto S3/SQS

ACCOUNTS = ["222222222223", "222222222224"]
MANIFEST_FILTER = {"Key": {"FilterRules": [{"Name": "suffix", "Value": "-Manifest.json"}]}}


def _notify(s3, sqs, bucket: str, queue_url: str) -> None:
    """What docs/deploy.md asks of a tenant's report bucket: manifests' ObjectCreated events to the queue."""
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": MANIFEST_FILTER}]
        },
    )


@pytest.fixture
def env(blocks_env, aws_env, monkeypatch):
    """globex's CUR 2.0 export in an S3 bucket that notifies the delivery queue; acme_corp and initech stay polled."""
    s3, sqs = boto3.client("s3", endpoint_url=aws_env), boto3.client("sqs", endpoint_url=aws_env)
    run = uuid.uuid4().hex[:8]
    bucket = f"globex-cur-{run}"
    s3.create_bucket(Bucket=bucket)
    queue_url = sqs.create_queue(QueueName=f"deliveries-{run}")["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName=f"deliveries-dlq-{run}")["QueueUrl"]
    _notify(s3, sqs, bucket, queue_url)
    tenant_file = get_settings().tenants_dir / "globex.yaml"
    doc = yaml.safe_load(tenant_file.read_text())
    doc["cur_source"].update(uri=f"s3://{bucket}/exports", event_notifications=True)
    tenant_file.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("BLOCKS_DELIVERY_QUEUE_URL", queue_url)
    monkeypatch.setenv("BLOCKS_DELIVERY_DLQ_URL", dlq_url)
    monkeypatch.setenv("BLOCKS_SQS_ENDPOINT_URL", aws_env)
    monkeypatch.setattr(delivery_sensors, "VISIBILITY_SECONDS", 1)  # a launched delivery's message returns at once
    tenants = load_registry(get_settings().tenants_dir)
    return {
        "s3": s3,
        "sqs": sqs,
        "bucket": bucket,
        "queue": queue_url,
        "dlq": dlq_url,
        "tenants": tenants,
        "defs": dg.Definitions.merge(*(build_ingestion_defs(t) for t in tenants)),
        "instance": dg.DagsterInstance.ephemeral(),
    }


def _deliver(env, bp: str, tmp_path, n: int = 60) -> str:
    return write_export_delivery(
        f"s3://{env['bucket']}/exports",
        "globex-cur2",
        [cur2_frame(n, bp, "222222222222", ACCOUNTS)],
        bp,
        tmp_path / uuid.uuid4().hex,
    )


def _context(env):
    return dg.build_sensor_context(instance=env["instance"], definitions=env["defs"])


def _tick(env):
    result = delivery_queue_sensor(env["tenants"]).evaluate_tick(_context(env))
    return result.run_requests or []


def _launch(env, request: dg.RunRequest) -> None:
    """What the daemon does with a run request: a run carrying its tags exists."""
    create_run_for_test(env["instance"], job_name="__ASSET_JOB", tags=request.tags)


def _depth(env, queue: str = "queue") -> int:
    attrs = env["sqs"].get_queue_attributes(
        QueueUrl=env[queue], AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _dead_letters(env) -> list[tuple[dict, str]]:
    out = (
        env["sqs"]
        .receive_message(QueueUrl=env["dlq"], MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        .get("Messages", [])
    )
    return [
        (
            json.loads(m["Body"]) if m["Body"].startswith("{") else m["Body"],
            m["MessageAttributes"][q.REASON_ATTRIBUTE]["StringValue"],
        )
        for m in out
    ]


def test_a_notified_delivery_is_launched_once_and_its_message_deleted_after_the_launch(env, tmp_path):
    oct_id = _deliver(env, "2026-10", tmp_path)
    assert _depth(env) == 2  # S3's test event (sent when the notification was configured) and the manifest's

    [request] = _tick(env)
    assert request.run_key == oct_id
    assert request.asset_selection == [dg.AssetKey(["globex", "cur_line_items"])]
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-10-01-00:00", "2026-10-31-23:00")
    assert _depth(env) == 1  # the test event is gone; the manifest's stays until its run exists

    _launch(env, request)
    time.sleep(1.2)
    assert _tick(env) == []  # the message came back, its run exists: deleted, nothing launched again
    assert _depth(env) == 0


def test_a_message_whose_run_was_not_launched_comes_back_and_launches_it(env, tmp_path):
    """A daemon dying between the tick and the launch loses nothing: the message is deleted only once a run exists."""
    oct_id = _deliver(env, "2026-10", tmp_path)
    assert [r.run_key for r in _tick(env)] == [oct_id]
    time.sleep(1.2)
    assert [r.run_key for r in _tick(env)] == [oct_id]  # same run_key: the daemon would skip a launched one
    assert _depth(env) == 1


def test_duplicate_and_out_of_order_messages_launch_the_months_newest_delivery_once(env, tmp_path):
    first = _deliver(env, "2026-10", tmp_path)
    second = _deliver(env, "2026-10", tmp_path, n=90)  # AWS rewrote the month: the manifest is replaced
    nov = _deliver(env, "2026-11", tmp_path)
    # SQS standard queues deliver at least once: the first manifest's notification arrives twice
    [first_body] = [
        m["Body"]
        for m in env["sqs"].receive_message(QueueUrl=env["queue"], MaxNumberOfMessages=10, VisibilityTimeout=0)[
            "Messages"
        ]
        if "s3:TestEvent" not in m["Body"]
    ][:1]
    env["sqs"].send_message(QueueUrl=env["queue"], MessageBody=first_body)

    requests = _tick(env)
    assert sorted(r.run_key for r in requests) == sorted([second, nov])  # one per month, October's newest
    assert first not in {r.run_key for r in requests}
    for r in requests:
        _launch(env, r)
    time.sleep(1.2)
    # the older delivery's message arriving late (out of order) finds the month's newest delivery already launched
    env["sqs"].send_message(QueueUrl=env["queue"], MessageBody=first_body)
    assert _tick(env) == []
    assert _depth(env) == 0


def test_a_message_no_tenant_owns_is_dead_lettered_with_its_reason(env, tmp_path):
    stranger = f"stranger-{uuid.uuid4().hex[:8]}"
    env["s3"].create_bucket(Bucket=stranger)
    _notify(env["s3"], env["sqs"], stranger, env["queue"])
    env["s3"].put_object(Bucket=stranger, Key="cur/rep/metadata/BILLING_PERIOD=2026-10/rep-Manifest.json", Body=b"{}")
    env["sqs"].send_message(QueueUrl=env["queue"], MessageBody="not an event")

    assert _tick(env) == []
    letters = _dead_letters(env)
    reasons = sorted(reason for _, reason in letters)
    assert len(reasons) == 2
    assert reasons[0].startswith(
        f"no tenant's cur_source holds s3://{stranger}/cur/rep/metadata/BILLING_PERIOD=2026-10/rep-Manifest.json"
    )
    assert "event_notifications: true" in reasons[0]  # how to fix it
    assert reasons[1].startswith("the body is not JSON")
    [body] = [b for b, r in letters if r == reasons[0]]
    assert body["Records"][0]["s3"]["bucket"]["name"] == stranger  # the original message, as S3 sent it
    assert _depth(env) == 0  # dead-lettered messages leave the delivery queue


def test_a_manifest_not_readable_yet_is_retried_not_dropped(env, tmp_path):
    key = "exports/globex-cur2/metadata/BILLING_PERIOD=2026-10/globex-cur2-Manifest.json"
    env["s3"].put_object(Bucket=env["bucket"], Key=key, Body=b'{"executionId": ')  # AWS still writing it
    assert _tick(env) == []
    assert _depth(env) == 1 and _dead_letters(env) == []  # back after its visibility; SQS's redrive policy decides


def test_notified_tenants_are_not_polled_and_the_others_are(env, tmp_path, monkeypatch):
    _deliver(env, "2026-10", tmp_path)
    polled = delivery_poll_sensor(env["tenants"])(_context(env))
    assert not [r for r in polled.run_requests if "globex" in str(r.asset_selection)]
    assert set(json.loads(polled.cursor)["tenants"]) == {"acme_corp", "initech"}

    monkeypatch.delenv("BLOCKS_DELIVERY_QUEUE_URL")  # no queue deployed: polling is every tenant's fallback
    fallback = delivery_poll_sensor(env["tenants"])(_context(env))
    assert [r.asset_selection for r in fallback.run_requests] == [[dg.AssetKey(["globex", "cur_line_items"])]]
    skipped = delivery_queue_sensor(env["tenants"]).evaluate_tick(_context(env))
    assert "BLOCKS_DELIVERY_QUEUE_URL" in skipped.skip_message


def test_the_poll_sensor_resumes_after_the_tenant_its_time_budget_stopped_at(blocks_env):
    tenants = load_registry(get_settings().tenants_dir)
    sensor = delivery_poll_sensor(tenants, budget_seconds=0.0)  # one tenant per tick
    instance, cursor, order = dg.DagsterInstance.ephemeral(), None, []
    for _ in range(4):
        result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        cursor = result.cursor
        order.append(json.loads(cursor)["after"])
    assert order == ["acme_corp", "globex", "initech", "acme_corp"]  # every tenant in turn, none starved


# ---- parsing and routing (pure) -------------------------------------------------------------------------------------


def _s3_event(bucket: str, key: str) -> dict:
    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "eventTime": "2026-10-02T03:00:00.000Z",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
            }
        ]
    }


def test_parse_message_reads_s3_eventbridge_and_sns_wrapped_events():
    key = "cur/my+report/metadata/BILLING_PERIOD=2026-10/my report-Manifest.json"
    [obj] = q.parse_message(json.dumps(_s3_event("b", key.replace(" ", "+"))))
    assert obj.key == key.replace("+", " ")  # S3 URL-encodes keys in notifications
    eventbridge = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "time": "2026-10-02T03:00:00Z",
        "detail": {"bucket": {"name": "b"}, "object": {"key": "k-Manifest.json"}},
    }
    assert [o.uri for o in q.parse_message(json.dumps(eventbridge))] == ["s3://b/k-Manifest.json"]
    sns = {"Type": "Notification", "Message": json.dumps(_s3_event("b", "x-Manifest.json"))}
    assert [o.is_manifest for o in q.parse_message(json.dumps(sns))] == [True]
    assert q.parse_message(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == []
    with pytest.raises(q.UnusableMessage, match="neither S3 notification Records nor an EventBridge"):
        q.parse_message(json.dumps({"hello": "world"}))


def test_billing_period_of_both_layouts():
    assert q.billing_period_of("cur/rep/20261001-20261101/rep-Manifest.json") == "2026-10"
    assert q.billing_period_of("cur/rep/metadata/BILLING_PERIOD=2026-11/rep-Manifest.json") == "2026-11"
    assert q.billing_period_of("cur/rep/rep-Manifest.json") is None


def test_router_picks_the_tenant_whose_report_prefix_holds_the_key(blocks_env):
    acme, globex = (t for t in load_registry(get_settings().tenants_dir) if t.id in ("acme_corp", "globex"))
    shared = [
        acme.model_copy(update={"cur_source": acme.cur_source.model_copy(update={"uri": "s3://shared/a"})}),
        globex.model_copy(update={"cur_source": globex.cur_source.model_copy(update={"uri": "s3://shared"})}),
    ]
    router = q.TenantRouter(shared)
    a_key = f"a/{acme.cur_source.report_name}/20261001-20261101/x-Manifest.json"
    g_key = f"{globex.cur_source.report_name}/metadata/BILLING_PERIOD=2026-10/x-Manifest.json"
    assert router.route(q.ObjectCreated("shared", a_key)).id == "acme_corp"
    assert router.route(q.ObjectCreated("shared", g_key)).id == "globex"
    assert router.route(q.ObjectCreated("shared", "elsewhere/x-Manifest.json")) is None
    assert router.route(q.ObjectCreated("other", a_key)) is None


def test_another_code_locations_delivery_is_released_not_dead_lettered(env, tmp_path):
    """Shards share the queue: a location without globex leaves globex's message for the location that has it."""
    oct_id = _deliver(env, "2026-10", tmp_path)
    others = [t for t in env["tenants"] if t.id != "globex"]
    result = delivery_queue_sensor(others).evaluate_tick(_context(env))
    assert not result.run_requests and "released to another code location" in result.skip_message
    assert _dead_letters(env) == [] and _depth(env) == 1
    assert [r.run_key for r in _tick(env)] == [oct_id]  # visible at once to globex's location


def test_event_notifications_need_an_s3_source(blocks_env):
    from pydantic import ValidationError

    globex = next(t for t in load_registry(get_settings().tenants_dir) if t.id == "globex")
    doc = globex.model_dump(mode="json")
    doc["cur_source"]["event_notifications"] = True  # its uri is a local folder
    with pytest.raises(ValidationError, match="event_notifications needs an s3:// uri"):
        type(globex).model_validate(doc)
