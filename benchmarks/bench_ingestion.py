"""Ingestion throughput and peak RSS, end to end (read, normalize, validate, write the lake), on synthetic months.

    python -m benchmarks.bench_ingestion                      # 2M-row CUR 2.0 Parquet month, 1M-row CSV.gz
    BLOCKS_BENCH_ROWS=10000000 python -m benchmarks.bench_ingestion   # the real target size
    BLOCKS_BENCH_RSS_ROWS=20000000 ...                        # also measure peak RSS on a 20M-row month

Each ingest runs in a child process so its peak RSS is its own. The baseline is a bare polars streaming rewrite
(scan_parquet -> select the canonical source columns, tags map included -> sink_parquet) of the same file.
Two diagnostic rewrites show where the rest goes: the ingester's own normalization into one file (no day split,
no validation, no lake), and the same with the tag and cost category maps copied as maps instead of JSON text.
For CSV.gz the ceilings are printed too: inflating the gzip stream alone (one stream, one core: nothing after it
can be faster) and polars' parse of every column as text, with no normalization and no write.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tests.synthetic.cur_frames import as_maps, cur1_frame, cur2_frame, write_export_delivery

TARGETS = {"parquet_rows_per_s": 2_000_000, "csv_gz_rows_per_s": 1_000_000, "rss_20m_gib": 2.0}
PAYER, ACCOUNTS = "222222222222", ["222222222223", "222222222224", "222222222225"]
CHUNK = 1_000_000
BASELINE_COLUMNS = [
    "bill_payer_account_id",
    "line_item_usage_account_id",
    "line_item_line_item_type",
    "line_item_usage_start_date",
    "line_item_usage_end_date",
    "line_item_product_code",
    "line_item_usage_type",
    "line_item_operation",
    "line_item_availability_zone",
    "line_item_resource_id",
    "product_instance_type",
    "product_product_family",
    "product_region_code",
    "pricing_term",
    "line_item_usage_amount",
    "pricing_unit",
    "line_item_currency_code",
    "line_item_unblended_cost",
    "pricing_public_on_demand_cost",
    "savings_plan_savings_plan_a_r_n",
    "savings_plan_savings_plan_effective_cost",
    "savings_plan_total_commitment_to_date",
    "savings_plan_used_commitment",
    "reservation_reservation_a_r_n",
    "bill_invoice_id",
    "resource_tags",
    "cost_category",
    "billing_period",
]


def write_cur2_month(root: Path, rows: int) -> Path:
    """A CUR 2.0 Parquet delivery written in 1M-row chunks (so the generator never holds the month); product,
    resource_tags and cost_category are Parquet MAP columns, as AWS writes them."""
    data = root / "src" / "bench-cur2" / "data" / "BILLING_PERIOD=2026-10" / "exec-1" / "bench-cur2-1.snappy.parquet"
    data.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    for off in range(0, rows, CHUNK):
        table = as_maps(cur2_frame(min(CHUNK, rows - off), "2026-10", PAYER, ACCOUNTS, offset=off)).to_arrow()
        writer = writer or pq.ParquetWriter(data, table.schema, compression="snappy")
        writer.write_table(table, row_group_size=122_880)
    writer.close()
    manifest = root / "src" / "bench-cur2" / "metadata" / "BILLING_PERIOD=2026-10" / "bench-cur2-Manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps(
            {
                "executionId": "exec-1",
                "billingPeriod": {"start": "20261001T000000.000Z", "end": "20261101T000000.000Z"},
                "dataFiles": [f"s3://local/{data.relative_to(root / 'src')}"],
                "reportName": "bench-cur2",
                "columns": [],
            }
        )
    )
    return manifest


def write_csv_gz(root: Path, rows: int) -> Path:
    frame = cur1_frame(rows, "2026-10", PAYER, ACCOUNTS)
    write_export_delivery(str(root / "csv"), "bench-csv", [frame], "2026-10", root / "csv-work", suffix="csv.gz")
    return next((root / "csv").rglob("*-Manifest.json"))


def child_ingest(manifest: str, lake: str) -> None:
    from blocks_pipelines.ingestion.ingest import ingest_delivery
    from blocks_pipelines.settings import get_settings
    from blocks_pipelines.tenants.config import load_registry

    tenant = {t.id: t for t in load_registry(get_settings().tenants_dir)}["globex"]
    t0, c0 = time.perf_counter(), _cpu_s()
    s = ingest_delivery(tenant, manifest, lake_uri=lake)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": s.rows,
                "matches": s.matches,
                "rss_gib": _hwm_gib(),
                "stages": s.seconds,
                "cpu_s": _cpu_s() - c0,
            }
        )
    )


def _data_file(manifest: str) -> Path:
    """The local path of the (single) data file write_cur2_month's manifest lists."""
    doc = json.loads(Path(manifest).read_text())
    return Path(manifest).parents[3] / doc["dataFiles"][0].split("/", 3)[3]


def child_baseline(manifest: str, out: str) -> None:
    src = _data_file(manifest)
    t0, c0 = time.perf_counter(), _cpu_s()
    pl.scan_parquet(src).select(BASELINE_COLUMNS).sink_parquet(out, compression="snappy")
    print(json.dumps({"seconds": time.perf_counter() - t0, "rss_gib": _hwm_gib(), "cpu_s": _cpu_s() - c0}))


def child_normalize_only(manifest: str, out: str, tags: str) -> None:
    """The ingester's normalization of the file into one Parquet file, with staging's streaming batch and row group
    sizes (so the difference to ours is the day split, validation and the lake); tags="maps" copies the map columns
    as is."""
    from blocks_pipelines.ingestion import formats
    from blocks_pipelines.ingestion.normalize import STAGING_ROW_GROUP_ROWS, STREAMING_CHUNK_ROWS

    src = _data_file(manifest)
    lf = pl.scan_parquet(src, hive_partitioning=False)
    ctx = formats.SourceContext("globex", "bench", str(src), "2026-10")
    p = formats.plan(dict(lf.collect_schema()), "cur2", ctx, lf.head(formats.SAMPLE_ROWS).collect())
    exprs = p.exprs
    if tags == "maps":
        maps = {"tags": "resource_tags", "cost_categories": "cost_category"}
        exprs = [
            pl.col(maps[e.meta.output_name()]).alias(e.meta.output_name()) if e.meta.output_name() in maps else e
            for e in exprs
        ]
    t0, c0 = time.perf_counter(), _cpu_s()
    with pl.Config(streaming_chunk_size=STREAMING_CHUNK_ROWS):
        p.source(lf).select(exprs).sink_parquet(
            out, compression="snappy", maintain_order=False, row_group_size=STAGING_ROW_GROUP_ROWS
        )
    print(json.dumps({"seconds": time.perf_counter() - t0, "rss_gib": _hwm_gib(), "cpu_s": _cpu_s() - c0}))


def child_csv_ceiling(manifest: str) -> None:
    """Seconds to inflate the delivery's gzip data (zlib, one stream) and to parse it with polars, nothing else."""
    import zlib

    data = next(Path(manifest).parents[2].rglob("*.csv.gz"))  # the export folder's one data file
    t0 = time.perf_counter()
    inflater, size = zlib.decompressobj(31), 0
    with data.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            size += len(inflater.decompress(chunk))
    t1 = time.perf_counter()
    pl.scan_csv(data, infer_schema=False).select(pl.all().str.len_bytes().sum()).collect(engine="streaming")
    print(json.dumps({"inflate_s": t1 - t0, "parse_s": time.perf_counter() - t1, "bytes": size, "rss_gib": _hwm_gib()}))


def _stages_line(child: dict) -> str:
    return "  stages: " + ", ".join(f"{k.replace('_', ' ')} {v:.2f} s" for k, v in child["stages"].items())


def _cpu_s() -> float:
    """CPU seconds of this process (all threads): less sensitive than wall time to other work on the machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _hwm_gib() -> float:
    """Peak RSS of this process image (VmHWM: unlike ru_maxrss it does not count the forking parent's pages)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def run_child(*args: str) -> tuple[dict, float]:
    """The child's JSON line and its peak RSS in GiB."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_ingestion", *args], capture_output=True, text=True, check=True
    )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out, out["rss_gib"]


def main() -> None:
    rows = int(os.environ.get("BLOCKS_BENCH_ROWS", 2_000_000))
    csv_rows = int(os.environ.get("BLOCKS_BENCH_CSV_ROWS", min(rows, 1_000_000)))
    rss_rows = int(os.environ.get("BLOCKS_BENCH_RSS_ROWS", 0))
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (other work skews the figures)")
    with tempfile.TemporaryDirectory(prefix="blocks-bench-") as tmp:
        root = Path(tmp)
        manifest = write_cur2_month(root, rows)
        base, _ = run_child("--baseline", str(manifest), str(root / "baseline.parquet"))
        ours, rss = run_child("--ingest", str(manifest), str(root / "lake"))
        rate, base_rate = rows / ours["seconds"], rows / base["seconds"]
        print(
            f"CUR 2.0 Parquet, {rows:,} rows: {ours['seconds']:.2f} s = {rate / 1e6:.2f}M rows/s "
            f"(target >= {TARGETS['parquet_rows_per_s'] / 1e6:.1f}M), totals match: {ours['matches']}"
        )
        print(
            f"  bare polars rewrite: {base['seconds']:.2f} s = {base_rate / 1e6:.2f}M rows/s; "
            f"ratio ours/bare = {rate / base_rate:.2f} (by CPU seconds, {ours['cpu_s']:.1f} vs {base['cpu_s']:.1f}: "
            f"{base['cpu_s'] / ours['cpu_s']:.2f})"
        )
        print(f"  peak RSS: ours {rss:.2f} GiB, bare rewrite {base['rss_gib']:.2f} GiB")
        print(_stages_line(ours))
        one, _ = run_child("--normalize-only", str(manifest), str(root / "one.parquet"), "json")
        maps, _ = run_child("--normalize-only", str(manifest), str(root / "maps.parquet"), "maps")
        print(
            f"  where the gap is: the same normalization into one file takes {one['seconds']:.2f} s "
            f"({rows / one['seconds'] / 1e6:.2f}M rows/s; the rest of ours is the day split, validation and the "
            f"lake), {maps['seconds']:.2f} s ({rows / maps['seconds'] / 1e6:.2f}M rows/s) with tags and cost "
            "categories kept as maps instead of JSON text"
        )
        csv_manifest = write_csv_gz(root, csv_rows)
        csv, _ = run_child("--ingest", str(csv_manifest), str(root / "lake-csv"))
        csv_rate = csv_rows / csv["seconds"]
        print(
            f"legacy CSV.gz, {csv_rows:,} rows: {csv['seconds']:.2f} s = {csv_rate / 1e6:.2f}M rows/s"
            f" (target >= {TARGETS['csv_gz_rows_per_s'] / 1e6:.1f}M), totals match: {csv['matches']}"
        )
        print(_stages_line(csv))
        ceiling, _ = run_child("--csv-ceiling", str(csv_manifest))
        print(
            f"  ceilings on this machine: inflating the gzip alone "
            f"{csv_rows / ceiling['inflate_s'] / 1e6:.2f}M rows/s ({ceiling['bytes'] / csv_rows:.0f} bytes a row), "
            f"polars' text parse with no normalization or write {csv_rows / ceiling['parse_s'] / 1e6:.2f}M rows/s; "
            f"ours/parse = "
            f"{ceiling['parse_s'] / csv['seconds']:.2f}"
        )
        if rss_rows:
            big = write_cur2_month(root / "big", rss_rows)
            out, rss = run_child("--ingest", str(big), str(root / "lake-big"))
            print(
                f"CUR 2.0 Parquet, {rss_rows:,} rows: {out['seconds']:.2f} s, peak RSS {rss:.2f} GiB "
                f"(target < {TARGETS['rss_20m_gib']} GiB)"
            )
        else:
            print("(set BLOCKS_BENCH_RSS_ROWS=20000000 to measure the 20M-row peak RSS target)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--ingest":
        child_ingest(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "--normalize-only":
        child_normalize_only(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) > 1 and sys.argv[1] == "--csv-ceiling":
        child_csv_ceiling(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "--baseline":
        child_baseline(sys.argv[2], sys.argv[3])
    else:
        main()
