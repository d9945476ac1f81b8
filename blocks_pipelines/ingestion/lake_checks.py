"""Checks on what the lake holds after a write, read back from the lake files themselves (Dagster asset checks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from blocks_pipelines.ingestion.lake_writer import Slice, fetch_slice_files
from blocks_pipelines.ingestion.schema import CANONICAL_SCHEMA, REQUIRED_COLUMNS


@dataclass(frozen=True)
class CheckOutcome:
    passed: bool
    description: str
    metadata: dict


def check_schema(lake_uri: str, tenant_id: str, sl: Slice, workdir: Path) -> CheckOutcome:
    """Every day file of the slice has exactly the documented columns and types, and no blank required value."""
    problems = []
    for path in fetch_slice_files(lake_uri, tenant_id, sl, workdir):
        schema = dict(pl.read_parquet_schema(path))
        if schema != CANONICAL_SCHEMA:
            diff = sorted(set(schema.items()) ^ set(CANONICAL_SCHEMA.items()), key=str)
            problems.append(f"{path.parent.name}: schema differs {diff[:4]}")
            continue
        nulls = pl.scan_parquet(path).select(pl.col(list(REQUIRED_COLUMNS)).null_count()).collect().row(0, named=True)
        bad = {k: v for k, v in nulls.items() if v}
        if bad:
            problems.append(f"{path.parent.name}: blank required values {bad}")
    return CheckOutcome(
        not problems,
        "lake files match docs/canonical_schema.md" if not problems else "; ".join(problems[:5]),
        {"problems": len(problems)},
    )


def check_no_duplicates(
    lake_uri: str, tenant_id: str, sl: Slice, expected_rows: dict[str, int], workdir: Path
) -> CheckOutcome:
    """Each billing period of the slice holds rows of exactly one CUR delivery, as many as the source had.

    Line item ids are not stable across deliveries, so duplication shows as a second delivery id or extra rows."""
    files = fetch_slice_files(lake_uri, tenant_id, sl, workdir)
    if not files:
        found = {}
    else:
        found = {
            r["billing_period"]: r
            for r in pl.scan_parquet(files, hive_partitioning=False)
            .filter(sl.matches() & (pl.col("source_format") != "cost_explorer"))
            .group_by("billing_period")
            .agg(pl.len().alias("rows"), pl.col("delivery_id").n_unique().alias("deliveries"))
            .collect()
            .iter_rows(named=True)
        }
    problems = []
    for bp, rows in sorted(expected_rows.items()):
        got = found.get(bp, {"rows": 0, "deliveries": 0})
        if got["deliveries"] > 1:
            problems.append(f"{bp}: rows of {got['deliveries']} deliveries")
        if got["rows"] != rows:
            problems.append(f"{bp}: {got['rows']} rows in the lake, {rows} in the source")
    return CheckOutcome(
        not problems,
        "one delivery per billing period, row counts equal" if not problems else "; ".join(problems),
        {bp: v["rows"] for bp, v in found.items()},
    )
