"""Bounds and sanity checks on input before it is trusted, each failing with the file, row and column to fix.

The bounds (this docstring is their documentation):
- a line of a CSV data file is at most MAX_LINE_BYTES (1 MiB). A CUR line with every product column, 50 resource
  tags and cost categories is a few KB; a longer one is a damaged or foreign file. A plain CSV is checked before
  it is parsed, by a streaming pass in 1 MiB chunks (memchr speed), so memory stays bounded whatever the line's
  length. A .csv.gz is checked only once its read or validation failed (blame_long_lines): a second inflate of
  every file would cost as much as the parse (inflating is the CSV.gz ceiling, benchmarks/bench_ingestion.py), and
  polars streams gzip, holding one line at a time, so an oversized .gz line costs memory of its own size.
- a line item's tags (and its cost categories), as the lake's JSON text, are at most MAX_TAGS_BYTES (256 KiB):
  AWS allows 50 user tags per resource with keys of 128 and values of 256 characters, about 77 KB of JSON even at
  4 bytes a character, so anything longer is not tags AWS wrote.
- numbers are finite (NaN, inf and overflowing literals such as 1e309 are refused), and no usage interval ends
  before it starts.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl

from blocks_pipelines.ingestion import errors as E
from blocks_pipelines.ingestion.formats import squash

MAX_LINE_BYTES = 1 << 20
MAX_TAGS_BYTES = 256 << 10
_CHUNK = 1 << 20

FINITE_COLUMNS = (
    "unblended_cost",
    "amortized_cost",
    "public_on_demand_cost",
    "usage_amount",
    "savings_plan_effective_cost",
    "savings_plan_total_commitment",
    "savings_plan_used_commitment",
)
BOUNDED_TEXT = {"tags": MAX_TAGS_BYTES, "cost_categories": MAX_TAGS_BYTES}

# The source column each checked canonical column comes from, per format (the first one the file has is named).
SOURCE_COLUMNS = {
    "usage_start": ("lineItem/UsageStartDate", "line_item_usage_start_date", "ChargePeriodStart"),
    "usage_end": ("lineItem/UsageEndDate", "line_item_usage_end_date", "ChargePeriodEnd"),
    "unblended_cost": ("lineItem/UnblendedCost", "line_item_unblended_cost", "BilledCost"),
    "amortized_cost": (
        "savingsPlan/SavingsPlanEffectiveCost",
        "reservation/EffectiveCost",
        "EffectiveCost",
        "lineItem/UnblendedCost",
        "line_item_unblended_cost",
    ),
    "public_on_demand_cost": ("pricing/publicOnDemandCost", "pricing_public_on_demand_cost", "ListCost"),
    "usage_amount": ("lineItem/UsageAmount", "line_item_usage_amount", "ConsumedQuantity"),
    "savings_plan_effective_cost": ("savingsPlan/SavingsPlanEffectiveCost",),
    "savings_plan_total_commitment": ("savingsPlan/TotalCommitmentToDate",),
    "savings_plan_used_commitment": ("savingsPlan/UsedCommitment",),
    "tags": ("resource_tags", "Tags"),
    "cost_categories": ("cost_category",),
}
_FLAT_PREFIXES = {"tags": ("resourceTags/", "resource_tags_"), "cost_categories": ("costCategory/", "cost_category_")}


def check_line_lengths(path: Path, name: str, gzipped: bool) -> None:
    """Refuse a CSV with a line over MAX_LINE_BYTES, naming its line, holding at most a chunk in memory (gzip is
    inflated as a stream). Damaged gzip is left for the reader to report."""
    run, line = 0, 1  # bytes since the last line break; 1-based number of the current line
    try:
        for chunk in _chunks(path, gzipped):
            first = chunk.find(b"\n")
            if first < 0:
                run += len(chunk)
            elif run + first > MAX_LINE_BYTES:
                break
            else:  # a line wholly inside the chunk is at most a chunk long: only its two ends need counting
                line += chunk.count(b"\n")
                run = len(chunk) - chunk.rfind(b"\n") - 1
            if run > MAX_LINE_BYTES:
                break
        else:
            return
    except zlib.error:
        return
    raise E.OversizedInputError(
        f"line {line}{' (the header)' if line == 1 else ''} is over {MAX_LINE_BYTES >> 20} MiB without a line "
        "break: not a CUR line",
        file=name,
        row=line - 1 if line > 1 else None,
        fix="the file is damaged or not a CUR export (CUR lines are a few KB); re-download or re-deliver it",
    )


def blame_long_lines(raws: list, failure: E.IngestError) -> None:
    """After a read or validation failure: if a gzipped CSV has an oversized line, that is the real cause (it parses
    as one odd row, blank where values are required), so raise that instead."""
    if isinstance(failure, E.OversizedInputError):
        return
    for raw in raws:
        if raw.gzipped:
            check_line_lengths(raw.path, raw.name, gzipped=True)


def _chunks(path: Path, gzipped: bool) -> Iterator[bytes]:
    """The file's bytes (inflated when gzipped, every gzip member) at most _CHUNK at a time."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzipped else None
    with open(path, "rb") as fh:
        while raw := fh.read(_CHUNK):
            while inflate is not None and raw:
                yield inflate.decompress(raw, _CHUNK)
                raw = inflate.unconsumed_tail
                if inflate.eof:  # a multi-member gzip: the next member starts in unused_data
                    raw, inflate = inflate.unused_data + raw, zlib.decompressobj(16 + zlib.MAX_WBITS)
            if inflate is None:
                yield raw


def check_unique_header(columns: list[str], name: str) -> None:
    """Refuse a header naming a column twice (polars renames the second `x_duplicated_0`; Parquet cannot be read)."""
    seen = set(columns)
    for i, c in enumerate(columns):
        base, sep, n = c.rpartition("_duplicated_")
        if sep and n.isdigit() and base in seen:
            raise E.DuplicateColumnError(
                f"column {base!r} appears more than once in the header (again as column {i + 1}): one of them "
                "would be silently lost",
                file=name,
                column=base,
                fix="AWS writes each column once; re-export the report, or remove the duplicate column by hand "
                "after checking which one holds the data",
            )


def row_checks() -> dict[str, tuple[pl.Expr, str]]:
    """Per canonical column: the condition that makes a staged row bad, and what is wrong."""
    out = {c: (~pl.col(c).is_finite().fill_null(True), "is not a finite number") for c in FINITE_COLUMNS}
    out["usage_end"] = (pl.col("usage_end") < pl.col("usage_start"), "is before usage_start")
    for c, bound in BOUNDED_TEXT.items():
        out[c] = (pl.col(c).str.len_bytes() > bound, f"is over the {bound >> 10} KiB bound for one line item")
    return out


def check_rows(lf: pl.LazyFrame, locate: Callable[[pl.Expr], tuple], source_row: Callable) -> None:
    """One aggregate pass over the staged rows; on a hit, locate the first bad source row and raise naming it.

    locate(cond) -> (StagedFile, row) as staging._first_hit; source_row(StagedFile, row) -> that raw row as a dict."""
    checks = row_checks()
    hits = lf.select(*[cond.any().alias(c) for c, (cond, _) in checks.items()]).collect().row(0, named=True)
    for col, hit in hits.items():
        if not hit:
            continue
        cond, problem = checks[col]
        f, row = locate(cond)
        raw = source_row(f, row) if row else {}
        source = source_column(col, list(f.raw.schema()), raw)
        value = raw.get(source) if source else None
        shown = (
            f": {value[:80]!r}... ({len(value)} characters)"
            if isinstance(value, str) and len(value) > 80
            else f": {value!r}"
            if value is not None
            else ""
        )
        error = E.OversizedInputError if col in BOUNDED_TEXT else E.ParseError
        raise error(
            f"{col} {problem}{shown}",
            file=f.raw.name,
            row=row,
            column=source or col,
            fix=_FIXES.get(col, _FIXES["number"]),
        )


_FIXES = {
    "number": "CUR costs and quantities are finite decimals; correct the value in the export or re-deliver it",
    "usage_end": "a line item's usage end is at or after its start; correct the row or re-deliver the report",
    "tags": "AWS tags are at most 50 per resource, 256 characters a value; the export is damaged, re-deliver it",
    "cost_categories": "cost category values are short names; the export is damaged, re-deliver it",
}


def source_column(canonical: str, columns: list[str], raw: dict) -> str | None:
    """The source column a canonical value came from: the first candidate the file has; for flat tag columns
    (legacy CUR) the longest one in the row."""
    by_squash = {squash(c): c for c in columns}
    for candidate in SOURCE_COLUMNS.get(canonical, ()):
        if squash(candidate) in by_squash:
            return by_squash[squash(candidate)]
    flat = [c for c in columns if c.startswith(_FLAT_PREFIXES.get(canonical, ("\0",)))]
    if flat:
        return max(flat, key=lambda c: len(raw.get(c) or ""))
    return None
