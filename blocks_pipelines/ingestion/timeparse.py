"""Every timestamp form seen in real exports, read as a UTC datetime with vectorized polars expressions.

Forms: `2023-06-01T00:00:00Z`, `2023-06-01 00:00:00`, `2023-06-01T00:00:00.000Z`, `2022-07-01 00:00:00.000`,
`2023-06-01` and identity/TimeInterval ranges `start/end`. Offsets other than Z do not occur in CUR; they are rejected
(as unparseable) rather than silently shifted.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import polars as pl

UTC = pl.Datetime("us", "UTC")


def parse_utc(expr: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A UTC datetime from a column of any dtype a reader may produce (string, naive or zoned datetime, date)."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return expr.dt.convert_time_zone("UTC").cast(UTC)
    if dtype == pl.Date:
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    s = expr.cast(pl.String).str.strip_chars()
    # Normalize the separators and drop sub-seconds / a trailing Z, so one format reads all CUR forms.
    s = s.str.replace(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?Z?$", "$1 $2")
    s = s.str.replace(r"^(\d{4}-\d{2}-\d{2})$", "$1 00:00:00")
    return s.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us").dt.replace_time_zone("UTC")


def interval_part(expr: pl.Expr, index: int) -> pl.Expr:
    """One end (0 start, 1 end) of an identity/TimeInterval `start/end` string."""
    return expr.cast(pl.String).str.split("/").list.get(index, null_on_oob=True)


_MANIFEST_TS = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})")


def parse_manifest_time(value: str) -> datetime:
    """Manifest billingPeriod times: `20261101T000000.000Z` (also accepts ISO forms)."""
    m = _MANIFEST_TS.match(value)
    if m:
        return datetime(*map(int, m.groups()), tzinfo=timezone.utc)
    out = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return out if out.tzinfo else out.replace(tzinfo=timezone.utc)
