"""Tenant snapshots: each tenant's marts loaded into its own in-memory DuckDB database.

Why one database per tenant: the SQL the API runs can only see the tables of the tenant it was opened for, and once
a snapshot is loaded, file access is switched off in it, so no query can reach another tenant's files. A snapshot is
replaced when the mart files change (checked at most every `refresh_seconds`), which also drops its response cache.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb

from blocks_pipelines.lake import fs
from blocks_pipelines.lake.layout import mart_uri
from serving.data.marts import MART_COLUMNS, MARTS, derive_spend_daily, empty_table_sql, projection_sql
from serving.data.sample import build_sample_marts

READY = "ready"
BACKFILL_PENDING = "backfill_pending"


class MartUnavailable(RuntimeError):
    """A mart file exists but cannot be served (wrong columns, unreadable); the message says how to fix it."""


@dataclass(frozen=True)
class MartFile:
    mart: str
    uri: str
    size: int
    modified: float


class ResponseCache:
    """A small LRU of computed responses; lives inside one snapshot, so new data never meets stale answers.

    A miss is computed once: concurrent requests for the same key wait for the first one instead of each running
    the same scan (32 dashboards opening after a refresh would otherwise queue 32 identical queries)."""

    def __init__(self, max_entries: int = 512):
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[Any, threading.Lock] = {}
        self._max = max_entries

    def get_or_compute(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            flight = self._computing.setdefault(key, threading.Lock())
        with flight:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            try:
                value = compute()
                self.put(key, value)
            finally:
                with self._lock:
                    self._computing.pop(key, None)
        return value

    def peek(self, key: Any) -> Any | None:
        with self._lock:
            return self._items.get(key)

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self._max:
                self._items.popitem(last=False)


@dataclass
class TenantSnapshot:
    tenant_id: str
    conn: duckdb.DuckDBPyConnection
    signature: tuple[MartFile, ...]
    data_status: str
    loaded_marts: frozenset[str]
    first_date: date | None
    last_date: date | None
    data_through: datetime | None = None  # end of the last hour with data (UTC)
    cache: ResponseCache = field(default_factory=ResponseCache)
    checked_at: float = 0.0


def _data_through(conn: duckdb.DuckDBPyConnection, last_day: date | None) -> datetime | None:
    """The end of the last hour with data: CUR arrives hours to a day late, so the web app says how far figures go
    rather than letting today look free. From the hourly mart, else the end of the last day."""
    hour = conn.execute("SELECT max(usage_hour) FROM spend_hourly").fetchone()[0]
    if hour is not None:
        return hour.replace(tzinfo=timezone.utc) + timedelta(hours=1)
    if last_day is None:
        return None
    return datetime(last_day.year, last_day.month, last_day.day, tzinfo=timezone.utc) + timedelta(days=1)


class TenantData:
    """The only door to mart data an endpoint gets: bound to one tenant's snapshot at construction."""

    def __init__(self, snapshot: TenantSnapshot):
        self._snap = snapshot

    @property
    def tenant_id(self) -> str:
        return self._snap.tenant_id

    @property
    def data_status(self) -> str:
        return self._snap.data_status

    @property
    def sample(self) -> bool:
        return self._snap.data_status == BACKFILL_PENDING

    @property
    def data_through(self) -> datetime | None:
        return self._snap.data_through

    def scope_fields(self) -> dict[str, Any]:
        """The fields every tenant-scoped response starts with."""
        through = self.data_through
        return {
            "tenant_id": self.tenant_id,
            "data_status": self.data_status,
            "sample": self.sample,
            "data_through": through.isoformat() if through else None,
        }

    @property
    def first_date(self) -> date | None:
        return self._snap.first_date

    @property
    def last_date(self) -> date | None:
        return self._snap.last_date

    def has(self, mart: str) -> bool:
        return mart in self._snap.loaded_marts

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple]:
        cur = self._snap.conn.cursor()
        try:
            return cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()

    def dicts(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cur = self._snap.conn.cursor()
        try:
            cur.execute(sql, params or [])
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=False)) for r in cur.fetchall()]
        finally:
            cur.close()

    def cached(self, key: Any, compute: Callable[[], Any]) -> Any:
        return self._snap.cache.get_or_compute(key, compute)

    def peek(self, key: Any) -> Any | None:
        return self._snap.cache.peek(key)

    def put(self, key: Any, value: Any) -> None:
        self._snap.cache.put(key, value)


class MartStore:
    def __init__(
        self,
        lake_uri: str,
        download_dir: Path,
        refresh_seconds: float = 5.0,
        sample_days: int = 90,
        clock: Callable[[], float] | None = None,
    ):
        self.lake_uri = lake_uri
        self.download_dir = download_dir
        self.refresh_seconds = refresh_seconds
        self.sample_days = sample_days
        self._clock = clock or time.monotonic
        self._snapshots: dict[str, TenantSnapshot] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def tenant(self, tenant_id: str) -> TenantData:
        snap = self._snapshots.get(tenant_id)
        now = self._clock()
        if snap is not None and now - snap.checked_at < self.refresh_seconds:
            return TenantData(snap)
        with self._lock_for(tenant_id):
            snap = self._snapshots.get(tenant_id)
            if snap is not None and self._clock() - snap.checked_at < self.refresh_seconds:
                return TenantData(snap)
            signature = self._signature(tenant_id)
            if snap is None or snap.signature != signature:
                old = snap
                snap = self._load(tenant_id, signature)
                self._snapshots[tenant_id] = snap
                if old is not None:
                    old.conn.close()
            snap.checked_at = self._clock()
            return TenantData(snap)

    def needs_load(self, tenant_id: str) -> bool:
        snap = self._snapshots.get(tenant_id)
        return snap is None or self._clock() - snap.checked_at >= self.refresh_seconds

    def close(self) -> None:
        for snap in self._snapshots.values():
            snap.conn.close()
        self._snapshots.clear()

    def _lock_for(self, tenant_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(tenant_id, threading.Lock())

    def _signature(self, tenant_id: str) -> tuple[MartFile, ...]:
        files = []
        for mart in MARTS:
            uri = mart_uri(self.lake_uri, mart, tenant_id)
            if fs.is_s3(uri):
                for obj in fs.list_objects(uri.rsplit("/", 1)[0]):
                    if obj.uri == uri:
                        files.append(MartFile(mart, uri, obj.size, obj.modified.timestamp()))
            else:
                try:
                    st = os.stat(uri)
                except FileNotFoundError:
                    continue
                files.append(MartFile(mart, uri, st.st_size, st.st_mtime))
        return tuple(files)

    def _load(self, tenant_id: str, signature: tuple[MartFile, ...]) -> TenantSnapshot:
        conn = duckdb.connect(":memory:")
        try:
            present = {f.mart for f in signature}
            if present & {"spend_daily", "spend_hourly"}:
                status = READY
                for f in signature:
                    self._load_file(conn, tenant_id, f)
                for mart in MARTS:
                    if mart not in present:
                        conn.execute(empty_table_sql(mart))
                if "spend_daily" not in present:
                    derive_spend_daily(conn)
            else:
                status = BACKFILL_PENDING
                yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
                build_sample_marts(conn, tenant_id, yesterday, self.sample_days)
                present = set(MARTS)
            conn.execute("SET enable_external_access = false")
            first, last = conn.execute("SELECT min(usage_date), max(usage_date) FROM spend_daily").fetchone()
            through = _data_through(conn, last)
        except BaseException:
            conn.close()
            raise
        return TenantSnapshot(tenant_id, conn, signature, status, frozenset(present), first, last, through)

    def _load_file(self, conn: duckdb.DuckDBPyConnection, tenant_id: str, f: MartFile) -> None:
        local = fs.fetch_to_local(f.uri, self.download_dir / tenant_id)
        try:
            have = {r[0] for r in conn.execute("DESCRIBE SELECT * FROM read_parquet(?)", [str(local)]).fetchall()}
        except duckdb.Error as exc:
            raise MartUnavailable(
                f"{f.uri}: cannot read mart {f.mart!r} ({exc}); re-run the dbt build that exports it"
            ) from exc
        missing = [c for c in MART_COLUMNS[f.mart] if c not in have]
        if missing:
            raise MartUnavailable(
                f"{f.uri}: mart {f.mart!r} lacks column(s) {missing} required by docs/contracts.md;"
                f" fix the dbt model and re-export"
            )
        # tenant_id filter: a mis-exported file holding several tenants still yields only this tenant's rows.
        conn.execute(
            f"CREATE OR REPLACE TABLE {f.mart} AS SELECT {projection_sql(f.mart)} "
            f"FROM read_parquet(?) WHERE tenant_id = ?",
            [str(local), tenant_id],
        )
