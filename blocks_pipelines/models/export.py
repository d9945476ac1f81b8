"""Publish each mart from a tenant's DuckDB warehouse to the lake as one Parquet file.

The serving API and the Savings Plans analyzer read these files, never the DuckDB file: DuckDB allows one writer
per file and dbt is that writer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

from blocks_pipelines.lake.fs import put_file
from blocks_pipelines.lake.layout import mart_uri
from blocks_pipelines.models.project import MARTS
from blocks_pipelines.models.warehouse import warehouse_path
from blocks_pipelines.settings import get_settings


def export_marts(tenant_id: str, marts: tuple[str, ...] = MARTS) -> dict[str, str]:
    """Write each built mart to {lake}/marts/{mart}/tenant_id={t}/data.parquet atomically; returns mart -> uri.

    Marts not built yet (e.g. a run that selected only some models) are skipped, not exported empty.
    """
    path = warehouse_path(tenant_id)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no warehouse for tenant {tenant_id!r}; run `run_dbt_build` for it first")
    settings = get_settings()
    exported: dict[str, str] = {}
    with duckdb.connect(str(path)) as con, tempfile.TemporaryDirectory(prefix="blocks-marts-") as tmp:
        con.execute("set TimeZone = 'UTC'")
        built = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        for mart in marts:
            if mart not in built:
                continue
            local = Path(tmp) / f"{mart}.parquet"
            # Sorted by the contract's leading columns (tenant, time): readers' time filters skip row groups.
            con.execute(f"copy (select * from {mart} order by all) to '{local}' (format parquet, compression zstd)")
            uri = mart_uri(settings.lake_uri, mart, tenant_id)
            put_file(local, uri)
            exported[mart] = uri
    return exported
