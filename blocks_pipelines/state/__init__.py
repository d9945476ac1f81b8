"""Durable state: SQLite locally, DynamoDB in production, one `StateStore` API over both.

from blocks_pipelines.state import get_state_store
store = get_state_store()
store.append_audit("alice", "recommendation.view", "acme_corp/recommendation/r1", "ok", {})
"""

from __future__ import annotations

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


def get_state_store(settings: Settings | None = None) -> StateStore:
    """The store the settings point at: SQLite at settings.state_db_path, or DynamoDB tables
    `{state_table_prefix}_*` (endpoint override: BLOCKS_DYNAMODB_ENDPOINT_URL, for moto / DynamoDB Local)."""
    s = settings or get_settings()
    if s.state_backend == "sqlite":
        from blocks_pipelines.state.sqlite_backend import SqliteBackend

        return StateStore(SqliteBackend(s.state_db_path))
    if s.state_backend == "dynamodb":
        from blocks_pipelines.state.dynamodb_backend import DynamoBackend

        return StateStore(DynamoBackend(s.state_table_prefix, s.aws_region, s.dynamodb_endpoint_url))
    raise ValueError(f"BLOCKS_STATE_BACKEND={s.state_backend!r} is not supported: use 'sqlite' or 'dynamodb'")


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
]
