"""Delivery to served with real orchestration: S3 upload -> S3 event -> SQS -> dagster-daemon -> API (issue #16).

bench_freshness.py runs each stage in process; this one runs the deployment's path and reads the timeline back:

- a moto server (its own process, on 127.0.0.1) is S3 and SQS; the tenant's cur_source is a bucket there with
  `event_notifications: true`, and the bucket notifies the delivery queue of its manifests (docs/deploy.md,
  "Event-driven deliveries"); BLOCKS_DELIVERY_QUEUE_URL points at it;
- `dagster-daemon run` with the repository's dagster.yaml (QueuedRunCoordinator, default run launcher: each run is
  a subprocess of the code server) and one code location; its cur_delivery_queue_sensor launches the month run,
  its models_refresh_sensor the marts run;
- the API in process (FastAPI TestClient over serving/, a dev JWT), polled every 0.5 s.

A small baseline month is delivered and built in process first (onboarding, not timed). Then, per re-delivery of a
BENCH_FRESHNESS_ROWS-row month (default 200,000; BENCH_FRESHNESS_REPEATS, default 3), the stages are:

  upload          data file, then the manifest, to the bucket (not in the total: AWS's own delivery)
  queue wait      manifest landed -> the queue sensor tick that launched the run starts (up to one 10 s cadence)
  queue tick      that tick -> the ingestion run exists
  ingest queued   run created -> run started (run coordinator dequeue, run subprocess start, code load)
  ingestion run   the month run (read from S3, normalize, lake write, checks)
  marts wait      ingestion run ended -> marts run started: the refresh sensor's tick (it may launch the run as soon
                  as the line items are materialized, before the ingestion's checks end; the run then waits for the
                  tenant's run slot), the coordinator's dequeue, the run subprocess start
  marts run       dbt build over the month's days, rollups, monitoring, export
  API             marts run ended -> GET /api/spend over the month returns the exported total (the API checks the
                  marts every 5 s; negative when it answers before the run's steps after the export end)
  total           manifest landed -> served

Run: python -m benchmarks.bench_freshness_daemon          Target: delivery to served p95 < 60 s (200k-row month).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote_plus

import yaml

from benchmarks.bench_daemon import start_daemon, stop_process_group
from benchmarks.bench_freshness import ACCOUNTS, _prepare, _served_total
from blocks_pipelines.models.refresh import REFRESH_INTERVAL_SECONDS
from blocks_pipelines.sensor_intervals import cadence_of, every

REPORT = "globex-cur2"
BUCKET = "globex-cur"
MANIFEST_FILTER = {"Key": {"FilterRules": [{"Name": "suffix", "Value": "-Manifest.json"}]}}
STAGES = (
    "queue wait",
    "queue tick",
    "ingest queued",
    "ingestion run",
    "marts wait",
    "marts run",
    "API",
)
POLL_SECONDS = 0.5
TIMEOUT_SECONDS = 600


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_moto(log: Path) -> tuple[subprocess.Popen, str]:
    """moto in its own process, so the API polls of this one never slow its answers to the daemon's runs."""
    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, endpoint
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"moto_server did not listen on {endpoint}: see {log}")


def _aws(endpoint: str) -> None:
    """Bucket + delivery queue on moto, the bucket's manifests notifying the queue; the environment to use them."""
    import boto3

    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "BLOCKS_S3_ENDPOINT_URL": endpoint,
        "BLOCKS_SQS_ENDPOINT_URL": endpoint,
    }
    os.environ.update(env)
    s3, sqs = boto3.client("s3", endpoint_url=endpoint), boto3.client("sqs", endpoint_url=endpoint)
    s3.create_bucket(Bucket=BUCKET)
    queue = sqs.create_queue(QueueName="cur-deliveries")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="cur-deliveries-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"], "Filter": MANIFEST_FILTER}]
        },
    )
    os.environ.update({"BLOCKS_DELIVERY_QUEUE_URL": queue, "BLOCKS_DELIVERY_DLQ_URL": dlq})


def _queue_depth(queue_url: str) -> int:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=os.environ["BLOCKS_SQS_ENDPOINT_URL"])
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _manifest_messages(queue_url: str) -> list[str]:
    """The manifest keys the queue announces, read without consuming them (visibility 0)."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=os.environ["BLOCKS_SQS_ENDPOINT_URL"])
    out = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    keys = []
    for m in out:
        body = json.loads(m["Body"])
        keys += [unquote_plus(r["s3"]["object"]["key"]) for r in body.get("Records", [])]  # S3 URL-encodes keys
    return keys


def _send_s3_event(queue_url: str, key: str) -> None:
    """The message S3 would send for a new manifest: used only if moto's notification does not fire."""
    import boto3

    sqs = boto3.client("sqs", endpoint_url=os.environ["BLOCKS_SQS_ENDPOINT_URL"])
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}},
    }
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [record]}))


def _manifest_key(month: str) -> str:
    return f"exports/{REPORT}/metadata/BILLING_PERIOD={month}/{REPORT}-Manifest.json"


class Timeline:
    """Reads the runs and sensor ticks of one delivery back from the instance the daemon writes."""

    def __init__(self, instance):
        self.instance = instance

    def sensor_ticks(self, name: str, limit: int = 200) -> list:
        from dagster._core.scheduler.instigation import InstigatorType

        for state in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.instigator_name == name:
                return self.instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=limit)
        return []

    def tick_of(self, sensor: str, run_id: str):
        return next((t for t in self.sensor_ticks(sensor) if run_id in t.run_ids), None)

    def failed_tick(self, sensor: str, after: float) -> str | None:
        """The error of a tick of `sensor` that failed after `after` (the bench stops instead of waiting it out)."""
        from dagster._core.scheduler.instigation import TickStatus

        for t in self.sensor_ticks(sensor, limit=20):
            if t.timestamp > after and t.status == TickStatus.FAILURE:
                return t.error.message if t.error else "no error recorded"
        return None

    def run(self, tags: dict[str, str], created_after: float | None = None):
        """The first run carrying `tags` created after `created_after` (epoch seconds), if any yet."""
        import dagster as dg

        after = datetime.fromtimestamp(created_after, UTC) if created_after else None
        records = self.instance.get_run_records(
            filters=dg.RunsFilter(tags=tags, created_after=after), limit=1, ascending=True
        )
        return records[0] if records else None


def _finished(record) -> bool:
    from dagster import DagsterRunStatus

    if record.dagster_run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
        raise SystemExit(f"run {record.dagster_run.run_id} {record.dagster_run.status.value}: see the daemon log")
    return record.dagster_run.status == DagsterRunStatus.SUCCESS


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    rows = int(os.environ.get("BENCH_FRESHNESS_ROWS", 200_000))
    repeats = int(os.environ.get("BENCH_FRESHNESS_REPEATS", 3))
    with tempfile.TemporaryDirectory(prefix="bench-freshness-daemon-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        baseline, month = _prepare(work)
        moto, endpoint = _start_moto(work / "moto.log")
        daemon = None
        try:
            _aws(endpoint)
            doc = yaml.safe_load((work / "assets_config/tenants/globex.yaml").read_text())
            doc["cur_source"].update(uri=f"s3://{BUCKET}/exports", event_notifications=True)
            (work / "assets_config/tenants/globex.yaml").write_text(yaml.safe_dump(doc))
            (work / "dagster_home").mkdir()
            shutil.copyfile(Path(__file__).resolve().parent.parent / "dagster.yaml", work / "dagster_home/dagster.yaml")
            os.environ["DAGSTER_HOME"] = str(work / "dagster_home")
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
            print(
                f"rows per month {rows:,}, re-deliveries {repeats}, moto (S3 + SQS) at {endpoint}, "
                f"load average before {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            notified = _baseline(work, baseline)
            print("starting dagster-daemon (queue sensor, refresh sensor, run coordinator, default launcher) ...")
            daemon = start_daemon(work, env, shards=1)
            results = _measure(work, daemon, month, rows, repeats, notified)
        except BaseException:
            log = work / "daemon.log"
            if log.exists():
                print("--- daemon log (tail) ---\n" + "\n".join(log.read_text().splitlines()[-40:]), file=sys.stderr)
            raise
        finally:
            if daemon is not None:
                stop_process_group(daemon)
            stop_process_group(moto)
    _print(results, notified)


def _deliver(work: Path, period: str, frame) -> str:
    """Data file, then the manifest (write_export_delivery's order, AWS's too); returns the delivery id."""
    from tests.synthetic.cur_frames import write_export_delivery

    workdir = work / f"upload-{period}"
    delivery_id = write_export_delivery(f"s3://{BUCKET}/exports", REPORT, [frame], period, workdir)
    shutil.rmtree(workdir, ignore_errors=True)
    return delivery_id


def _baseline(work: Path, baseline: str) -> bool:
    """Onboarding, in process and untimed: a small month delivered to the bucket and the tenant's whole graph built.
    Returns whether moto's S3 -> SQS notification fired for its manifest (else the bench sends the event itself)."""
    import dagster as dg

    from blocks_pipelines.in_process import materialize_tenant
    from blocks_pipelines.settings import get_settings
    from blocks_pipelines.tenants.config import load_registry

    queue = os.environ["BLOCKS_DELIVERY_QUEUE_URL"]
    from tests.synthetic.cur_frames import cur2_frame

    _deliver(work, baseline, cur2_frame(2_000, baseline, "222222222222", ACCOUNTS))
    deadline = time.time() + 10
    while _manifest_key(baseline) not in _manifest_messages(queue) and time.time() < deadline:
        time.sleep(0.2)
    notified = _manifest_key(baseline) in _manifest_messages(queue)
    print(
        f"S3 -> SQS: the baseline manifest's upload {'put' if notified else 'did NOT put'} an ObjectCreated message "
        f"on the delivery queue (depth {_queue_depth(queue)}, S3's test event included)"
    )
    print("baseline: a small month, the tenant's whole graph built in process as onboarding does ...", flush=True)
    [tenant] = load_registry(get_settings().tenants_dir)
    with dg.DagsterInstance.get() as instance:
        summary = materialize_tenant(tenant, instance=instance, echo=lambda *_: None)
    assert summary.ok, summary
    return notified


def _measure(work: Path, daemon, month: str, rows: int, repeats: int, notified: bool) -> list[dict[str, float]]:
    import dagster as dg
    from fastapi.testclient import TestClient

    from blocks_pipelines.ingestion.defs import DELIVERY_TAG
    from blocks_pipelines.ingestion.deliveries import month_bounds
    from blocks_pipelines.settings import get_settings
    from serving.app import create_app
    from serving.testing import dev_headers
    from tests.synthetic.cur_frames import cur2_frame

    queue = os.environ["BLOCKS_DELIVERY_QUEUE_URL"]
    start, end = month_bounds(month)
    first, last = f"{start:%Y-%m-%d}", f"{(end - timedelta(days=1)):%Y-%m-%d}"
    url = f"/api/spend?start={first}&end={last}&cost_type=amortized"
    sensor_tag = "dagster/sensor_name"
    results = []
    with dg.DagsterInstance.get() as instance, TestClient(create_app()) as client:
        timeline = Timeline(instance)
        headers = dev_headers(get_settings().home, "globex")
        t0 = time.time()
        # ready once both sensors ticked and the baseline's message was drained (its delivery already ingested)
        while not (
            timeline.sensor_ticks("cur_delivery_queue_sensor", 1)
            and timeline.sensor_ticks("models_refresh_sensor", 1)
            and _queue_depth(queue) == 0
        ):
            if daemon.poll() is not None or time.time() - t0 > TIMEOUT_SECONDS:
                raise SystemExit(f"the daemon's sensors did not start ticking (queue depth {_queue_depth(queue)})")
            time.sleep(1)
        print(f"daemon start to both sensors ticking: {time.time() - t0:.1f} s", flush=True)
        phase = random.Random(7)
        for k in range(repeats):
            frame = cur2_frame(rows + k, month, "222222222222", ACCOUNTS, offset=k * 7)  # each one changes the total
            _settle(instance)  # deliveries come hours apart: none lands behind the previous one's runs
            # a delivery lands at any moment of the sensors' cadence, not just after the last tick: without the draw
            # the settle loop set the phase, and every re-delivery but the first met a tick at once
            time.sleep(phase.uniform(0, REFRESH_INTERVAL_SECONDS))
            previous = client.get(url, headers=headers).json()["totals"]["cost"]
            uploaded = time.time()
            delivery_id = _deliver(work, month, frame)
            landed = time.time()
            if not notified:
                _send_s3_event(queue, _manifest_key(month))
            polls: list[tuple[float, float]] = []
            ingest = marts = None
            expected = served = None
            while served is None:
                now = time.time()
                if now - landed > TIMEOUT_SECONDS:
                    raise SystemExit(
                        f"re-delivery {k + 1} not served after {TIMEOUT_SECONDS} s (runs: {ingest}, {marts})"
                    )
                polls.append((now, client.get(url, headers=headers).json()["totals"]["cost"]))
                if ingest is None or not _finished(ingest):
                    ingest = timeline.run({DELIVERY_TAG: delivery_id})
                for sensor, after in (("cur_delivery_queue_sensor", landed), ("models_refresh_sensor", landed)):
                    error = timeline.failed_tick(sensor, after)
                    if error:
                        raise SystemExit(f"{sensor} tick failed: {error}")
                if ingest is not None and _finished(ingest) and (marts is None or not _finished(marts)):
                    marts = timeline.run({sensor_tag: "models_refresh_sensor"}, ingest.create_timestamp.timestamp())
                if marts is not None and _finished(marts) and expected is None:
                    expected = _served_total(first, last)
                    if abs(expected - previous) < 1e-3:
                        raise SystemExit(f"re-delivery {k + 1} did not change the month's total ({expected})")
                if expected is not None:
                    served = next((t for t, cost in polls if abs(cost - expected) < 1e-3), None)
                time.sleep(POLL_SECONDS)
            launcher = ingest.dagster_run.tags.get(sensor_tag)
            if launcher != "cur_delivery_queue_sensor":
                raise SystemExit(f"the delivery was launched by {launcher!r}, not the delivery queue sensor")
            tick = timeline.tick_of("cur_delivery_queue_sensor", ingest.dagster_run.run_id)
            created = ingest.create_timestamp.timestamp()
            tick_start = tick.timestamp if tick is not None else created
            marts_created = marts.create_timestamp.timestamp()
            measure = {
                "upload": landed - uploaded,
                "queue wait": tick_start - landed,
                "queue tick": created - tick_start,
                "ingest queued": ingest.start_time - created,
                "ingestion run": ingest.end_time - ingest.start_time,
                "marts wait": marts.start_time - ingest.end_time,
                "marts run": marts.end_time - marts.start_time,
                "API": served - marts.end_time,
                "total": served - landed,
            }
            print(
                f"  re-delivery {k + 1}: {measure['total']:.1f} s from the manifest landing (upload "
                f"{measure['upload']:.1f}; " + ", ".join(f"{s} {measure[s]:.1f}" for s in STAGES) + "); marts run "
                f"launched {marts_created - ingest.end_time:+.1f} s from the ingestion run's end",
                flush=True,
            )
            results.append(measure)
            time.sleep(cadence_of(every(REFRESH_INTERVAL_SECONDS)))  # one more refresh tick, then every run's end
            _settle(instance)
            measured = {ingest.dagster_run.run_id, marts.dagster_run.run_id}
            measure["refresh runs"] = _print_runs(instance, landed, measured)
    return results


def _settle(instance) -> None:
    """Until no run is queued or in progress."""
    import dagster as dg

    busy = [
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.NOT_STARTED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
    ]
    t0 = time.time()
    while instance.get_run_records(filters=dg.RunsFilter(statuses=busy), limit=1):
        if time.time() - t0 > TIMEOUT_SECONDS:
            raise SystemExit("runs still in progress after the timeout")
        time.sleep(1)


def _print_runs(instance, since: float, measured: set[str]) -> int:
    """Every run created since the manifest landed, relative to it (what else held the tenant's run slot); returns
    how many the refresh sensor launched."""
    refreshes = 0
    for r in reversed(instance.get_run_records(limit=20)):
        created = r.create_timestamp.timestamp()
        if created < since - 1:
            continue
        run = r.dagster_run
        at = lambda t: f"{t - since:6.1f}" if t else "     -"  # noqa: E731
        by = run.tags.get("dagster/sensor_name") or run.tags.get("dagster/schedule_name") or "-"
        refreshes += by == "models_refresh_sensor"
        print(
            f"    {'*' if run.run_id in measured else ' '} run {run.run_id[:8]} by {by:28}"
            f" created {at(created)} started {at(r.start_time)} ended {at(r.end_time)} {run.status.value:8} "
            f"{len(run.asset_selection or ())} assets {run.tags.get('dagster/asset_partition_range_start', '')}.."
            f"{run.tags.get('dagster/asset_partition_range_end', '')}"
        )
    return refreshes


def _print(results: list[dict[str, float]], notified: bool) -> None:
    print(f"{'stage':16} {'p50 s':>7} {'max s':>7}")
    for stage in ("upload", *STAGES, "total"):
        values = [r[stage] for r in results]
        print(f"{stage:16} {statistics.median(values):7.2f} {max(values):7.2f}")
    print(
        "marts runs the refresh sensor launched per delivery: "
        + ", ".join(str(r["refresh runs"]) for r in results)
        + " (the measured one is the first; a second one over the same days means a tick saw only part of the "
        "ingestion run's per-hour materializations)"
    )
    source = "moto's S3 event notification" if notified else "an S3 event message the bench sent (moto's did not fire)"
    print(
        f"delivery to served (manifest landed -> API), real daemon, message from {source}: "
        f"max {max(r['total'] for r in results):.1f} s   target p95 < 60 s; load average after "
        f"{os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    sys.exit(main())
