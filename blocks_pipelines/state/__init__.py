"""Durable state: SQLite locally, DynamoDB in production, one `StateStore` API over both.

from blocks_pipelines.state import get_state_store
store = get_state_store()
store.append_audit("alice", "recommendation.view", "acme_corp/recommendation/r1", "ok", {})
"""

from __future__ import annotations

from pathlib import Path

from blocks_pipelines.settings import Settings, get_settings
from blocks_pipelines.state.records import (
    Approval,
    AuditEvent,
    ConflictError,
    IllegalTransitionError,
    NotFoundError,
    Proposal,
    ProposalStatus,
    Purchase,
    PurchaseState,
    StateError,
)
from blocks_pipelines.state.store import StateStore


def open_state_store(
    backend: str,
    *,
    sqlite_path: str = "",
    table_prefix: str = "blocks",
    region: str = "eu-west-1",
    endpoint_url: str | None = None,
) -> StateStore:
    """SQLite at `sqlite_path`, or DynamoDB tables `{table_prefix}_*` (endpoint override for moto / DynamoDB Local).
    The one constructor: get_state_store (CLI, API) and the Dagster resource (blocks_pipelines.resources) use it."""
    if backend == "sqlite":
        from blocks_pipelines.state.sqlite_backend import SqliteBackend

        return StateStore(SqliteBackend(Path(sqlite_path)))
    if backend == "dynamodb":
        from blocks_pipelines.state.dynamodb_backend import DynamoBackend

        return StateStore(DynamoBackend(table_prefix, region, endpoint_url))
    raise ValueError(f"BLOCKS_STATE_BACKEND={backend!r} is not supported: use 'sqlite' or 'dynamodb'")


def get_state_store(settings: Settings | None = None) -> StateStore:
    """The store the settings point at (BLOCKS_STATE_BACKEND and friends, see blocks_pipelines.settings)."""
    s = settings or get_settings()
    return open_state_store(
        s.state_backend,
        sqlite_path=str(s.state_db_path),
        table_prefix=s.state_table_prefix,
        region=s.aws_region,
        endpoint_url=s.dynamodb_endpoint_url,
    )


__all__ = [
    "Approval",
    "AuditEvent",
    "ConflictError",
    "IllegalTransitionError",
    "NotFoundError",
    "Proposal",
    "ProposalStatus",
    "Purchase",
    "PurchaseState",
    "StateError",
    "StateStore",
    "get_state_store",
    "open_state_store",
]
