"""Read, normalize and validate a delivery into a local staging folder, before anything touches the lake.

The hot path is one streaming polars query per delivery (scan -> canonical columns -> partitioned sink by day);
validation then reads a few columns of the staged files. Row loops only run to locate an error already found.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from blocks_pipelines.ingestion import errors as E
from blocks_pipelines.ingestion import guards
from blocks_pipelines.ingestion.accounts import PROVIDER_COLUMNS, AccountProblem, first_problem
from blocks_pipelines.ingestion.deliveries import Delivery
from blocks_pipelines.ingestion.formats import (
    SAMPLE_ROWS,
    SourceContext,
    check_required,
    detect_format,
    plan,
    source_column,
)
from blocks_pipelines.ingestion.lake_writer import EXACT
from blocks_pipelines.ingestion.readers import RawFile, open_raw
from blocks_pipelines.ingestion.schema import LINE_ITEM_TYPES, REQUIRED_COLUMNS
from blocks_pipelines.lake import fs
from blocks_pipelines.tenants.billing_accounts import CLI_FLAGS, EXPECTED, is_well_formed

# charge_class is derived: a null there is an unknown line item type, reported as such rather than as a blank.
REQUIRED_VALUES = tuple(n for n in REQUIRED_COLUMNS if n != "charge_class")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


@dataclass
class StagedFile:
    raw: RawFile
    fmt: str
    ctx: SourceContext
    sample: pl.DataFrame  # first rows, to pick each timestamp column's format


@dataclass
class Staged:
    delivery: Delivery
    files: list[StagedFile]
    dir: Path
    stats: pl.DataFrame  # per billing_period x currency x line_item_type: rows, exact (decimal) costs, invoiced rows
    hours: int
    fmt: str
    # per billing_period x invoice_id: rows and BilledCost summed exactly from the source files' own cost column
    invoices: pl.DataFrame | None = None
    periods: frozenset[str] = frozenset()  # the manifest's month, kept when the requested hours hold no rows
    # the billing accounts (AWS payer, Azure billing account...) the delivery's rows are billed to: the rows of the
    # lake it replaces (None: every row of its slice)
    accounts: frozenset[str] | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage, reported with the summary

    @property
    def billing_periods(self) -> frozenset[str]:
        return frozenset(self.stats["billing_period"].to_list()) | self.periods

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
        raise E.EmptyFileError(
            "the delivery lists no data files",
            file=where,
            fix="AWS writes an empty manifest for a month with no usage; nothing to ingest",
        )
    out = []
    for i, uri in enumerate(delivery.data_files):
        local = fs.fetch_to_local(uri, workdir / "source")
        raw = open_raw(uri, local, workdir / f"inflated-{i}")
        columns = list(raw.schema())
        given_by = "--format" if fmt != "auto" else ("the delivery's manifest" if delivery.fmt else None)
        file_fmt = fmt if fmt != "auto" else (delivery.fmt or detect_format(columns, uri))
        check_required(file_fmt, columns, uri, given_by)
        ctx = SourceContext(tenant_id, delivery.delivery_id, uri, delivery.billing_period)
        out.append(StagedFile(raw, file_fmt, ctx, raw.head(SAMPLE_ROWS)))
    _refuse_mixed_formats(out, where)
    return out


def _refuse_mixed_formats(files: list[StagedFile], manifest_uri: str | None) -> None:
    """One delivery is one export: files of two formats side by side are two deliveries (a legacy CUR and its
    CUR 2.0 successor, say), each the whole month, so summing them would double it."""
    by_fmt: dict[str, str] = {}
    for f in files:
        by_fmt.setdefault(f.fmt, f.raw.name)
    if len(by_fmt) > 1:
        found = ", ".join(f"{fmt} ({name})" for fmt, name in sorted(by_fmt.items()))
        raise E.AmbiguousSourceError(
            f"files of {len(by_fmt)} formats in one delivery: {found}; each is a whole delivery, so ingesting "
            "both would double the month",
            file=manifest_uri or files[0].raw.name,
            fix="point at one export's folder or manifest (move the other format's files elsewhere)",
        )


def _frame(f: StagedFile, with_row: bool = False, fast: bool = True, extra: tuple[pl.Expr, ...] = ()):
    lf = f.raw.scan()
    p = plan(dict(f.raw.schema()), f.fmt, f.ctx, f.sample, fast)
    exprs = [*p.exprs, *extra]
    if with_row:
        lf = lf.with_row_index("_row", offset=1)
        exprs = [pl.col("_row"), *exprs]
    return p.source(lf).select(exprs), p.checks


def _hour_filter(lf: pl.LazyFrame, hour_range: tuple[datetime, datetime] | None) -> pl.LazyFrame:
    if hour_range is None:
        return lf
    return lf.filter((pl.col("usage_start") >= hour_range[0]) & (pl.col("usage_start") < hour_range[1]))


def _first_row(f: StagedFile, hour_range, cond) -> dict | None:
    lf, _ = _frame(f, with_row=True)
    rows = _hour_filter(lf, hour_range).filter(cond).head(1).collect()
    return rows.row(0, named=True) if rows.height else None


def _first_hit(files: list[StagedFile], hour_range, cond: pl.Expr) -> tuple[StagedFile, int | None]:
    """The first file and data row where cond holds (file of the delivery and no row when none matches)."""
    for f in files:
        row = _first_row(f, hour_range, cond)
        if row:
            return f, row["_row"]
    return files[0], None


def _source_row(f: StagedFile, row: int) -> dict:
    """Data row `row` (1-based) of the source file as text, for an error message."""
    hit = f.raw.scan().slice(row - 1, 1).collect()
    return {k: (None if v is None else str(v)) for k, v in hit.row(0, named=True).items()} if hit.height else {}


def _source_column(f: StagedFile, cur: str, focus: str) -> str:
    return focus if f.fmt == "focus" else cur


def _locate_bad_value(files: list[StagedFile]) -> E.IngestError | None:
    """Which file, row and column hold a value that cannot be read (runs only once a read has failed)."""
    for f in files:
        _, checks = _frame(f)
        if not checks:
            continue
        raw = f.raw.scan().with_row_index("_row", offset=1)
        flags = [c.fails.fill_null(False).alias(f"_c{i}") for i, c in enumerate(checks)]
        hit = raw.select(pl.col("_row"), *flags).filter(pl.any_horizontal(pl.exclude("_row"))).head(1).collect()
        if not hit.height:
            continue
        row = hit.row(0, named=True)
        c = next(c for i, c in enumerate(checks) if row[f"_c{i}"])
        value = raw.filter(pl.col("_row") == row["_row"]).select(pl.col(c.column)).collect().item()
        return E.ParseError(
            f"{c.problem}: {value!r}",
            file=f.raw.name,
            row=row["_row"],
            column=c.column,
            fix="correct the value in the export (or re-deliver it); blanks are allowed",
        )
    return None


def _locate_blank_required(files: list[StagedFile], hour_range) -> E.IngestError:
    for f in files:
        hit = _first_row(f, hour_range, pl.any_horizontal([pl.col(n).is_null() for n in REQUIRED_VALUES]))
        if hit:
            n = next(n for n in REQUIRED_VALUES if hit[n] is None)
            column = source_column(f.fmt, list(f.raw.schema()), n)
            value = _raw_value(f, hit["_row"], column)
            what = f"null marker {value!r}" if value not in (None, "") else "blank value"
            return E.ParseError(
                f"{what} where a {n} is required",
                file=f.raw.name,
                row=hit["_row"],
                column=column,
                fix=f"every line item needs a {n}; re-deliver the report",
            )
    return E.ParseError("a required value is blank", file=files[0].raw.name, fix="re-deliver the report")


def _raw_value(f: StagedFile, row: int, column: str):
    if column not in f.raw.schema():
        return None
    raw = f.raw.scan(literal=True).with_row_index("_row", offset=1).filter(pl.col("_row") == row)
    return raw.select(pl.col(column).cast(pl.String)).collect().item()


def _diagnose_read_failure(files: list[StagedFile], exc: Exception) -> E.IngestError:
    for f in files:
        try:
            f.raw.scan().select(pl.len()).collect()
        except (pl.exceptions.PolarsError, OSError) as inner:
            gz = " (gzip data truncated or damaged)" if f.raw.name.lower().endswith(".gz") else ""
            return E.CorruptFileError(
                f"cannot be read{gz}: {inner}",
                file=f.raw.name,
                fix="the file is damaged; re-download it or wait for the next delivery",
            )
    return E.CorruptFileError(
        f"the delivery cannot be read: {exc}", file=files[0].raw.name, fix="re-deliver the report"
    )


READ_ERRORS = (pl.exceptions.PolarsError, OSError)


# Peak memory, not speed, is what limits a 20M-row month. The partitioned sink keeps one open row group per day
# (31 at once), and polars' default morsel is large for ~40 columns: measured on an 8M-row month, defaults peaked
# at 2.1 GB, 25k-row morsels with 32k-row row groups at 1.5 GB, for the same speed.
STREAMING_CHUNK_ROWS = 25_000
STAGING_ROW_GROUP_ROWS = 32_768


def _sink(files: list[StagedFile], hour_range, staging: Path, fast: bool) -> None:
    lf = _hour_filter(pl.concat([_frame(f, fast=fast)[0] for f in files], how="vertical"), hour_range)
    with pl.Config(streaming_chunk_size=STREAMING_CHUNK_ROWS):
        lf.sink_parquet(
            pl.PartitionBy(staging, key="usage_date", include_key=True, approximate_bytes_per_file=None),
            compression="snappy",
            mkdir=True,
            maintain_order=False,
            row_group_size=STAGING_ROW_GROUP_ROWS,
        )


def stage_delivery(
    delivery: Delivery, tenant, fmt: str, workdir: Path, hour_range: tuple[datetime, datetime] | None = None
) -> Staged:
    """Normalize one delivery into workdir/staged/usage_date=*/, validated; raises IngestError on bad input."""
    t0 = time.perf_counter()
    files = _open_files(delivery, tenant.id, fmt, workdir)
    staging = workdir / "staged"
    try:
        try:
            _sink(files, hour_range, staging, fast=True)
        except READ_ERRORS as exc:
            located = _locate_bad_value(files)
            if located is not None:
                raise located from exc
            try:  # every value is readable: some column mixes timestamp forms, so use the general parser
                shutil.rmtree(staging, ignore_errors=True)
                _sink(files, hour_range, staging, fast=False)
            except READ_ERRORS as exc2:
                raise _diagnose_read_failure(files, exc2) from exc2
        t1 = time.perf_counter()
        staged = _validate(delivery, files, staging, tenant, hour_range)
    except E.IngestError as exc:
        guards.blame_long_lines([f.raw for f in files], exc)  # the honest cause, if a .gz line is oversized
        raise
    staged.seconds = {"read_normalize_split": t1 - t0, "validate": time.perf_counter() - t1}
    return staged


def _validate(delivery, files, staging: Path, tenant, hour_range) -> Staged:
    staged_files = sorted(staging.rglob("*.parquet"))
    where = delivery.manifest_uri or files[0].raw.name
    if not staged_files and hour_range and delivery.billing_period:
        # a month's delivery with no usage in these hours: replacing them clears what the lake held there
        empty = pl.DataFrame(
            schema={
                "billing_period": pl.String,
                "rows": pl.UInt32,
                "unblended_cost": EXACT,
                "amortized_cost": EXACT,
                "line_item_type": pl.String,
                "invoiced_rows": pl.UInt32,
            }
        )
        # an AWS CUR is its payer's bill; an empty FOCUS delivery names no account, so it clears all of its hours
        accounts = None if files[0].fmt == "focus" else frozenset({tenant.organization.payer_account_id})
        return Staged(
            delivery,
            files,
            staging,
            empty,
            0,
            files[0].fmt,
            periods=frozenset({delivery.billing_period}),
            accounts=accounts,
        )
    if not staged_files:
        raise E.EmptyFileError(
            "no line items" + (" in the requested hours" if hour_range else ""),
            file=where,
            fix="check the delivery holds data" + (" for these hours" if hour_range else ""),
        )
    lf = pl.scan_parquet(staged_files, hive_partitioning=False)
    guards.check_rows(lf, lambda cond: _first_hit(files, hour_range, cond), _source_row)
    checks = lf.select(*[pl.col(n).null_count().alias(n) for n in REQUIRED_VALUES])
    stats = lf.group_by("billing_period", "currency", "line_item_type", "charge_class").agg(
        pl.len().alias("rows"),
        *[pl.col(c).cast(EXACT).sum() for c in ("unblended_cost", "amortized_cost", "public_on_demand_cost")],
        pl.col("invoice_id").is_not_null().sum().alias("invoiced_rows"),
        pl.col("usage_start").min().alias("first_hour"),
        pl.col("usage_start").max().alias("last_hour"),
    )
    payers = lf.select(*PROVIDER_COLUMNS, "payer_account_id").unique()
    hours = lf.select(pl.col("usage_start").n_unique())
    checks, stats, payers, hours = pl.collect_all([checks, stats, payers, hours])
    if any(checks.row(0)):
        raise _locate_blank_required(files, hour_range)
    malformed = [bp for bp in stats["billing_period"].unique().to_list() if not _MONTH.fullmatch(bp)]
    if malformed:
        f, row = _first_hit(files, hour_range, pl.col("billing_period") == malformed[0])
        raise E.ParseError(
            f"billing period {malformed[0]!r} is not a month (YYYY-MM...)",
            file=f.raw.name,
            row=row,
            column=_source_column(f, "bill/BillingPeriodStartDate", "BillingPeriodStart"),
            fix="correct the billing period start date in the export",
        )
    unknown = stats.filter(pl.col("charge_class").is_null())
    if unknown.height:
        lit = unknown["line_item_type"][0]
        f, row = _first_hit(files, hour_range, pl.col("line_item_type") == lit)
        raise E.UnknownLineItemTypeError(
            f"unknown line item type {lit!r}",
            file=f.raw.name,
            row=row,
            column=_source_column(f, "lineItem/LineItemType", "ChargeCategory"),
            fix="the platform knows "
            + ", ".join(sorted(LINE_ITEM_TYPES))
            + "; add the new type to schema.LINE_ITEM_TYPES with its charge class",
        )
    per_currency = stats.group_by("billing_period", "currency").agg(pl.col("rows").sum())
    mixed = per_currency.filter(pl.len().over("billing_period") > 1).sort("billing_period", "rows")
    if mixed.height:
        # the rarest currency of the month is the likely stray: show its first row
        bp, stray = mixed["billing_period"][0], mixed["currency"][0]
        found = sorted(mixed.filter(pl.col("billing_period") == bp)["currency"].to_list())
        f, row = _first_hit(files, hour_range, pl.col("currency") == stray)
        raise E.MixedCurrencyError(
            f"billing period {bp} mixes currencies {found} (first {stray} row shown)",
            file=f.raw.name,
            row=row,
            column=_source_column(f, "lineItem/CurrencyCode", "BillingCurrency"),
            fix="one tenant bills in one currency per month; split the payer accounts into separate tenants",
        )
    problem = first_problem(tenant, payers.to_dicts())
    if problem is not None:
        raise _account_error(problem, files, hour_range, tenant)
    invoiced = int(stats["invoiced_rows"].sum())  # the second read of the source only runs for invoiced months
    return Staged(
        delivery,
        files,
        staging,
        stats,
        int(hours.item()),
        files[0].fmt,
        invoices=_source_invoice_totals(files, hour_range) if invoiced else None,
        accounts=frozenset(payers["payer_account_id"].drop_nulls().to_list()),
    )


def _account_error(p: AccountProblem, files: list[StagedFile], hour_range, tenant) -> E.IngestError:
    f, row = _first_hit(files, hour_range, pl.col("payer_account_id") == p.account_id)
    column = _source_column(f, "bill/PayerAccountId", "BillingAccountId")
    if p.kind == "malformed":
        return E.MalformedAccountIdError(
            f"the file's {p.label} id {p.account_id!r} is malformed: {p.label} ids are {EXPECTED[p.provider]}, "
            f"this one has {len(p.account_id)} {'digits' if p.account_id.isdigit() else 'characters'}",
            file=f.raw.name,
            row=row,
            column=column,
            fix=f"no tenant setting can accept this id: the export was damaged or edited (a spreadsheet drops "
            f"leading zeros or rounds long numbers); re-export it from {p.provider_name or p.provider} and ingest "
            "the export as written",
        )
    # an id of a shape the provider's option refuses is registered as "other", as the export writes it
    flag = CLI_FLAGS[p.provider] if is_well_formed(p.provider, p.account_id) else CLI_FLAGS["other"]
    if p.provider == "aws":
        return E.WrongPayerError(
            f"payer account {p.account_id} is not tenant {tenant.id}'s payer {tenant.organization.payer_account_id}",
            file=f.raw.name,
            row=row,
            column=column,
            fix=f"this looks like another tenant's CUR: check tenant {tenant.id}'s cur_source, "
            "or its organization.payer_account_id; if it is a new customer, register it first "
            f"(blocks tenants add --id ID --name NAME --payer {p.account_id} --history-start YYYY-MM-DD)",
        )
    registered = ", ".join(p.registered) if p.registered else "none"
    return E.WrongPayerError(
        f"{p.label} {p.account_id} ({p.provider_name or 'provider not named'}) is not registered to tenant "
        f"{tenant.id} (registered: {registered})",
        file=f.raw.name,
        row=row,
        column=column,
        fix=f"if the account is {tenant.id}'s, register it (blocks tenants add-account {tenant.id} {flag} "
        f"{p.account_id}); otherwise this is another customer's export",
    )


def _exact(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A source cost column as an exact decimal, read from its own text where it is text: an independent sum of
    what the file says (the lake holds the normalizer's floats)."""
    if dtype != pl.String:
        return expr.cast(EXACT)
    # not strict: a value that is no decimal (inf) sums as null, so the invoice check fails instead of the read
    return expr.str.strip_chars().cast(EXACT, strict=False)


def _source_invoice_totals(files: list[StagedFile], hour_range) -> pl.DataFrame:
    """Rows and billed cost per (billing_period, invoice_id) of the source files, for the per-invoice check."""
    parts = []
    for f in files:
        schema = f.raw.schema()
        cost = source_column(f.fmt, list(schema), "unblended_cost")
        lf, _ = _frame(f, extra=(_exact(pl.col(cost), schema[cost]).alias("_billed"),))
        parts.append(
            _hour_filter(lf, hour_range)
            .filter(pl.col("invoice_id").is_not_null())
            .select("billing_period", "invoice_id", "_billed")
        )
    return (
        pl.concat(parts)
        .group_by("billing_period", "invoice_id")
        .agg(pl.len().alias("rows"), pl.col("_billed").sum().alias("billed_cost"))
        .sort("billing_period", "invoice_id")
        .collect()
    )
