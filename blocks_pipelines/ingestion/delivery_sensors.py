"""The code location's CUR delivery sensors, one of each whatever its tenant count (issue #16).

- `cur_delivery_queue_sensor` drains the delivery queue (S3 event notifications, ingestion/delivery_queue.py) for
  every tenant whose cur_source has event_notifications: a delivery is launched within one tick of landing.
- `cur_delivery_sensor` polls the others (no notifications, local folders, or no queue configured), tenant after
  tenant within a time budget per tick, resuming where it stopped: 2,000 polled tenants make slower rounds, never
  a daemon that falls behind on every other sensor.
Both launch one run per (tenant, billing month) with run_key = delivery id (ingestion/defs.delivery_run_request).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg

from blocks_pipelines.ingestion.defs import (
    DELIVERY_TAG,
    _already_ingested,
    delivery_run_request,
)
from blocks_pipelines.sensor_intervals import every
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig, load_registry
from blocks_pipelines.tenants.rotation import rotation

POLL_INTERVAL_SECONDS = 60
POLL_BUDGET_SECONDS = 40.0  # of the 60 s interval: the daemon's other sensors keep their ticks
# An empty queue costs one ReceiveMessage (a tick p50 0.1 s): ticking often is what makes a delivery reach the API
# within a minute. At 15 s the wait for the tick was 8.5-13 s of a 58-63 s delivery (bench_freshness_daemon.py).
QUEUE_INTERVAL_SECONDS = 10
QUEUE_BATCH = 500  # messages per tick (50 ReceiveMessage calls)
# A message stays in the queue until the run it asked for exists, so a daemon dying between the tick and the launch
# loses nothing; it comes back after this long and is deleted then.
VISIBILITY_SECONDS = 60


def _line_items(tenant_ids: Sequence[str]) -> list[dg.AssetKey]:
    return [dg.AssetKey([t, "cur_line_items"]) for t in sorted(tenant_ids)]


def queue_enabled(tenant: TenantConfig) -> bool:
    return tenant.cur_source.event_notifications and bool(get_settings().delivery_queue_url)


# ---- polling ------------------------------------------------------------------------------------------------------


def poll_tenant(
    instance: dg.DagsterInstance, tenant: TenantConfig, state: dict, now: datetime, log
) -> list[dg.RunRequest]:
    """New deliveries of one tenant since its state ({"deliveries": {period: id}, "final": {period: bool}})."""
    from blocks_pipelines.ingestion.deliveries import discover_deliveries

    seen: dict[str, str] = state.setdefault("deliveries", {})
    final: dict[str, bool] = state.setdefault("final", {})
    requests = []
    for d in discover_deliveries(tenant, today=now.date()):
        if not d.billing_period or seen.get(d.billing_period) == d.delivery_id:
            continue
        if _already_ingested(instance, d.delivery_id):
            # ingested by another path (`blocks materialize`, a manual launch): nothing to launch again
            seen[d.billing_period], final[d.billing_period] = d.delivery_id, d.is_final
            continue
        request = delivery_run_request(tenant, d, now)
        if request is None:
            continue
        requests.append(request)
        seen[d.billing_period], final[d.billing_period] = d.delivery_id, d.is_final
        log.info(f"{tenant.id} {d.billing_period}: delivery {d.delivery_id} (final={d.is_final})")
    return requests


def delivery_poll_sensor(tenants: Sequence[TenantConfig], budget_seconds: float = POLL_BUDGET_SECONDS):
    by_id = {t.id: t for t in tenants}

    @dg.sensor(
        name="cur_delivery_sensor",
        asset_selection=_line_items(list(by_id)),
        minimum_interval_seconds=every(POLL_INTERVAL_SECONDS),
        default_status=dg.DefaultSensorStatus.RUNNING,  # a new CUR delivery must be ingested without anyone acting
        description="Polls the tenants without S3 event notifications for new CUR deliveries (manifests) and "
        "launches each one's month range once.",
    )
    def cur_delivery_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        states: dict[str, dict] = cursor.setdefault("tenants", {})
        polled = sorted(t for t, tenant in by_id.items() if not queue_enabled(tenant))
        now, started, requests, stopped_at = datetime.now(UTC), time.monotonic(), [], None
        for t in rotation(polled, cursor.get("after")):
            requests += poll_tenant(context.instance, by_id[t], states.setdefault(t, {}), now, context.log)
            stopped_at = t
            if time.monotonic() - started > budget_seconds:  # checked after one tenant: every tick progresses
                context.log.info(f"poll budget ({budget_seconds:.0f} s) used: resuming after {stopped_at}")
                break
        else:
            stopped_at = None  # a whole round: the next tick starts from the first tenant again
        cursor["after"] = stopped_at
        for gone in set(states) - set(by_id):
            del states[gone]
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, separators=(",", ":")))

    return cur_delivery_sensor


# ---- queue --------------------------------------------------------------------------------------------------------


def _launched(instance: dg.DagsterInstance, delivery_id: str) -> bool:
    """A run for this delivery exists, whatever its status: its message has done its job."""
    return bool(instance.get_run_records(filters=dg.RunsFilter(tags={DELIVERY_TAG: delivery_id}), limit=1))


def delivery_queue_sensor(tenants: Sequence[TenantConfig], batch: int = QUEUE_BATCH):
    by_id = {t.id: t for t in tenants}

    @dg.sensor(
        name="cur_delivery_queue_sensor",
        asset_selection=_line_items(list(by_id)),
        minimum_interval_seconds=every(QUEUE_INTERVAL_SECONDS),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Drains the delivery queue (S3 event notifications of CUR manifests) for every tenant with "
        "event_notifications; launches each new delivery's month range once (run_key = delivery id).",
    )
    def cur_delivery_queue_sensor(context: dg.SensorEvaluationContext):
        settings = get_settings()
        if not settings.delivery_queue_url:
            return dg.SkipReason("no delivery queue configured (BLOCKS_DELIVERY_QUEUE_URL): every tenant is polled")
        notified = [t for t in by_id.values() if t.cur_source.event_notifications]
        outcome = drain(
            context.instance,
            notified,
            settings.delivery_queue_url,
            settings.delivery_dead_letter_url,
            batch,
            context.log,
        )
        if not outcome.requests:
            return dg.SkipReason(outcome.summary())
        context.log.info(outcome.summary())
        return outcome.requests

    return cur_delivery_queue_sensor


class DrainOutcome:
    def __init__(self):
        self.requests: list[dg.RunRequest] = []
        self.counts: dict[str, int] = defaultdict(int)

    def summary(self) -> str:
        parts = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items()))
        return f"{len(self.requests)} deliveries launched" + (f"; messages: {parts}" if parts else "; queue empty")


def drain(
    instance: dg.DagsterInstance, tenants: Sequence[TenantConfig], queue_url: str, dlq_url: str | None, batch: int, log
) -> DrainOutcome:
    """One pass over up to `batch` messages: each is deleted once what it announces has a run (or needs none),
    dead-lettered with a reason when no tenant of the deployment can use it, released when another code location's
    tenant owns it, and otherwise left to come back (the run it asked for is being launched)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from blocks_pipelines.ingestion import delivery_queue as q
    from blocks_pipelines.ingestion.deliveries import read_manifest, tenant_manifest_uri
    from blocks_pipelines.ingestion.errors import IngestError
    from blocks_pipelines.tenants.config import resolve_source_uri

    out, router = DrainOutcome(), q.TenantRouter(tenants)
    messages = q.receive(queue_url, max_messages=batch, visibility_timeout=VISIBILITY_SECONDS)
    done: list[str] = []
    elsewhere: list[str] = []
    deployment: list = []  # the whole deployment's router, built on the first message this location cannot route
    months: dict[tuple[str, str], list[str]] = defaultdict(list)  # (tenant, period) -> receipt handles
    for m in messages:
        handle = m["ReceiptHandle"]
        try:
            objects = [o for o in q.parse_message(m["Body"]) if o.is_manifest]
            targets = [_month(router, o) for o in objects]
        except q.UnusableMessage as exc:
            out.counts["dead-lettered"] += 1
            done += [handle] if _dead_letter(dlq_url, m, str(exc), log) else []
            continue
        known = {target for target in targets if target is not None}
        unknown = [o for o, target in zip(objects, targets, strict=False) if target is None]
        if unknown and not known:
            if _owned_elsewhere(unknown[0], deployment):
                out.counts["released to another code location"] += 1
                elsewhere.append(handle)
            else:
                out.counts["dead-lettered"] += 1
                reason = (
                    f"no tenant's cur_source holds {unknown[0].uri}: add the tenant file (cur_source.uri, "
                    "report_name, event_notifications: true) or remove this bucket's notification"
                )
                done += [handle] if _dead_letter(dlq_url, m, reason, log) else []
            continue
        if unknown:
            log.warning(f"message {m.get('MessageId')}: no tenant of this code location holds {unknown[0].uri}")
        if not known:
            out.counts["without a manifest"] += 1  # S3's test event, a data file: nothing to do
            done.append(handle)
        for target in known:
            months[target].append(handle)
    now = datetime.now(UTC)
    for (t, period), handles in sorted(months.items()):
        tenant = next(x for x in tenants if x.id == t)
        try:
            root = resolve_source_uri(tenant.cur_source, get_settings().home)
            delivery = read_manifest(tenant_manifest_uri(tenant, period, root), root)
        except (IngestError, OSError, BotoCoreError, ClientError) as exc:
            # not readable yet (AWS still writing) or broken: the message returns; after the queue's
            # maxReceiveCount, SQS's redrive policy moves it to the dead-letter queue
            log.warning(f"{t} {period}: newest manifest unreadable, retried later: {exc}")
            out.counts["retried"] += len(handles)
            continue
        if _launched(instance, delivery.delivery_id):
            out.counts["already launched (duplicate or older)"] += len(handles)
            done += handles
            continue
        request = delivery_run_request(tenant, delivery, now)
        if request is None:
            out.counts["no complete hour yet"] += len(handles)
            done += handles
            continue
        log.info(f"{t} {period}: delivery {delivery.delivery_id} from {len(handles)} message(s)")
        out.requests.append(request)
        out.counts["launching"] += len(handles)
    if done:
        q.delete(queue_url, done)
    if elsewhere:
        q.release(queue_url, elsewhere)
    return out


def _month(router, obj) -> tuple[str, str] | None:
    from blocks_pipelines.ingestion import delivery_queue as q

    tenant = router.route(obj)
    if tenant is None:
        return None
    period = q.billing_period_of(obj.key)
    if period is None:
        raise q.UnusableMessage(
            f"{obj.uri} is a manifest outside a billing period folder (YYYYMMDD-YYYYMMDD/ or BILLING_PERIOD=YYYY-MM/)"
        )
    return tenant.id, period


def _owned_elsewhere(obj, deployment: list) -> bool:
    """A tenant of the deployment (another code location's shard) owns this object. `deployment` holds the router
    over every tenant file, read at most once per tick (2,000 YAML files), when the first such message comes."""
    from blocks_pipelines.ingestion.delivery_queue import TenantRouter

    if not deployment:
        deployment.append(
            TenantRouter(t for t in load_registry(get_settings().tenants_dir) if t.cur_source.event_notifications)
        )
    return deployment[0].route(obj) is not None


def _dead_letter(dlq_url: str | None, message: dict, reason: str, log) -> bool:
    """Sent to the dead-letter queue with its reason (True), or, none configured, left in the queue for its redrive
    policy to move after maxReceiveCount receives (False)."""
    from blocks_pipelines.ingestion import delivery_queue as q

    log.warning(f"delivery message {message.get('MessageId')} unusable: {reason}")
    if not dlq_url:
        return False
    q.dead_letter(dlq_url, message["Body"], reason)
    return True


def build_ingestion_location_defs(tenants: Sequence[TenantConfig]) -> dg.Definitions:
    """What the code location adds once for all its tenants: the two delivery sensors and Cost Explorer's."""
    from blocks_pipelines.ingestion.cost_explorer_defs import can_use_cost_explorer, cost_explorer_location_sensor

    sensors = [delivery_poll_sensor(tenants), delivery_queue_sensor(tenants)]
    if any(can_use_cost_explorer(t) for t in tenants):  # local sample-data tenants have no Cost Explorer asset
        sensors.append(cost_explorer_location_sensor(tenants))
    return dg.Definitions(sensors=sensors)
