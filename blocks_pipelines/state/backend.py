"""The storage primitive both backends implement: versioned JSON documents under (table, pk, sk) with the two
conditional writes everything else is built on (create-if-absent, compare-and-swap on version).

Keeping the backends this small means the rules (transitions, claims, audit) live once in `store.py` and the
SQLite and DynamoDB stores cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

TABLES = (
    "audit",
    "recommendation_status",
    "connections",
    "proposals",
    "approvals",
    "purchases",
    "ledger",
    "alerts",
    "alert_notifications",
)


@dataclass(frozen=True)
class Versioned:
    doc: dict[str, Any]
    version: int


class Backend(Protocol):
    def get(self, table: str, pk: str, sk: str) -> Versioned | None: ...

    def put_new(self, table: str, pk: str, sk: str, doc: dict[str, Any]) -> bool:
        """Create at version 1; False (and no write) when the key exists."""

    def replace(self, table: str, pk: str, sk: str, doc: dict[str, Any], expected_version: int) -> bool:
        """Write version expected_version + 1; False (and no write) when the stored version differs."""

    def upsert(self, table: str, pk: str, sk: str, doc: dict[str, Any]) -> None:
        """Last writer wins; only for records where that is the intended semantics (user preferences)."""

    def query(self, table: str, pk: str) -> list[dict[str, Any]]:
        """All documents under one partition key, in sort key order."""

    def scan(self, table: str) -> list[dict[str, Any]]: ...
