"""What happened to a code location's assets since a cursor, read once for all its tenants (issue #16).

A sensor per tenant asked the event log about its own keys each tick: 2,000 tenants made 2,000 sensors and as many
queries a minute whether or not anything happened. One sensor per code location instead reads the event log's
materializations (or observations) after its cursor in storage-id order, one indexed query
(dagster_event_type, id) per page, and groups them by tenant: the cost follows what happened, not the tenant count.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

import dagster as dg

PAGE = 5000
# A tick reads at most this many events (a month's delivery writes 744, one per hour); the cursor keeps the rest
# for the next tick, so a backlog (a first start over months of history) never makes one tick unbounded.
MAX_EVENTS_PER_TICK = 100_000


@dataclass(frozen=True)
class AssetEvent:
    storage_id: int
    tenant_id: str
    name: str  # the asset key's last part: [tenant, name]
    partition: str | None
    metadata: dict
    run_id: str = ""  # "" for runless events (report_runless_asset_event)

    @classmethod
    def of(cls, record: dg.EventLogRecord) -> AssetEvent | None:
        entry = record.event_log_entry
        event = entry.asset_materialization or entry.asset_observation
        if event is None or len(event.asset_key.path) != 2:
            return None
        tenant_id, name = event.asset_key.path
        return cls(record.storage_id, tenant_id, name, event.partition, dict(event.metadata), entry.run_id)


def asset_events_after(
    instance: dg.DagsterInstance,
    event_type: dg.DagsterEventType,
    after: int | None,
    names: Collection[str],
    tenant_ids: Collection[str],
    limit: int = MAX_EVENTS_PER_TICK,
) -> tuple[list[AssetEvent], int | None]:
    """Events of `event_type` after storage id `after` on keys [t, name] (t in tenant_ids, name in names), in order,
    and the storage id to resume from (the last event read, whatever its key)."""
    found: list[AssetEvent] = []
    last = after
    for record in _records(instance, event_type, after, limit):
        last = record.storage_id
        event = AssetEvent.of(record)
        if event is not None and event.name in names and event.tenant_id in tenant_ids:
            found.append(event)
    return found, last


def _records(
    instance: dg.DagsterInstance, event_type: dg.DagsterEventType, after: int | None, limit: int
) -> Iterator[dg.EventLogRecord]:
    # The storage's own query: DagsterInstance.get_event_records is deprecated for asset events in favour of
    # fetch_materializations, which needs one asset key per call, the very cost this module removes.
    storage = instance.event_log_storage
    read = 0
    while read < limit:
        want = min(PAGE, limit - read)
        page = storage.get_event_records(
            dg.EventRecordsFilter(event_type=event_type, after_cursor=after), limit=want, ascending=True
        )
        yield from page
        read += len(page)
        if len(page) < want:
            return
        after = page[-1].storage_id
