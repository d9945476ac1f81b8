"""Writing one billing period as AWS delivers it: data files first, then the manifest(s) that list them.

Legacy CUR (cur1-csv, cur1-parquet):
    {out}/{report}/{YYYYMMDD-YYYYMMDD}/{assemblyId}/{report}-{n}.csv.gz | {report}-{n}.snappy.parquet
    {out}/{report}/{YYYYMMDD-YYYYMMDD}/{assemblyId}/{report}-Manifest.json
    {out}/{report}/{YYYYMMDD-YYYYMMDD}/{report}-Manifest.json          (the newest delivery, written last)
Data Exports (cur2, focus):
    {out}/{export}/data/BILLING_PERIOD=YYYY-MM/{executionId}/{export}-0000{n}.snappy.parquet
    {out}/{export}/metadata/BILLING_PERIOD=YYYY-MM/{export}-Manifest.json
Manifests name objects by bucket and key: for a local --out the bucket is "local" and keys are relative to --out.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from blocks_pipelines.lake import fs
from blocks_pipelines.sample_data import formats as F
from blocks_pipelines.sample_data.lineitems import Period

LOCAL_BUCKET = "local"
CSV_GZIP_LEVEL = 3


@dataclass(frozen=True)
class Delivery:
    billing_period: str
    delivery_id: str
    files: list[str]  # URIs of the data files
    manifests: list[str]  # URIs of the manifests (assembly-level first)
    rows: int


def bucket_key(out_uri: str, uri: str) -> tuple[str, str]:
    if fs.is_s3(uri):
        return fs.split_s3(uri)
    rel = Path(uri).resolve().relative_to(Path(out_uri).resolve())
    return LOCAL_BUCKET, rel.as_posix()


def _chunks(height: int, rows_per_file: int) -> list[tuple[int, int]]:
    if height == 0:
        return [(0, 0)]
    return [(o, min(rows_per_file, height - o)) for o in range(0, height, rows_per_file)]


# --- encoding ------------------------------------------------------------------------------------------------
def csv_gz_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_csv(buf, null_value="")
    return gzip.compress(buf.getvalue(), compresslevel=CSV_GZIP_LEVEL, mtime=0)  # mtime=0: byte-identical reruns


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    return buf.getvalue()


def map_array(li: pl.DataFrame, entries: dict[str, pl.Expr], value_type: pa.DataType = pa.string()) -> pa.Array:
    """A MAP<string, value> column holding, per row, the non-null entries (in `entries` order)."""
    n = li.height
    map_type = pa.map_(pa.string(), value_type)
    if not entries:
        return pa.nulls(n, map_type)
    long = (
        li.select(
            pl.int_range(n, dtype=pl.UInt32).alias("_row"), *[e.cast(pl.String).alias(k) for k, e in entries.items()]
        )
        .unpivot(index="_row", variable_name="key", value_name="value")
        .drop_nulls("value")
        .sort("_row", maintain_order=True)
    )
    counts = (
        pl.DataFrame({"_row": pl.int_range(n, dtype=pl.UInt32, eager=True)})
        .join(long.group_by("_row").len(), on="_row", how="left")
        .sort("_row")
        .get_column("len")
        .fill_null(0)
        .cast(pl.Int32)
    )
    offsets = pl.concat([pl.Series([0], dtype=pl.Int32), counts.cum_sum()])
    return pa.MapArray.from_arrays(
        offsets.to_arrow().cast(pa.int32()),
        long.get_column("key").to_arrow().cast(pa.string()),
        long.get_column("value").to_arrow().cast(value_type),
        type=map_type,
    )


def arrow_table(li: pl.DataFrame, columns: list[F.Col], maps: dict[str, dict[str, pl.Expr]]) -> pa.Table:
    flat = li.select(
        [(c.expr.cast(F.PARQUET_TS) if c.kind == "ts" else c.expr).alias(c.name) for c in columns if c.kind != "map"]
    ).to_arrow(compat_level=pl.CompatLevel.oldest())
    flat = flat.cast(
        pa.schema([pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type) for f in flat.schema])
    )
    for i, c in enumerate(columns):
        if c.kind == "map":
            value_type = pa.float64() if c.name in ("discount", "x_Discounts") else pa.string()
            arr = map_array(li, maps[c.name], value_type)
            flat = flat.add_column(i, pa.field(c.name, arr.type), arr)
    return flat


def _arrow_type_name(t: pa.DataType) -> str:
    if pa.types.is_map(t):
        return f"map<string,{'double' if pa.types.is_floating(t.item_type) else 'string'}>"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_floating(t):
        return "double"
    return "string"


# --- legacy CUR ----------------------------------------------------------------------------------------------
def _cur1_manifest_columns() -> list[dict]:
    out = []
    for c in F.CUR1_COLUMNS:
        category, _, name = c.name.partition("/")
        kind = {"ts": "DateTime", "float": "OptionalBigDecimal", "str": "OptionalString"}[c.kind]
        if c.name == "identity/TimeInterval":
            kind = "Interval"
        out.append({"category": category, "name": name, "type": kind})
    return out


def cur1_period_dir(out_uri: str, report: str, period: Period) -> str:
    """The billing period's folder: one subfolder per delivery (assembly) and the newest delivery's manifest."""
    return fs.join(out_uri, report, f"{period.start:%Y%m%d}-{period.end:%Y%m%d}")


def write_cur1(
    li: pl.DataFrame,
    *,
    out_uri: str,
    report: str,
    period: Period,
    assembly_id: str,
    payer: str,
    parquet: bool,
    rows_per_file: int,
) -> Delivery:
    period_dir = cur1_period_dir(out_uri, report, period)
    frame = F.cur1_frame(li, for_csv=not parquet)
    files = []
    for n, (offset, length) in enumerate(_chunks(frame.height, rows_per_file), start=1):
        part = frame.slice(offset, length)
        if parquet:
            uri = fs.join(period_dir, assembly_id, f"{report}-{n}.snappy.parquet")
            data = parquet_bytes(part.to_arrow(compat_level=pl.CompatLevel.oldest()))
        else:
            uri = fs.join(period_dir, assembly_id, f"{report}-{n}.csv.gz")
            data = csv_gz_bytes(part)
        fs.write_bytes(uri, data)
        files.append(uri)
    bucket = bucket_key(out_uri, files[0])[0]
    manifest = {
        "assemblyId": assembly_id,
        "account": payer,
        "columns": _cur1_manifest_columns(),
        "charset": "UTF-8",
        "compression": "Parquet" if parquet else "GZIP",
        "contentType": "application/x-parquet" if parquet else "text/csv",
        "reportId": hashlib.sha256(f"{payer}/{report}".encode()).hexdigest(),
        "reportName": report,
        "billingPeriod": {"start": f"{period.start:%Y%m%dT%H%M%S}.000Z", "end": f"{period.end:%Y%m%dT%H%M%S}.000Z"},
        "bucket": bucket,
        "reportKeys": [bucket_key(out_uri, f)[1] for f in files],
        "additionalArtifactKeys": [],
    }
    body = json.dumps(manifest, indent=2).encode()
    manifests = [
        fs.join(period_dir, assembly_id, f"{report}-Manifest.json"),
        fs.join(period_dir, f"{report}-Manifest.json"),
    ]
    for uri in manifests:  # the period-level manifest last: it is what readers poll
        fs.write_bytes(uri, body)
    return Delivery(period.label, assembly_id, files, manifests, li.height)


# --- Data Exports (CUR 2.0, FOCUS) ---------------------------------------------------------------------------
def export_data_dir(out_uri: str, export: str, period: Period) -> str:
    """The billing period's data folder: one subfolder per delivery (execution)."""
    return fs.join(out_uri, export, "data", f"BILLING_PERIOD={period.label}")


def write_export(
    li: pl.DataFrame,
    *,
    out_uri: str,
    export: str,
    period: Period,
    execution_id: str,
    payer: str,
    focus: bool,
    rows_per_file: int,
    region: str,
) -> Delivery:
    rows = F.focus_rows(li) if focus else li
    columns, maps = (F.FOCUS_COLUMNS, F.FOCUS_MAPS) if focus else (F.CUR2_COLUMNS, F.CUR2_MAPS)
    data_dir = fs.join(export_data_dir(out_uri, export, period), execution_id)
    files, schema = [], None
    for n, (offset, length) in enumerate(_chunks(rows.height, rows_per_file), start=1):
        table = arrow_table(rows.slice(offset, length), columns, maps)
        schema = table.schema
        uri = fs.join(data_dir, f"{export}-{n:05d}.snappy.parquet")
        fs.write_bytes(uri, parquet_bytes(table))
        files.append(uri)
    manifest = {
        "executionId": execution_id,
        "exportArn": f"arn:aws:bcm-data-exports:{region}:{payer}:export/{export}-"
        f"{hashlib.sha256(f'{payer}/{export}'.encode()).hexdigest()[:8]}",
        "reportName": export,
        "billingPeriod": {
            "start": f"{period.start:%Y-%m-%dT%H:%M:%S}.000Z",
            "end": f"{period.end:%Y-%m-%dT%H:%M:%S}.000Z",
        },
        "dataFiles": ["s3://{}/{}".format(*bucket_key(out_uri, f)) for f in files],
        "columns": [{"name": f.name, "type": _arrow_type_name(f.type)} for f in schema],
    }
    uri = fs.join(out_uri, export, "metadata", f"BILLING_PERIOD={period.label}", f"{export}-Manifest.json")
    fs.write_bytes(uri, json.dumps(manifest, indent=2).encode())
    return Delivery(period.label, execution_id, files, [uri], rows.height)


# --- where a billing period's deliveries live -----------------------------------------------------------------
def deliveries_dir(out_uri: str, report: str, period: Period, *, legacy: bool) -> str:
    """The folder holding one subfolder per delivery of the billing period."""
    return cur1_period_dir(out_uri, report, period) if legacy else export_data_dir(out_uri, report, period)
