"""JSON or CSV, chosen by ?format=csv or an Accept header that prefers text/csv."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from fastapi import Request

from serving.data.params import InvalidParameter, single

CSV = "text/csv; charset=utf-8"
JSON = "application/json"
CSV_DOC = {
    "text/csv": {"schema": {"type": "string"}, "example": "period_start,group,cost\n2026-10-01,AmazonEC2,12.5\n"}
}


def query_lists(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    return out


def wants_csv(request: Request, raw: Mapping[str, Sequence[str]]) -> bool:
    fmt = single(raw, "format")
    if fmt is not None:
        if fmt not in ("json", "csv"):
            raise InvalidParameter("format", f"{fmt!r} is not one of: json, csv")
        return fmt == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_safe(v) for v in row])
    return buf.getvalue().encode()


def _safe(value: object) -> object:
    # Spreadsheet formula injection: a text cell starting with = + - @ would run as a formula in Excel.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
