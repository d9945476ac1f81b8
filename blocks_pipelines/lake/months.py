"""Month versions: which day files make up each (tenant, billing month) of line items, swapped in one write.

A write lays the month's new day files in a fresh version folder (invisible: no reader lists folders), then
replaces the month's pointer `_current.json` in one conditional write, then deletes every file no pointer names.
A version folder always holds the whole month (a day a write does not touch is linked or copied in), so a month is
one path. Readers resolve pointers: dbt on DuckDB gets one glob per month's version folder (current_globs), the lake
checks and tests an explicit file list (current_files), Athena a symlink manifest per (tenant, month) rewritten after
each swap. They see exactly the old month or exactly the new one, locally and on S3, and a crash at any point leaves
the old month whole: the next write of the month sweeps what the crashed one left.
"""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path

from blocks_pipelines.lake import fs, layout

POINTER_FORMAT = 1
_PERIOD_DIR = "billing_period="
_VERSION = re.compile(r"[0-9A-Za-z_-]{1,64}")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")


class CorruptPointerError(RuntimeError):
    """A month pointer that cannot be read: the month's files are unknown until it is rewritten."""


@dataclass(frozen=True)
class MonthFile:
    name: str  # relative to the month folder (layout.line_items_file_name)
    usage_date: date
    rows: int


@dataclass(frozen=True)
class MonthVersion:
    tenant_id: str
    billing_period: str
    version: str
    files: tuple[MonthFile, ...]
    # the CUR delivery the month holds and when it was delivered (manifest's time): an older one never replaces it
    delivery_id: str | None = None
    delivered_at: str | None = None
    committed_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    def to_json(self) -> bytes:
        doc = {"format": POINTER_FORMAT, **asdict(self)}
        doc["files"] = [{"name": f.name, "usage_date": f.usage_date.isoformat(), "rows": f.rows} for f in self.files]
        return json.dumps(doc, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> MonthVersion:
        try:
            doc = json.loads(data)
            files = tuple(
                MonthFile(f["name"], date.fromisoformat(f["usage_date"]), int(f["rows"])) for f in doc["files"]
            )
            out = cls(
                doc["tenant_id"],
                doc["billing_period"],
                doc["version"],
                files,
                doc.get("delivery_id"),
                doc.get("delivered_at"),
                doc.get("committed_at", ""),
            )
            # every file lies in the pointer's own version folder: a name elsewhere (`..`, another month) would
            # have readers read outside the month
            stray = [f.name for f in files if f.name != layout.line_items_file_name(out.version, f.usage_date)]
            if stray or not _VERSION.fullmatch(out.version) or not _MONTH.fullmatch(out.billing_period):
                raise ValueError(f"names outside its version folder: {(stray or [out.version])[0]!r}")
            return out
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptPointerError(
                f"{where}: month pointer unreadable ({exc}); re-ingest the month's delivery to rewrite it"
            ) from exc

    def uris(self, lake_uri: str) -> list[str]:
        return [layout.line_items_file_uri(lake_uri, self.tenant_id, self.billing_period, f.name) for f in self.files]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


def new_version_id(now: datetime | None = None) -> str:
    """Sortable by time, unique across writers."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"


def read_month(lake_uri: str, tenant_id: str, billing_period: str) -> tuple[MonthVersion | None, str | None]:
    """The month's current version and its pointer's version tag (for the conditional swap); (None, None) if the
    month was never written."""
    uri = layout.line_items_pointer_uri(lake_uri, tenant_id, billing_period)
    got = fs.read_versioned(uri)
    if got is None:
        return None, None
    month = MonthVersion.from_json(got[0], uri)
    if (month.tenant_id, month.billing_period) != (tenant_id, billing_period):
        raise CorruptPointerError(
            f"{uri}: the pointer is tenant {month.tenant_id}'s {month.billing_period}, not "
            f"{tenant_id}'s {billing_period} (copied from elsewhere?); re-ingest the month"
        )
    return month, got[1]


def tenant_months(lake_uri: str, tenant_id: str) -> list[str]:
    """Billing months that have a folder (one delimited LIST; a folder without a pointer reads as empty)."""
    names = fs.list_children(layout.line_items_tenant_prefix(lake_uri, tenant_id))
    return [n[len(_PERIOD_DIR) :] for n in names if n.startswith(_PERIOD_DIR)]


def current_months(lake_uri: str, tenant_id: str, months: list[str] | None = None) -> list[MonthVersion]:
    """The current version of each month (pointers read in parallel on S3: one GET each)."""
    months = tenant_months(lake_uri, tenant_id) if months is None else months

    def read(bp: str) -> MonthVersion | None:
        return read_month(lake_uri, tenant_id, bp)[0]

    if fs.is_s3(lake_uri) and len(months) > 1:
        with ThreadPoolExecutor(max_workers=min(16, len(months))) as pool:
            found = list(pool.map(read, months))
    else:
        found = [read(bp) for bp in months]
    return [m for m in found if m is not None]


def current_files(lake_uri: str, tenant_id: str, *, days: set[date] | None = None) -> list[str]:
    """Every day file readers should see for a tenant (optionally only those of some usage days), sorted."""
    out = []
    for m in current_months(lake_uri, tenant_id):
        out += [
            layout.line_items_file_uri(lake_uri, tenant_id, m.billing_period, f.name)
            for f in m.files
            if days is None or f.usage_date in days
        ]
    return sorted(out)


def carry_forward(lake_uri: str, month: MonthVersion) -> MonthVersion:
    """The month with every file brought into its own version folder: a version folder holds the whole month, so
    readers (DuckDB's glob, Athena's manifest) need one path per month. A day the write did not touch is linked
    (locally) or copied server side (S3) from the version it was in, never rewritten."""
    files = []
    for f in month.files:
        name = layout.line_items_file_name(month.version, f.usage_date)
        if f.name != name:
            fs.copy(
                layout.line_items_file_uri(lake_uri, month.tenant_id, month.billing_period, f.name),
                layout.line_items_file_uri(lake_uri, month.tenant_id, month.billing_period, name),
            )
        files.append(MonthFile(name, f.usage_date, f.rows))
    return replace(month, files=tuple(files))


def current_globs(lake_uri: str, tenant_id: str) -> list[str]:
    """One glob per current month (its version folder holds the whole month): what DuckDB reads. A few dozen
    short paths whatever the history's length, so they fit dbt's --vars on any command line."""
    return sorted(
        fs.join(
            layout.line_items_version_prefix(lake_uri, tenant_id, m.billing_period, m.version),
            "usage_date=*",
            "*.parquet",
        )
        for m in current_months(lake_uri, tenant_id)
        if m.files
    )


def commit_month(lake_uri: str, new: MonthVersion, expected_tag: str | None) -> str:
    """Swap the month's pointer to `new` in one write, only if it still has expected_tag (None: only if the month
    has no pointer yet); raises fs.ConditionFailed when another writer swapped it first. On S3 the month's Athena
    symlink manifest follows (one write too), so Athena also switches whole months."""
    uri = layout.line_items_pointer_uri(lake_uri, new.tenant_id, new.billing_period)
    tag = fs.write_if(uri, new.to_json(), if_match=expected_tag)
    sync_athena(lake_uri, new)
    return tag


def sync_athena(lake_uri: str, month: MonthVersion) -> None:
    """On S3, the month's Athena symlink manifest: the s3:// uris of its files, one a line (what Athena's
    SymlinkTextInputFormat reads). A local lake has no Athena."""
    if fs.is_s3(lake_uri):
        body = "".join(f"{u}\n" for u in month.uris(lake_uri)).encode()
        fs.write_bytes(layout.athena_symlink_uri(lake_uri, month.tenant_id, month.billing_period), body)


def sweep_month(lake_uri: str, tenant_id: str, billing_period: str, keep: MonthVersion | None) -> int:
    """Delete every file of the month's version folders that `keep` does not list (superseded versions, and what
    a crashed writer left, temp files included); returns how many were deleted. Run under the month's lease."""
    prefix = layout.line_items_month_prefix(lake_uri, tenant_id, billing_period)
    live = set(keep.uris(lake_uri)) if keep else set()
    versions = fs.join(prefix, "version=")
    deleted = 0
    for obj in fs.list_objects(prefix, include_temp=True):
        temp = obj.uri.rsplit("/", 1)[-1].startswith(".tmp-")  # a killed local write's half file
        if (obj.uri.startswith(versions) or temp) and obj.uri not in live:
            fs.delete(obj.uri)
            deleted += 1
    if not fs.is_s3(prefix) and Path(prefix).is_dir():
        for d in sorted(Path(prefix).rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
    return deleted
