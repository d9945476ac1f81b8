"""Replace an hour range of a tenant's line items in the lake, a whole billing month at a time.

Each (tenant, billing month) is the set of day files its pointer names (blocks_pipelines.lake.months). A write takes
the month's lease, lays the month's new day files in a fresh version folder (a day the slice does not touch keeps
its file), swaps the pointer in one write, then deletes what no pointer names. A reader therefore sees exactly the
old month or exactly the new one, and a crash at any point leaves the old month whole (the next write sweeps what
it left).

Per affected day: keep the rows outside the replaced slice, add the new rows. The slice is [start, end) of
usage_start restricted to the delivery's billing periods, so a month's delivery replaces that month (restatements
never double totals) and never touches a neighbouring month's rows in the same hours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from blocks_pipelines.ingestion.errors import CorruptFileError, IngestError
from blocks_pipelines.ingestion.schema import CANONICAL_SCHEMA
from blocks_pipelines.lake import fs, layout, months
from blocks_pipelines.lake.lease import LEASE_TTL, LeaseHeldError, month_lease
from blocks_pipelines.lake.months import MonthFile, MonthVersion

# Totals are summed as fixed-point decimals: exact, so source and lake sums of the same values are equal whatever
# the row order (a float sum of 10M costs drifts by more than the 1e-6 the checks demand).
EXACT = pl.Decimal(38, 12)
PARQUET_COMPRESSION = "snappy"  # measured faster to write than zstd for the same rows (REFERENCE.md section 6)
_DAY_DIR = re.compile(r"usage_date=(\d{4}-\d{2}-\d{2})")
# How long a write waits for another writer of the same month before refusing: a month's publish takes seconds
# to a couple of minutes, so two deliveries of one month arriving together serialize rather than fail.
LEASE_WAIT_SECONDS = 600.0


class StaleDeliveryError(IngestError):
    """A delivery older than the one the lake already holds for that month: it would roll the month back."""


class ConcurrentWriteError(IngestError):
    """Another ingest held the month for longer than the wait."""


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


@dataclass(frozen=True)
class DeliveryStamp:
    """Which CUR delivery a write comes from and when AWS delivered it (ISO UTC): the month's pointer keeps it, and
    a write of an older delivery of the month is refused."""

    delivery_id: str
    delivered_at: str | None
    where: str | None = None  # the manifest or data file, for the refusal's message


def staged_days(staging_dir: Path) -> dict[date, list[Path]]:
    """Files a PartitionBy sink wrote under usage_date=YYYY-MM-DD folders."""
    out: dict[date, list[Path]] = {}
    for p in sorted(staging_dir.rglob("*.parquet")):
        m = _DAY_DIR.search(str(p.parent))
        if m:
            out.setdefault(date.fromisoformat(m.group(1)), []).append(p)
    return out


def _canonical(lf: pl.LazyFrame) -> pl.LazyFrame:
    names = set(lf.collect_schema().names())
    return lf.select(
        [(pl.col(n) if n in names else pl.lit(None)).cast(t).alias(n) for n, t in CANONICAL_SCHEMA.items()]
    )


def _is_canonical_file(path: Path) -> bool:
    return dict(pl.read_parquet_schema(path)) == CANONICAL_SCHEMA


def _periods_of(new_by_day: dict[date, list[Path]]) -> set[str]:
    files = [p for ps in new_by_day.values() for p in ps]
    if not files:
        return set()
    return set(
        pl.scan_parquet(files, hive_partitioning=False)
        .select(pl.col("billing_period").unique())
        .collect()["billing_period"]
        .to_list()
    )


def _months_touched(lake_uri: str, tenant_id: str, new_by_day: dict[date, list[Path]], sl: Slice) -> list[str]:
    if sl.periods is not None:
        return sorted(sl.periods)
    days = set(sl.days())
    held = {
        m.billing_period
        for m in months.current_months(lake_uri, tenant_id)
        if any(f.usage_date in days for f in m.files)
    }
    return sorted(held | _periods_of(new_by_day))


def replace_slice(
    lake_uri: str,
    tenant_id: str,
    new_by_day: dict[date, list[Path]],
    sl: Slice,
    workdir: Path,
    progress=None,
    *,
    delivery: DeliveryStamp | None = None,
    lease_wait: float | None = None,
) -> list[date]:
    """Replace the slice, one billing month at a time, each month swapped whole; returns the days whose rows
    changed. Rows of new_by_day must lie inside the slice (the caller filtered them)."""
    changed: list[date] = []
    touched = _months_touched(lake_uri, tenant_id, new_by_day, sl)
    only_period = touched[0] if sl.periods is not None and len(touched) == 1 else None
    wait = LEASE_WAIT_SECONDS if lease_wait is None else lease_wait
    owner = delivery.delivery_id if delivery else "lake-write"
    for bp in touched:
        try:
            with month_lease(lake_uri, tenant_id, bp, owner=owner, wait_seconds=wait):
                changed += _replace_month(
                    lake_uri, tenant_id, bp, new_by_day, sl, workdir / bp, progress, delivery, whole=bp == only_period
                )
        except LeaseHeldError as exc:
            raise ConcurrentWriteError(
                str(exc),
                file=delivery.where if delivery else None,
                fix=f"the other run will finish or its lease expires (after {LEASE_TTL}); rerun afterwards",
            ) from exc
        except months.CorruptPointerError as exc:
            raise CorruptFileError(
                str(exc),
                file=layout.line_items_pointer_uri(lake_uri, tenant_id, bp),
                fix="delete the month's _current.json and re-ingest its newest delivery (the "
                "lake's files of the month are unknown until then)",
            ) from exc
    return sorted(set(changed))


def _check_order(current: MonthVersion | None, delivery: DeliveryStamp | None, bp: str) -> None:
    if current is None or delivery is None or current.delivery_id == delivery.delivery_id:
        return
    if current.delivered_at and delivery.delivered_at and delivery.delivered_at < current.delivered_at:
        raise StaleDeliveryError(
            f"delivery {delivery.delivery_id} of billing month {bp} was delivered at {delivery.delivered_at}, "
            f"before delivery {current.delivery_id} ({current.delivered_at}) the lake already holds",
            file=delivery.where,
            fix="nothing to do: the newer delivery stays; to go back to this one on purpose, delete the month's "
            "pointer (_current.json) and re-ingest",
        )


def _replace_month(
    lake_uri: str,
    tenant_id: str,
    bp: str,
    new_by_day: dict[date, list[Path]],
    sl: Slice,
    workdir: Path,
    progress,
    delivery: DeliveryStamp | None,
    *,
    whole: bool,
) -> list[date]:
    """Under the month's lease: build the month's next version aside and swap it in."""
    current, tag = months.read_month(lake_uri, tenant_id, bp)
    _check_order(current, delivery, bp)
    if current is not None:
        months.sync_athena(lake_uri, current)  # a crash between pointer and manifest: Athena must not lag behind
    months.sweep_month(lake_uri, tenant_id, bp, current)  # what a crashed write of this month left
    old_files = {f.usage_date: f for f in current.files} if current else {}
    version = months.new_version_id()
    pred = sl.matches()
    slice_days = set(sl.days())
    files: dict[date, MonthFile] = {d: f for d, f in old_files.items() if d not in slice_days}
    changed = []
    for day in sorted((slice_days & set(old_files)) | set(new_by_day)):
        new = [pl.scan_parquet(p, hive_partitioning=False) for p in new_by_day.get(day, [])]
        if not whole:
            new = [lf.filter(pl.col("billing_period") == bp) for lf in new]
        result = _next_day(
            lake_uri,
            tenant_id,
            bp,
            version,
            day,
            old_files.get(day),
            new,
            new_by_day.get(day, []) if whole else [],
            pred,
            workdir,
        )
        if progress is not None:
            progress.update(1)
        if result is _UNCHANGED:
            files[day] = old_files[day]
            continue
        if result is not None:
            files[day] = result
        if result is not None or day in old_files:
            changed.append(day)
    if not changed and current is not None and (delivery is None or current.delivery_id == delivery.delivery_id):
        return []
    # a write without a delivery (Cost Explorer rows) keeps the month's CUR delivery for the order check
    source = delivery or current
    nxt = months.carry_forward(
        lake_uri,
        MonthVersion(
            tenant_id,
            bp,
            version,
            tuple(files[d] for d in sorted(files)),
            source.delivery_id if source else None,
            source.delivered_at if source else None,
        ),
    )
    months.commit_month(lake_uri, nxt, tag)
    months.sweep_month(lake_uri, tenant_id, bp, nxt)
    return changed


_UNCHANGED = object()


def _next_day(
    lake_uri: str,
    tenant_id: str,
    bp: str,
    version: str,
    day: date,
    old: MonthFile | None,
    new: list[pl.LazyFrame],
    as_is: list[Path],
    pred: pl.Expr,
    workdir: Path,
):
    """The day's file in the next version: a new MonthFile, None when the day ends empty, or _UNCHANGED."""
    kept, kept_rows, old_rows = None, 0, 0
    if old is not None:
        uri = layout.line_items_file_uri(lake_uri, tenant_id, bp, old.name)
        local = fs.fetch_to_local(uri, workdir / "lake")
        scan = pl.scan_parquet(local, hive_partitioning=False)
        counts = scan.select(pl.len().alias("all"), (~pred).sum().alias("kept")).collect()
        old_rows, kept_rows = counts["all"][0], counts["kept"][0]
        kept = scan.filter(~pred)
    new_rows = pl.concat([lf.select(pl.len()) for lf in new]).sum().collect().item() if new else 0
    if not new_rows and kept_rows == old_rows:
        return _UNCHANGED if old is not None else None
    if not new_rows and kept_rows == 0:
        return None
    name = layout.line_items_file_name(version, day)
    dest = layout.line_items_file_uri(lake_uri, tenant_id, bp, name)
    if kept_rows == 0 and len(as_is) == 1 and _is_canonical_file(as_is[0]):
        fs.put_file(as_is[0], dest)  # the staged file already is the day: publish it as is
        return MonthFile(name, day, new_rows)
    parts = ([kept] if kept_rows else []) + new
    out = workdir / "out" / f"{day.isoformat()}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    _canonical(pl.concat([_canonical(p) for p in parts])).sink_parquet(
        out, compression=PARQUET_COMPRESSION, maintain_order=False
    )
    fs.put_file(out, dest)
    out.unlink()
    return MonthFile(name, day, kept_rows + new_rows)


def lake_files(lake_uri: str, tenant_id: str, sl: Slice) -> list[str]:
    """The current day files holding rows of the slice's days (and periods)."""
    days = set(sl.days())
    out = []
    for m in months.current_months(lake_uri, tenant_id, sorted(sl.periods) if sl.periods is not None else None):
        out += [
            layout.line_items_file_uri(lake_uri, tenant_id, m.billing_period, f.name)
            for f in m.files
            if f.usage_date in days
        ]
    return sorted(out)


def fetch_slice_files(lake_uri: str, tenant_id: str, sl: Slice, workdir: Path) -> list[Path]:
    """Local paths of the slice's current lake files (downloaded into workdir when the lake is on S3)."""
    return [fs.fetch_to_local(u, workdir) for u in lake_files(lake_uri, tenant_id, sl)]


def lake_totals(files: list[Path], sl: Slice) -> pl.DataFrame:
    """Rows and unblended cost per billing period and usage day of the slice, read back from its lake files."""
    empty = pl.DataFrame(
        schema={"billing_period": pl.String, "usage_date": pl.Date, "rows": pl.UInt32, "unblended_cost": EXACT}
    )
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


def lake_invoice_totals(files: list[Path], sl: Slice, invoice_ids: list[str]) -> pl.DataFrame:
    """Rows and unblended (FOCUS BilledCost) cost per billing period and invoice id of the slice, read back from its
    lake files, for the invoice ids given (the source's)."""
    if not files:
        return pl.DataFrame(
            schema={"billing_period": pl.String, "invoice_id": pl.String, "rows": pl.UInt32, "billed_cost": EXACT}
        )
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
