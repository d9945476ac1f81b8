"""A tenant's DuckDB warehouse file, and the lock that keeps it to one writer at a time."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from blocks_pipelines.settings import get_settings


def warehouse_path(tenant_id: str) -> Path:
    return get_settings().warehouse_dir / f"{tenant_id}.duckdb"


@contextmanager
def warehouse_lock(tenant_id: str) -> Iterator[Path]:
    """Hold an exclusive lock on the tenant's warehouse for a dbt build and its export.

    DuckDB allows one writer per file: a second build of the same tenant (an overlapping Dagster run, a CLI call)
    waits here instead of failing on DuckDB's own lock halfway through.
    """
    path = warehouse_path(tenant_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield path
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
