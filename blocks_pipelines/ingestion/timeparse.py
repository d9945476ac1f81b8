"""Every timestamp form seen in real exports, read as a UTC datetime with vectorized polars expressions.

AWS CUR forms: `2023-06-01T00:00:00Z`, `2023-06-01 00:00:00`, `2023-06-01T00:00:00.000Z`, `2022-07-01 00:00:00.000`,
`2023-06-01` and identity/TimeInterval ranges `start/end`. FOCUS exports of other providers add minute precision
(`2024-09-01T00:00Z`), a ` UTC` suffix and numeric offsets (`+00:00`, `+0200`): offsets are converted to UTC.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import polars as pl

UTC = pl.Datetime("us", "UTC")


def parse_utc(expr: pl.Expr, dtype: pl.DataType, strict: bool = False) -> pl.Expr:
    """A UTC datetime from a column of any dtype a reader may produce (string, naive or zoned datetime, date).
    Text in any CUR form is normalized by regex first (the general, slower path)."""
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        return expr.dt.convert_time_zone("UTC").cast(UTC)
    if dtype == pl.Date:
        return expr.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    s = expr.cast(pl.String).str.strip_chars()
    # One canonical text per value, `YYYY-MM-DD HH:MM:SS+HHMM`, so one strict format reads every form.
    s = s.str.replace(r"^(\d{4}-\d{2}-\d{2})$", "$1 00:00:00")
    s = s.str.replace(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2})(Z|\s*UTC|[+-]\d{2}:?\d{2})?$", "$1:00$2")
    s = s.str.replace(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?\s*(?:Z|UTC)?$", "$1 $2+0000")
    s = s.str.replace(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.\d+)?([+-]\d{2}):?(\d{2})$", "$1 $2$3$4")
    return s.str.to_datetime("%Y-%m-%d %H:%M:%S%z", strict=strict, time_unit="us").dt.convert_time_zone("UTC")


# The exact forms real exports use, tried on a sample of each column so the hot path parses with one fixed format.
KNOWN_FORMATS = (
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S%.3fZ",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S%.3f",
    "%Y-%m-%dT%H:%M:%S",
)


def sniff_format(sample: list[str]) -> str | None:
    """The one known format every sampled value has, or None (then the general parser is used)."""
    values = [v for v in sample if v]
    if not values:
        return None
    series = pl.Series(values, dtype=pl.String)
    for fmt in KNOWN_FORMATS:
        if series.str.to_datetime(fmt, strict=False, time_unit="us").null_count() == 0:
            return fmt
    return None


def parse_fixed(expr: pl.Expr, fmt: str, strict: bool) -> pl.Expr:
    return expr.str.to_datetime(fmt, strict=strict, time_unit="us").dt.replace_time_zone("UTC")


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
