"""Where deliveries are: manifests of legacy CUR and AWS Data Exports (CUR 2.0, FOCUS), or bare data files.

Legacy:  {root}/{report}/{YYYYMMDD-YYYYMMDD}/{report}-Manifest.json (newest) and .../{assemblyId}/{report}-Manifest.json
Exports: {root}/{export}/metadata/BILLING_PERIOD=YYYY-MM/{export}-Manifest.json listing data/BILLING_PERIOD=.../...
A delivery is always a whole billing month so far; its id is the assemblyId / executionId.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tempfile
import zlib
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import cached_property
from pathlib import Path

import polars as pl

from blocks_pipelines.ingestion.errors import (
    AmbiguousSourceError,
    CorruptFileError,
    MissingFileError,
    UnsafeManifestKeyError,
)
from blocks_pipelines.ingestion.readers import NULL_MARKERS, is_data_file
from blocks_pipelines.ingestion.timeparse import parse_manifest_time
from blocks_pipelines.lake import fs
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig, resolve_source_uri

_PERIOD_FOLDER = r"\d{8}-\d{8}"  # a legacy report's billing period folder, 20261001-20261101
_PERIOD_DIR = re.compile(rf"^{_PERIOD_FOLDER}$")
INVOICE_COLUMNS = ("bill/InvoiceId", "bill_invoice_id", "InvoiceId")


@dataclass(frozen=True)
class Delivery:
    billing_period: str | None  # YYYY-MM; None for bare files (taken from the data)
    delivery_id: str
    manifest_uri: str | None
    data_files: tuple[str, ...]
    fmt: str | None = None  # cur1 | cur2 | focus when the manifest says so

    @cached_property
    def is_final(self) -> bool:
        """True once AWS has invoiced the month (bill/InvoiceId filled), read from the first rows of the data."""
        return bool(self.data_files) and peek_invoice_id(self.data_files[0]) is not None


def delivered_at(delivery: Delivery) -> str | None:
    """When AWS delivered it (ISO UTC): the manifest's last-modified time, AWS writing it last; for bare files the
    newest data file's. What orders two deliveries of one month (assembly and execution ids are not ordered)."""
    uris = [delivery.manifest_uri] if delivery.manifest_uri else list(delivery.data_files)
    times = [i.modified for i in map(fs.info, uris) if i is not None]
    return max(times).astimezone(timezone.utc).isoformat() if times else None


def month_bounds(bp: str) -> tuple[datetime, datetime]:
    """[start, end) of a YYYY-MM billing period, UTC."""
    y, m = map(int, bp.split("-"))
    start = datetime(y, m, 1, tzinfo=timezone.utc)
    return start, datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=timezone.utc)


def _in_report(key: str, report: str) -> re.Match | None:
    """Group 1: the key from `{report}/` on; group 2: the part after it (`<period>/<assembly>/<file>` or
    `data/BILLING_PERIOD=.../<id>/<file>`). A prefix may repeat the report's name: the segment before the period
    or data folder is the one."""
    return re.search(rf"(?:^|/)({re.escape(report)}/((?:{_PERIOD_FOLDER}|data|metadata)/.*))$", key)


def _resolve_key(key: str, report: str, root: str) -> str:
    """A manifest's bucket key (or s3:// uri) as a uri under `root`, found by the `{report}/` segment in it."""
    if key.startswith("s3://"):
        key = fs.split_s3(key)[1]
    m = _in_report(key, report)
    if not m:
        idx = key.find(f"{report}/")
        if idx < 0:
            raise MissingFileError(
                f"data file key {key!r} does not contain '{report}/'",
                fix="the manifest belongs to another report; point at the right source",
            )
        return fs.join(root, key[idx:])
    return fs.join(root, m.group(1))


def _root_of(manifest_uri: str) -> str:
    parts = manifest_uri.rstrip("/").split("/")
    if len(parts) >= 4 and parts[-2].startswith("BILLING_PERIOD="):
        return "/".join(parts[:-4])
    if len(parts) >= 3 and _PERIOD_DIR.match(parts[-2]):
        return "/".join(parts[:-3])
    if len(parts) >= 4 and _PERIOD_DIR.match(parts[-3]):
        return "/".join(parts[:-4])
    return "/".join(parts[:-2])


_MANIFEST_FIX = "point at a CUR or Data Exports manifest as AWS wrote it, or re-deliver the report"


def _manifest_period(doc: dict, manifest_uri: str) -> str | None:
    """The manifest's billing month (YYYY-MM) from billingPeriod.start; None when it has no billingPeriod."""
    bp = doc.get("billingPeriod")
    if bp in (None, {}, ""):
        return None
    start = bp.get("start") if isinstance(bp, dict) else None
    try:
        if not isinstance(start, str):
            raise ValueError("no start time")
        return parse_manifest_time(start).strftime("%Y-%m")
    except ValueError as exc:
        raise CorruptFileError(
            f"billingPeriod {json.dumps(bp)[:200]} is not a billing period ({exc})",
            file=manifest_uri,
            column="billingPeriod",
            fix='AWS writes {"start": "20261001T000000.000Z", "end": ...}; ' + _MANIFEST_FIX,
        ) from exc


def _manifest_keys(doc: dict, field: str, manifest_uri: str) -> list[str]:
    keys = doc.get(field, [])
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CorruptFileError(
            f"{field} must be a list of object keys, found {json.dumps(keys)[:200]}",
            file=manifest_uri,
            column=field,
            fix=_MANIFEST_FIX,
        )
    return keys


def read_manifest(manifest_uri: str, root: str | None = None) -> Delivery:
    try:
        doc = json.loads(fs.read_bytes(manifest_uri))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(
            f"manifest is not JSON ({exc})",
            file=manifest_uri,
            fix="wait for AWS to finish writing the delivery, or re-deliver it",
        ) from exc
    if not isinstance(doc, dict):
        raise CorruptFileError(
            f"manifest is a JSON {type(doc).__name__}, not an object", file=manifest_uri, fix=_MANIFEST_FIX
        )
    root = root if root is not None else _root_of(manifest_uri)
    report = doc.get("reportName") or manifest_uri.rsplit("/", 1)[-1].removesuffix("-Manifest.json")
    if not isinstance(report, str) or not _SAFE_NAME.fullmatch(report):
        raise UnsafeManifestKeyError(
            f"reportName {report!r} is not a report name", file=manifest_uri, column="reportName", fix=_MANIFEST_FIX
        )
    period = _manifest_period(doc, manifest_uri)
    listed = doc.get("columns") or []
    columns = [c.get("name") if isinstance(c, dict) else str(c) for c in listed] if isinstance(listed, list) else []
    if "assemblyId" in doc:
        keys, delivery_id = _manifest_keys(doc, "reportKeys", manifest_uri), doc["assemblyId"]
        fmt = "cur1"
    elif "executionId" in doc or "dataFiles" in doc:
        keys = _manifest_keys(doc, "dataFiles", manifest_uri)
        delivery_id = doc.get("executionId") or _files_id(keys)
        # the manifest names the format only through its column list; without one the data file's columns decide
        fmt = "focus" if "BilledCost" in columns else "cur2" if "line_item_line_item_type" in columns else None
    else:
        raise CorruptFileError(
            "manifest has neither assemblyId/reportKeys nor executionId/dataFiles",
            file=manifest_uri,
            fix="point at a CUR or Data Exports manifest",
        )
    for key in keys:
        _confine(key, report, manifest_uri, "reportKeys" if fmt == "cur1" else "dataFiles")
    files = tuple(_locate(k, report, root, manifest_uri) for k in keys)
    return Delivery(
        billing_period=period, delivery_id=str(delivery_id), manifest_uri=manifest_uri, data_files=files, fmt=fmt
    )


_SAFE_NAME = re.compile(r"[A-Za-z0-9!\-_.*'()]{1,256}")  # S3-safe characters, the only ones AWS allows in names


def _confine(key: str, report: str, manifest_uri: str, field: str) -> None:
    """Refuse a key that could name a file outside the report's own prefix: a manifest only ever lists its
    report's data (`<prefix>/<report>/...`), so `..`, absolute paths and other prefixes are tampering or a
    mistake, and reading them could ingest (or expose) files that are not this tenant's CUR."""
    path = fs.split_s3(key)[1] if key.startswith("s3://") else key
    parts = path.split("/")
    problem = None
    if "\\" in key or "\x00" in key:
        problem = "holds a backslash or NUL"
    elif path.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", path) or "://" in path:
        problem = "is an absolute path"
    elif any(p in ("..", ".") for p in parts):
        problem = "climbs out of its folder (`..` or `.` segments)"
    elif report not in parts[:-1]:
        problem = f"lies outside the report's prefix (no `{report}/` folder in it)"
    if problem:
        raise UnsafeManifestKeyError(
            f"data file key {key!r} {problem}",
            file=manifest_uri,
            column=field,
            fix="a manifest lists only its own report's files; re-deliver the report or "
            "point at the manifest AWS wrote",
        )


def _locate(key: str, report: str, root: str, manifest_uri: str) -> str:
    """A manifest key as a uri: where AWS's layout puts it under `root`, else (local sources only) where a copy
    made with other folder names keeps it: `aws s3 sync` of the report's folder under another name, or the
    manifest and its data files in one folder. A file found nowhere stays at AWS's place, to be reported missing."""
    uri = _resolve_key(key, report, root)
    if fs.is_s3(uri) or fs.exists(uri):
        return uri
    manifest_dir = manifest_uri.rsplit("/", 1)[0]
    m = _in_report(key, report)
    tail = m.group(2) if m else key.rsplit("/", 1)[-1]
    up = manifest_dir.split("/")
    # above the period folder (legacy, period-level manifest), above the assembly or metadata folder, beside it
    for alt in (
        fs.join("/".join(up[:-1]), tail),
        fs.join("/".join(up[:-2]), tail),
        fs.join(manifest_dir, tail.rsplit("/", 1)[-1]),
    ):
        if fs.exists(alt):
            return alt
    return uri


def _files_id(uris: list[str]) -> str:
    return "files-" + hashlib.sha1("\n".join(sorted(uris)).encode()).hexdigest()[:16]


def _months(start: date, end: date) -> list[str]:
    out, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = y + (m == 12), m % 12 + 1
    return out


def tenant_manifest_uri(tenant: TenantConfig, billing_period: str, root: str | None = None) -> str:
    """Where the newest manifest of one billing month lives, by the tenant's source layout."""
    root = root or resolve_source_uri(tenant.cur_source, get_settings().home)
    report = tenant.cur_source.report_name
    if tenant.cur_source.format.value == "cur1":
        start, end = month_bounds(billing_period)
        return fs.join(root, report, f"{start:%Y%m%d}-{end:%Y%m%d}", f"{report}-Manifest.json")
    return fs.join(root, report, "metadata", f"BILLING_PERIOD={billing_period}", f"{report}-Manifest.json")


def discover_deliveries(tenant: TenantConfig, *, today: date | None = None) -> list[Delivery]:
    """The newest delivery of every billing month from history_start to today, one manifest read per month
    (scoped per billing period, so a tick never lists the whole bucket)."""
    root = resolve_source_uri(tenant.cur_source, get_settings().home)
    today = today or datetime.now(timezone.utc).date()
    out = []
    for bp in _months(tenant.history_start, today):
        uri = tenant_manifest_uri(tenant, bp, root)
        if fs.exists(uri):
            out.append(read_manifest(uri, root))
    return out


def deliveries_in_source(source_uri: str) -> list[Delivery]:
    """Deliveries in a file, folder or S3 prefix: each month's newest manifest, else the data files as one."""
    name = source_uri.rsplit("/", 1)[-1]
    if name.endswith("Manifest.json") and fs.exists(source_uri):
        return [read_manifest(source_uri)]
    objects = list(fs.list_objects(source_uri))
    if not objects:
        raise MissingFileError(
            "nothing found at this source",
            file=source_uri,
            fix="check the path or S3 prefix (and credentials / endpoint for S3)",
        )
    manifests = [o.uri for o in objects if o.uri.endswith("-Manifest.json")]
    if manifests:
        newest: dict[str, str] = {}
        for uri in manifests:  # the period-level legacy manifest (shortest path) is the newest assembly
            d_bp = read_manifest(uri).billing_period or uri
            if d_bp not in newest or len(uri) < len(newest[d_bp]):
                newest[d_bp] = uri
        return [read_manifest(u) for _, u in sorted(newest.items())]
    files = [o for o in objects if is_data_file(o.uri)]
    if not files:
        raise MissingFileError(
            "no CUR data files (.csv, .csv.gz, .zip, .parquet) and no manifest here",
            file=source_uri,
            fix="point at a CUR report folder, a manifest or a data file",
        )
    _refuse_several_deliveries_of_a_month([o.uri for o in files], source_uri)
    return [Delivery(None, _files_id([f"{o.uri}:{o.size}" for o in files]), None, tuple(o.uri for o in files))]


# .../<report>/<yyyymmdd-yyyymmdd>/<assemblyId>/<file> (legacy) and .../data/BILLING_PERIOD=YYYY-MM/<executionId>/<file>
_DELIVERY_DIR = re.compile(rf"/({_PERIOD_FOLDER}|BILLING_PERIOD=\d{{4}}-\d{{2}})/([^/]+)/[^/]+$")


def _refuse_several_deliveries_of_a_month(uris: list[str], source_uri: str) -> None:
    """Without a manifest, files of two deliveries of one month would be summed: every delivery is the whole month
    so far, so that doubles it. Refuse rather than guess which delivery is the newest."""
    by_period: dict[str, set[str]] = {}
    for uri in uris:
        m = _DELIVERY_DIR.search(uri)
        if m:
            by_period.setdefault(m.group(1), set()).add(m.group(2))
    for period, deliveries in sorted(by_period.items()):
        if len(deliveries) > 1:
            raise AmbiguousSourceError(
                f"{len(deliveries)} deliveries of {period} and no manifest ({', '.join(sorted(deliveries)[:3])}): "
                "each holds the whole month, so ingesting all would double it",
                file=source_uri,
                fix="copy the report's manifests too (the newest one names its delivery), or point at one delivery "
                "folder or one manifest",
            )


def _head_bytes(uri: str, n: int) -> bytes:
    if fs.is_s3(uri):
        bucket, key = fs.split_s3(uri)
        return fs.s3_client().get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{n - 1}")["Body"].read()
    with open(uri, "rb") as fh:
        return fh.read(n)


def peek_invoice_id(uri: str, head: int = 1 << 18) -> str | None:
    """The first non-blank invoice id in the first rows of a data file (None while the month is not final)."""
    low = uri.lower()
    try:
        if low.endswith(".parquet") or low.endswith(".zip"):
            with tempfile.TemporaryDirectory() as tmp:
                local = fs.fetch_to_local(uri, Path(tmp))
                if low.endswith(".zip"):
                    import zipfile

                    with zipfile.ZipFile(local) as zf:
                        text = zf.read(zf.namelist()[0])[:head]
                    return _invoice_from_csv(text)
                cols = pl.read_parquet_schema(local)
                col = next((c for c in INVOICE_COLUMNS if c in cols), None)
                if col is None:
                    return None
                vals = pl.scan_parquet(local).select(pl.col(col).cast(pl.String)).drop_nulls().head(1).collect()
                return vals.item() if vals.height and vals.item() else None
        raw = _head_bytes(uri, head)
        if low.endswith(".gz"):
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw)
        return _invoice_from_csv(raw)
    except (OSError, zlib.error, gzip.BadGzipFile, pl.exceptions.PolarsError):
        return None


def _invoice_from_csv(raw: bytes) -> str | None:
    text = raw[: raw.rfind(b"\n") + 1] or raw
    df = pl.read_csv(io.BytesIO(text), infer_schema=False, null_values=list(NULL_MARKERS))  # NULL is no invoice
    col = next((c for c in INVOICE_COLUMNS if c in df.columns), None)
    if col is None:
        return None
    vals = df.get_column(col).drop_nulls()
    vals = vals.filter(vals.str.len_bytes() > 0)
    return vals[0] if len(vals) else None
