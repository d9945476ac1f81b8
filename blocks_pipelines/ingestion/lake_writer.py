"""Replace an hour range of a tenant's line items in the lake, one day file at a time, each swapped atomically.

Per affected day: keep the rows outside the replaced slice, add the new rows, write the file aside, swap it in.
The slice is [start, end) of usage_start restricted to the delivery's billing periods, so a month's delivery replaces
that month (restatements never double totals) and never touches a neighbouring month's rows in the same hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from blocks_pipelines.ingestion.schema import CANONICAL_SCHEMA
from blocks_pipelines.lake import fs, layout

# Totals are summed as fixed-point decimals: exact, so source and lake sums of the same values are equal whatever
# the row order (a float sum of 10M costs drifts by more than the 1e-6 the checks demand).
EXACT = pl.Decimal(38, 12)
PARQUET_COMPRESSION = "snappy"  # measured faster to write than zstd for the same rows (REFERENCE.md section 6)
_DAY_DIR = re.compile(r"usage_date=(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class Slice:
    """The rows a write replaces: usage_start in [start, end), billing_period in periods (None: any),
    when only_source_format is set, only rows from that source (Cost Explorer never replaces CUR), and when
    billing_accounts is set, only rows billed to those accounts (a multi-cloud tenant's Azure FOCUS export
    replaces its Azure rows, never the AWS CUR's of the same hours)."""

    start: datetime
    end: datetime
    periods: frozenset[str] | None = None
    only_source_format: str | None = None
    billing_accounts: frozenset[str] | None = None

    def matches(self) -> pl.Expr:
        pred = (pl.col("usage_start") >= self.start) & (pl.col("usage_start") < self.end)
        if self.periods is not None:
            pred &= pl.col("billing_period").is_in(sorted(self.periods))
        if self.only_source_format:
            pred &= pl.col("source_format") == self.only_source_format
        if self.billing_accounts is not None:
            pred &= pl.col("payer_account_id").is_in(sorted(self.billing_accounts))
        return pred

    def days(self) -> list[date]:
        first, last = self.start.date(), (self.end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def staged_days(staging_dir: Path) -> dict[date, list[Path]]:
    """Files a PartitionBy sink wrote under usage_date=YYYY-MM-DD folders."""
    out: dict[date, list[Path]] = {}
    for p in sorted(staging_dir.rglob("*.parquet")):
        m = _DAY_DIR.search(str(p.parent))
        if m:
            out.setdefault(date.fromisoformat(m.group(1)), []).append(p)
    return out


def lake_days(lake_uri: str, tenant_id: str) -> set[date]:
    days = set()
    for obj in fs.list_objects(layout.line_items_tenant_prefix(lake_uri, tenant_id)):
        m = _DAY_DIR.search(obj.uri)
        if m and obj.uri.endswith("/data.parquet"):
            days.add(date.fromisoformat(m.group(1)))
    return days


def _canonical(lf: pl.LazyFrame) -> pl.LazyFrame:
    names = set(lf.collect_schema().names())
    return lf.select(
        [(pl.col(n) if n in names else pl.lit(None)).cast(t).alias(n) for n, t in CANONICAL_SCHEMA.items()]
    )


def _is_canonical_file(path: Path) -> bool:
    return dict(pl.read_parquet_schema(path)) == CANONICAL_SCHEMA


def replace_slice(lake_uri: str, tenant_id: str, new_by_day: dict[date, list[Path]], sl: Slice,
                  workdir: Path, progress=None) -> list[date]:
    """Write every day the slice touches; returns the days whose file changed. Rows of new_by_day must lie
    inside the slice (the caller filtered them)."""
    existing = lake_days(lake_uri, tenant_id)
    days = sorted((set(sl.days()) & existing) | set(new_by_day))
    changed = []
    pred = sl.matches()
    for day in days:
        uri = layout.line_items_day_uri(lake_uri, tenant_id, day)
        new = new_by_day.get(day, [])
        kept, kept_rows, old_rows = None, 0, 0
        if day in existing:
            local = fs.fetch_to_local(uri, workdir / "lake")
            old = pl.scan_parquet(local, hive_partitioning=False)
            counts = old.select(pl.len().alias("all"), (~pred).sum().alias("kept")).collect()
            old_rows, kept_rows = counts["all"][0], counts["kept"][0]
            kept = old.filter(~pred)
        if not new and kept_rows == old_rows:
            if progress is not None:
                progress.update(1)
            continue
        if not new and kept_rows == 0:
            fs.delete(uri)
        elif kept_rows == 0 and len(new) == 1 and _is_canonical_file(new[0]):
            fs.put_file(new[0], uri)  # the staged file already is the day: publish it as is
        else:
            parts = ([kept] if kept_rows else []) + [pl.scan_parquet(p, hive_partitioning=False) for p in new]
            out = workdir / "out" / f"{day.isoformat()}.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            _canonical(pl.concat([_canonical(p) for p in parts])).sink_parquet(
                out, compression=PARQUET_COMPRESSION, maintain_order=False
            )
            fs.put_file(out, uri)
            out.unlink()
        changed.append(day)
        if progress is not None:
            progress.update(1)
    return changed


def lake_totals(lake_uri: str, tenant_id: str, sl: Slice, workdir: Path) -> pl.DataFrame:
    """Rows and unblended cost per billing period and usage day of the slice, read back from the lake."""
    existing = lake_days(lake_uri, tenant_id)
    files = [
        fs.fetch_to_local(layout.line_items_day_uri(lake_uri, tenant_id, d), workdir / "readback")
        for d in sl.days() if d in existing
    ]
    empty = pl.DataFrame(schema={"billing_period": pl.String, "usage_date": pl.Date, "rows": pl.UInt32,
                                 "unblended_cost": EXACT})
    if not files:
        return empty
    return (
        pl.scan_parquet(files, hive_partitioning=False)
        .filter(sl.matches())
        .group_by("billing_period", "usage_date")
        .agg(pl.len().alias("rows"), pl.col("unblended_cost").cast(EXACT).sum())
        .sort("billing_period", "usage_date")
        .collect()
    )


def lake_invoice_totals(lake_uri: str, tenant_id: str, sl: Slice, invoice_ids: list[str],
                        workdir: Path) -> pl.DataFrame:
    """Rows and unblended (FOCUS BilledCost) cost per billing period and invoice id of the slice, read back from the
    lake, for the invoice ids given (the source's)."""
    existing = lake_days(lake_uri, tenant_id)
    files = [
        fs.fetch_to_local(layout.line_items_day_uri(lake_uri, tenant_id, d), workdir / "readback-invoices")
        for d in sl.days() if d in existing
    ]
    if not files:
        return pl.DataFrame(schema={"billing_period": pl.String, "invoice_id": pl.String, "rows": pl.UInt32,
                                    "billed_cost": EXACT})
    return (
        pl.scan_parquet(files, hive_partitioning=False)
        .filter(sl.matches() & pl.col("invoice_id").is_in(invoice_ids))
        .group_by("billing_period", "invoice_id")
        .agg(pl.len().alias("rows"), pl.col("unblended_cost").cast(EXACT).sum().alias("billed_cost"))
        .collect()
    )


def totals_by_period(lake: pl.DataFrame) -> dict[str, dict]:
    """lake_totals summed per billing period (exactly: the day sums are decimals)."""
    per_bp = lake.group_by("billing_period").agg(pl.col("rows").sum(), pl.col("unblended_cost").sum())
    return {bp: {"rows": int(n), "unblended_cost": float(c or 0)} for bp, n, c in per_bp.iter_rows()}


def totals_by_day(rows: pl.DataFrame) -> dict[str, float]:
    """Unblended cost per usage day (ISO date) of any frame with usage_date and unblended_cost."""
    per_day = rows.group_by("usage_date").agg(pl.col("unblended_cost").sum()).sort("usage_date")
    return {d.isoformat(): round(float(c), 6) for d, c in per_day.iter_rows()}
