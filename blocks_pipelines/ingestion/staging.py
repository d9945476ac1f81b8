"""Read, normalize and validate a delivery into a local staging folder, before anything touches the lake.

The hot path is one streaming polars query per delivery (scan -> canonical columns -> partitioned sink by day);
validation then reads a few columns of the staged files. Row loops only run to locate an error already found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from blocks_pipelines.ingestion import errors as E
from blocks_pipelines.ingestion.deliveries import Delivery
from blocks_pipelines.ingestion.formats import BAD, SourceContext, check_required, detect_format, plan
from blocks_pipelines.ingestion.lake_writer import EXACT
from blocks_pipelines.ingestion.readers import RawFile, open_raw
from blocks_pipelines.ingestion.schema import LINE_ITEM_TYPES, REQUIRED_COLUMNS
from blocks_pipelines.lake import fs

AWS_PROVIDERS = ("AWS", "Amazon Web Services")
# charge_class is derived: a null there is an unknown line item type, reported as such rather than as a blank.
REQUIRED_VALUES = tuple(n for n in REQUIRED_COLUMNS if n != "charge_class")


@dataclass
class StagedFile:
    raw: RawFile
    fmt: str
    ctx: SourceContext


@dataclass
class Staged:
    delivery: Delivery
    files: list[StagedFile]
    dir: Path
    stats: pl.DataFrame  # per billing_period x currency x line_item_type: rows, exact (decimal) costs, invoiced rows
    hours: int
    fmt: str

    @property
    def billing_periods(self) -> frozenset[str]:
        return frozenset(self.stats["billing_period"].to_list())

    def usage_bounds(self) -> tuple[datetime, datetime]:
        return self.stats["first_hour"].min(), self.stats["last_hour"].max()


def _open_files(delivery: Delivery, tenant_id: str, fmt: str, workdir: Path) -> list[StagedFile]:
    where = delivery.manifest_uri
    missing = [u for u in delivery.data_files if not fs.exists(u)]
    if missing:
        raise E.MissingFileError(
            f"the manifest lists {len(missing)} data file(s) that are not there, first {missing[0]}",
            file=where or missing[0],
            fix="wait until AWS finishes the delivery (the manifest is written last) or re-deliver the report",
        )
    if not delivery.data_files:
        raise E.EmptyFileError("the delivery lists no data files", file=where,
                               fix="AWS writes an empty manifest for a month with no usage; nothing to ingest")
    out = []
    for i, uri in enumerate(delivery.data_files):
        local = fs.fetch_to_local(uri, workdir / "source")
        raw = open_raw(uri, local, workdir / f"inflated-{i}")
        columns = list(raw.schema())
        file_fmt = fmt if fmt != "auto" else (delivery.fmt or detect_format(columns))
        if file_fmt == "auto":
            file_fmt = detect_format(columns)
        check_required(file_fmt, columns, uri)
        out.append(StagedFile(raw, file_fmt, SourceContext(tenant_id, delivery.delivery_id, uri,
                                                           delivery.billing_period)))
    return out


def _frame(f: StagedFile, with_row: bool = False, with_checks: bool = False):
    lf = f.raw.scan()
    p = plan(dict(f.raw.schema()), f.fmt, f.ctx)
    exprs, checks = p.exprs, p.checks
    if with_row:
        lf = lf.with_row_index("_row", offset=1)
        exprs = [pl.col("_row"), *exprs]
    lf = p.source(lf)
    if with_checks:
        exprs += [c.fails.fill_null(False).alias(f"_c{i}") for i, c in enumerate(checks)]
    return lf.select(exprs), checks


def _hour_filter(lf: pl.LazyFrame, hour_range: tuple[datetime, datetime] | None) -> pl.LazyFrame:
    if hour_range is None:
        return lf
    return lf.filter((pl.col("usage_start") >= hour_range[0]) & (pl.col("usage_start") < hour_range[1]))


def _first_row(f: StagedFile, hour_range, cond) -> dict | None:
    lf, _ = _frame(f, with_row=True)
    rows = _hour_filter(lf, hour_range).filter(cond).head(1).collect()
    return rows.row(0, named=True) if rows.height else None


def _locate_bad_value(files: list[StagedFile], hour_range) -> E.IngestError:
    """Which file, row and column hold the value that could not be read (only runs once a failure is known)."""
    for f in files:
        probe, checks = _frame(f, with_row=True, with_checks=True)
        raw = f.raw.scan().with_row_index("_row", offset=1)
        probe = probe.with_columns(pl.col(n).is_null().alias(f"_n_{n}") for n in REQUIRED_VALUES)
        flag_names = [f"_c{i}" for i in range(len(checks))] + [f"_n_{n}" for n in REQUIRED_VALUES]
        hit = _hour_filter(probe, hour_range).filter(pl.any_horizontal(flag_names)).head(1).collect()
        if not hit.height:
            continue
        row = hit.row(0, named=True)
        for i, c in enumerate(checks):
            if row[f"_c{i}"]:
                value = raw.filter(pl.col("_row") == row["_row"]).select(pl.col(c.column)).collect().item()
                return E.ParseError(f"{c.problem}: {value!r}", file=f.raw.name, row=row["_row"], column=c.column,
                                    fix="correct the value in the export (or re-deliver it); blanks are allowed")
        for n in REQUIRED_VALUES:
            if row[f"_n_{n}"]:
                return E.ParseError(f"blank value where a {n} is required", file=f.raw.name, row=row["_row"],
                                    column=n, fix=f"every line item needs a {n}; re-deliver the report")
    return E.ParseError("a value could not be read", file=files[0].raw.name, fix="re-deliver the report")


def _diagnose_read_failure(files: list[StagedFile], exc: Exception) -> E.IngestError:
    for f in files:
        try:
            _frame(f)[0].select(pl.len()).collect()
            f.raw.scan().collect()
        except (pl.exceptions.PolarsError, OSError) as inner:
            return E.CorruptFileError(f"cannot be read: {inner}", file=f.raw.name,
                                      fix="the file is damaged; re-download it or wait for the next delivery")
    return E.CorruptFileError(f"the delivery cannot be read: {exc}", file=files[0].raw.name,
                              fix="re-deliver the report")


def stage_delivery(delivery: Delivery, tenant, fmt: str, workdir: Path,
                   hour_range: tuple[datetime, datetime] | None = None) -> Staged:
    """Normalize one delivery into workdir/staged/usage_date=*/, validated; raises IngestError on bad input."""
    files = _open_files(delivery, tenant.id, fmt, workdir)
    frames, needs_flag = [], False
    for f in files:
        lf, checks = _frame(f)
        needs_flag |= bool(checks)
        frames.append(lf if checks else lf.with_columns(pl.lit(False).alias(BAD)))
    lf = _hour_filter(pl.concat(frames, how="vertical"), hour_range)
    if not needs_flag:
        lf = lf.drop(BAD)  # typed (Parquet) sources: the staged files already are canonical lake files
    staging = workdir / "staged"
    try:
        lf.sink_parquet(
            pl.PartitionBy(staging, key="usage_date", include_key=True, approximate_bytes_per_file=None),
            compression="snappy", mkdir=True, maintain_order=False,
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _diagnose_read_failure(files, exc) from exc
    return _validate(delivery, files, staging, tenant, hour_range, needs_flag)


def _validate(delivery, files, staging: Path, tenant, hour_range, has_flag: bool) -> Staged:
    staged_files = sorted(staging.rglob("*.parquet"))
    where = delivery.manifest_uri or files[0].raw.name
    if not staged_files:
        raise E.EmptyFileError(
            "no line items" + (" in the requested hours" if hour_range else ""), file=where,
            fix="check the delivery holds data" + (" for these hours" if hour_range else ""),
        )
    lf = pl.scan_parquet(staged_files, hive_partitioning=False)
    bad = [pl.col(BAD).sum().alias("bad")] if has_flag else [pl.lit(0).alias("bad")]
    checks = lf.select(*bad, *[pl.col(n).null_count().alias(n) for n in REQUIRED_VALUES])
    stats = lf.group_by("billing_period", "currency", "line_item_type", "charge_class").agg(
        pl.len().alias("rows"),
        *[pl.col(c).cast(EXACT).sum() for c in ("unblended_cost", "amortized_cost", "public_on_demand_cost")],
        pl.col("invoice_id").is_not_null().sum().alias("invoiced_rows"),
        pl.col("usage_start").min().alias("first_hour"),
        pl.col("usage_start").max().alias("last_hour"),
    )
    payers = lf.filter(pl.col("provider").is_in(AWS_PROVIDERS)).select(pl.col("payer_account_id").unique())
    hours = lf.select(pl.col("usage_start").n_unique())
    checks, stats, payers, hours = pl.collect_all([checks, stats, payers, hours])
    if checks["bad"][0] or any(checks[c][0] for c in checks.columns if c != "bad"):
        raise _locate_bad_value(files, hour_range)
    unknown = stats.filter(pl.col("charge_class").is_null())
    if unknown.height:
        lit = unknown["line_item_type"][0]
        hit = next(((f, r) for f in files if (r := _first_row(f, hour_range, pl.col("line_item_type") == lit))),
                   (files[0], {"_row": None}))
        column = "ChargeCategory" if hit[0].fmt == "focus" else "lineItem/LineItemType"
        raise E.UnknownLineItemTypeError(
            f"unknown line item type {lit!r}", file=hit[0].raw.name, row=hit[1]["_row"], column=column,
            fix="the platform knows " + ", ".join(sorted(LINE_ITEM_TYPES))
            + "; add the new type to schema.LINE_ITEM_TYPES with its charge class",
        )
    per_currency = stats.group_by("billing_period", "currency").agg(pl.col("rows").sum())
    mixed = per_currency.filter(pl.len().over("billing_period") > 1).sort("billing_period", "rows")
    if mixed.height:
        # the rarest currency of the month is the likely stray: show its first row
        bp, stray = mixed["billing_period"][0], mixed["currency"][0]
        found = sorted(mixed.filter(pl.col("billing_period") == bp)["currency"].to_list())
        hit = next(((f, r) for f in files if (r := _first_row(f, hour_range, pl.col("currency") == stray))),
                   (files[0], {"_row": None}))
        raise E.MixedCurrencyError(
            f"billing period {bp} mixes currencies {found} (first {stray} row shown)", file=hit[0].raw.name,
            row=hit[1]["_row"], column="lineItem/CurrencyCode" if hit[0].fmt != "focus" else "BillingCurrency",
            fix="one tenant bills in one currency per month; split the payer accounts into separate tenants",
        )
    expected = tenant.organization.payer_account_id
    foreign = [p for p in payers["payer_account_id"].to_list() if p != expected]
    if foreign:
        hit = next(((f, r) for f in files if (r := _first_row(f, hour_range, pl.col("payer_account_id") == foreign[0]))),
                   (files[0], {"_row": None}))
        raise E.WrongPayerError(
            f"payer account {foreign[0]} is not tenant {tenant.id}'s payer {expected}", file=hit[0].raw.name,
            row=hit[1]["_row"], column="bill/PayerAccountId" if hit[0].fmt != "focus" else "BillingAccountId",
            fix=f"this looks like another tenant's CUR: check tenant {tenant.id}'s cur_source, "
                "or its organization.payer_account_id",
        )
    return Staged(delivery, files, staging, stats, int(hours.item()), files[0].fmt)
