"""One writer per (tenant, billing month): a lease taken around a month's write.

Locally an exclusive flock on the month's `_lease` file (the kernel drops it when the holder dies, so a killed run
never blocks the next). On S3 the lease is an object created with a conditional write (PutObject If-None-Match),
holding its owner and expiry: a lease left by a killed run is taken over once expired, again conditionally
(If-Match on the expired lease's ETag), so two takers cannot both win. The pointer swap itself is conditional
too (blocks_pipelines.lake.months), so even a writer that outlived its lease cannot overwrite a newer month.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

from blocks_pipelines.lake import fs, layout

LEASE_TTL = timedelta(minutes=30)  # far above a month's publish (seconds to a couple of minutes)
POLL_SECONDS = 0.2


class LeaseHeldError(RuntimeError):
    """Another writer holds the month's lease and did not release it within the wait."""

    def __init__(self, tenant_id: str, billing_period: str, holder: dict, waited: float):
        self.tenant_id, self.billing_period, self.holder = tenant_id, billing_period, holder
        who = ", ".join(f"{k} {holder[k]}" for k in ("owner", "host", "pid", "acquired_at") if holder.get(k))
        super().__init__(
            f"another ingest of tenant {tenant_id} billing month {billing_period} is writing it "
            f"({who or 'holder unknown'}); waited {waited:.0f}s"
        )


def _holder(owner: str, now: datetime) -> dict:
    return {
        "owner": owner,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "acquired_at": now.isoformat(),
        "expires_at": (now + LEASE_TTL).isoformat(),
    }


@contextmanager
def month_lease(
    lake_uri: str, tenant_id: str, billing_period: str, *, owner: str, wait_seconds: float = 0.0
) -> Iterator[dict]:
    """Hold the (tenant, month) lease for the block; waits up to wait_seconds for another holder, then raises
    LeaseHeldError naming it."""
    uri = layout.line_items_lease_uri(lake_uri, tenant_id, billing_period)
    lease = _s3_lease if fs.is_s3(uri) else _local_lease
    with lease(uri, tenant_id, billing_period, owner, wait_seconds) as holder:
        yield holder


@contextmanager
def _local_lease(uri: str, tenant_id: str, billing_period: str, owner: str, wait_seconds: float):
    import fcntl

    path = Path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(path, "a+") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= wait_seconds:
                    fh.seek(0)
                    raise LeaseHeldError(tenant_id, billing_period, _parse(fh.read()), waited) from None
                time.sleep(POLL_SECONDS)
        holder = _holder(owner, datetime.now(timezone.utc))
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(holder))
            fh.flush()
            yield holder
        finally:
            fh.seek(0)
            fh.truncate()  # an idle lease file is empty: a waiter's message never names a finished holder
            fcntl.flock(fh, fcntl.LOCK_UN)


def _parse(text: str | bytes) -> dict:
    try:
        out = json.loads(text)
        return out if isinstance(out, dict) else {}
    except (ValueError, TypeError):
        return {}


@contextmanager
def _s3_lease(uri: str, tenant_id: str, billing_period: str, owner: str, wait_seconds: float):
    started = time.monotonic()
    while True:
        now = datetime.now(timezone.utc)
        holder = _holder(owner, now)
        body = json.dumps(holder).encode()
        try:
            etag = fs.write_if(uri, body)
            break
        except fs.ConditionFailed:
            current = fs.read_versioned(uri)
            if current is None:
                continue  # released between our write and our read: try again at once
            held = _parse(current[0])
            expires = held.get("expires_at")
            if not expires or datetime.fromisoformat(expires) < now:
                try:  # a killed run's lease: take it over only if nobody else did meanwhile
                    etag = fs.write_if(uri, body, if_match=current[1])
                    break
                except fs.ConditionFailed:
                    continue
            waited = time.monotonic() - started
            if waited >= wait_seconds:
                raise LeaseHeldError(tenant_id, billing_period, held, waited) from None
            time.sleep(POLL_SECONDS)
    try:
        yield holder
    finally:
        fs.delete_if(uri, etag)
