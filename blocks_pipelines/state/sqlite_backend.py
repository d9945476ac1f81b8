"""SQLite backend (local and tests). One row per document; conditional writes are single statements, which
SQLite runs atomically, so threads and processes sharing the file get the same guarantees as DynamoDB."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from blocks_pipelines.state.backend import Versioned

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    tbl TEXT NOT NULL,
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (tbl, pk, sk)
);
-- the audit log is append-only even for someone holding a raw connection
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON items WHEN old.tbl = 'audit'
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON items WHEN old.tbl = 'audit'
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


class SqliteBackend:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        # sqlite3 connections must not cross threads; one per thread, autocommit per statement
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA busy_timeout=30000")
            # WAL + NORMAL: a commit is atomic and never corrupts; only an OS crash can drop the last few (local use)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get(self, table: str, pk: str, sk: str) -> Versioned | None:
        row = (
            self._conn()
            .execute("SELECT doc, version FROM items WHERE tbl=? AND pk=? AND sk=?", (table, pk, sk))
            .fetchone()
        )
        return Versioned(json.loads(row[0]), row[1]) if row else None

    def put_new(self, table: str, pk: str, sk: str, doc: dict[str, Any]) -> bool:
        cur = self._conn().execute(
            "INSERT OR IGNORE INTO items (tbl, pk, sk, version, doc) VALUES (?, ?, ?, 1, ?)",
            (table, pk, sk, json.dumps(doc, default=str)),
        )
        return cur.rowcount == 1

    def replace(self, table: str, pk: str, sk: str, doc: dict[str, Any], expected_version: int) -> bool:
        cur = self._conn().execute(
            "UPDATE items SET doc=?, version=version+1 WHERE tbl=? AND pk=? AND sk=? AND version=?",
            (json.dumps(doc, default=str), table, pk, sk, expected_version),
        )
        return cur.rowcount == 1

    def upsert(self, table: str, pk: str, sk: str, doc: dict[str, Any]) -> None:
        self._conn().execute(
            "INSERT INTO items (tbl, pk, sk, version, doc) VALUES (?, ?, ?, 1, ?) "
            "ON CONFLICT (tbl, pk, sk) DO UPDATE SET doc=excluded.doc, version=items.version+1",
            (table, pk, sk, json.dumps(doc, default=str)),
        )

    def query(self, table: str, pk: str) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT doc FROM items WHERE tbl=? AND pk=? ORDER BY sk", (table, pk))
        return [json.loads(r[0]) for r in rows]

    def scan(self, table: str) -> list[dict[str, Any]]:
        rows = self._conn().execute("SELECT doc FROM items WHERE tbl=? ORDER BY pk, sk", (table,))
        return [json.loads(r[0]) for r in rows]
