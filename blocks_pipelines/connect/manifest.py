"""Where a CUR manifest lives for each report layout, and what a manifest says. Pure functions, no I/O.

- legacy CUR: {uri}/{report}/{YYYYMMDD-YYYYMMDD}/{report}-Manifest.json (the period-level, newest manifest)
- CUR 2.0 / FOCUS (Data Exports): {uri}/{export}/metadata/BILLING_PERIOD=YYYY-MM/{export}-Manifest.json
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from blocks_pipelines.tenants.config import CurFormat

_LEGACY_PERIOD = re.compile(r"^(\d{4})(\d{2})01-\d{8}$")
_EXPORT_PERIOD = re.compile(r"^BILLING_PERIOD=(\d{4})-(\d{2})$")


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class Manifest:
    billing_period: str  # YYYY-MM
    data_keys: tuple[str, ...]  # object keys (in the manifest's bucket) of the report files


def periods_root(fmt: CurFormat, prefix: str, report: str) -> str:
    """The folder whose sub-folders are billing periods; `prefix` is "" or ends with "/"."""
    if fmt is CurFormat.cur1:
        return f"{prefix}{report}/"
    return f"{prefix}{report}/metadata/"


def billing_period_of(fmt: CurFormat, folder: str) -> str | None:
    """YYYY-MM for a period folder name (no slashes), None for anything else in that folder."""
    m = (_LEGACY_PERIOD if fmt is CurFormat.cur1 else _EXPORT_PERIOD).match(folder)
    return f"{m.group(1)}-{m.group(2)}" if m else None


def manifest_key(fmt: CurFormat, prefix: str, report: str, folder: str) -> str:
    return f"{periods_root(fmt, prefix, report)}{folder}/{report}-Manifest.json"


def newest_period_folder(fmt: CurFormat, folders: list[str]) -> str | None:
    periods = {billing_period_of(fmt, f): f for f in folders if billing_period_of(fmt, f)}
    return periods[max(periods)] if periods else None


def parse_manifest(raw: bytes, fmt: CurFormat, fallback_period: str) -> Manifest:
    """Legacy manifests list `reportKeys` (keys); Data Exports manifests list `dataFiles` (s3:// URIs)."""
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ManifestError("expected a JSON object")
    if fmt is CurFormat.cur1:
        keys = doc.get("reportKeys")
    else:
        keys = [u.split("/", 3)[3] if u.startswith("s3://") else u for u in doc.get("dataFiles") or []]
    if not keys or not all(isinstance(k, str) for k in keys):
        field = "reportKeys" if fmt is CurFormat.cur1 else "dataFiles"
        raise ManifestError(f"field '{field}' lists no report files")
    start = (doc.get("billingPeriod") or {}).get("start", "")
    period = f"{start[:4]}-{start[4:6]}" if re.match(r"^\d{8}", start) else start[:7] or fallback_period
    return Manifest(billing_period=period, data_keys=tuple(keys))
