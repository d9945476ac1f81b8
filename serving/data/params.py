"""Parsing of query parameters into typed, validated queries. Pure: tested without a warehouse.

Every failure raises InvalidParameter naming the parameter, the value and what is expected, which the API turns
into a 400 response.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta

MAX_VALUES_PER_FILTER = 50
MAX_DAYS = {"hour": 93, "day": 1100, "week": 1100, "month": 3700}
GRANULARITIES = ("hour", "day", "week", "month")
COST_TYPES = ("unblended", "amortized")
CHARGE_CLASSES = ("usage", "savings_plan", "reservation", "fee", "credit", "refund", "tax", "discount")
GROUP_BY_FIXED = ("account", "ou", "service", "region", "charge_class")
PERIODS = ("day", "week", "month", "ytd")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ACCOUNT_RE = re.compile(r"^\d{12}$")
OU_RE = re.compile(r"^Root(/[\w .&()+-]{1,128}){0,10}$")
SERVICE_RE = re.compile(r"^[A-Za-z0-9 ._()/-]{1,64}$")
REGION_RE = re.compile(r"^[a-z0-9-]{2,32}$")
# AWS tag keys: letters (any script), digits, spaces and + - = . _ : / @ ; never a double quote.
_TAG_KEY = re.compile(r"^[\w .:/=+@-]{1,128}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidParameter(ValueError):
    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def single(params: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = params.get(name) or []
    if len(values) > 1:
        raise InvalidParameter(name, f"given {len(values)} times; pass it once")
    return values[0] if values else None


def reject_unknown(params: Iterable[str], allowed: Iterable[str]) -> None:
    allowed = set(allowed)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise InvalidParameter(
            unknown[0], f"unknown parameter {_show(unknown[0])}; allowed: {', '.join(sorted(allowed))}"
        )


def parse_date(name: str, value: str) -> date:
    if not _DATE.match(value):
        raise InvalidParameter(name, f"{_show(value)} is not a date; use YYYY-MM-DD, e.g. 2026-01-31")
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise InvalidParameter(name, f"{_show(value)} is not a calendar date; use YYYY-MM-DD") from None
    if not date(2000, 1, 1) <= d <= date(2100, 12, 31):
        raise InvalidParameter(name, f"{value} is outside 2000-01-01..2100-12-31")
    return d


def choose(name: str, value: str | None, allowed: Sequence[str], default: str | None) -> str | None:
    if value is None:
        return default
    if value not in allowed:
        raise InvalidParameter(name, f"{_show(value)} is not one of: {', '.join(allowed)}")
    return value


def matching(name: str, values: Sequence[str], pattern: re.Pattern, expected: str) -> tuple[str, ...]:
    if len(values) > MAX_VALUES_PER_FILTER:
        raise InvalidParameter(name, f"{len(values)} values given; at most {MAX_VALUES_PER_FILTER}")
    for v in values:
        if not pattern.match(v):
            raise InvalidParameter(name, f"{_show(v)} is not valid; expected {expected}")
    return tuple(sorted(set(values)))


def one_of_each(name: str, values: Sequence[str], allowed: Sequence[str]) -> tuple[str, ...]:
    if len(values) > MAX_VALUES_PER_FILTER:
        raise InvalidParameter(name, f"{len(values)} values given; at most {MAX_VALUES_PER_FILTER}")
    for v in values:
        choose(name, v, allowed, None)
    return tuple(sorted(set(values)))


def parse_tag_key(name: str, key: str) -> str:
    if not _TAG_KEY.match(key):
        raise InvalidParameter(
            name,
            f"tag key {_show(key)} is not valid; use letters, digits, spaces and + - = . _ : / @ "
            "(at most 128 characters), e.g. user:team",
        )
    return key


def parse_tags(name: str, values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    if len(values) > MAX_VALUES_PER_FILTER:
        raise InvalidParameter(name, f"{len(values)} values given; at most {MAX_VALUES_PER_FILTER}")
    out = set()
    for v in values:
        key, sep, val = v.partition("=")
        if not sep:
            raise InvalidParameter(name, f"{_show(v)} is not key=value, e.g. tag=user:team=web")
        if len(val) > 256 or _CONTROL.search(val):
            raise InvalidParameter(name, f"tag value for {key!r} must be at most 256 printable characters")
        out.add((parse_tag_key(name, key), val))
    return tuple(sorted(out))


def parse_group_by(value: str | None) -> str | None:
    if value is None or value in GROUP_BY_FIXED:
        return value
    if value.startswith("tag:"):
        parse_tag_key("group_by", value[4:])
        return value
    raise InvalidParameter("group_by", f"{_show(value)} is not one of: {', '.join(GROUP_BY_FIXED)}, tag:<key>")


def date_range(
    params: Mapping[str, Sequence[str]], last_date: date | None, granularity: str, default_days: int = 30
) -> tuple[date, date]:
    """Inclusive [start, end]; defaults to the last `default_days` days of data (or of the calendar)."""
    start_raw, end_raw = single(params, "start"), single(params, "end")
    end = parse_date("end", end_raw) if end_raw else None
    start = parse_date("start", start_raw) if start_raw else None
    if end is None:
        end = last_date or date.today()
        if start is not None and start > end:
            end = start + timedelta(days=default_days - 1)
    if start is None:
        start = end - timedelta(days=min(default_days, MAX_DAYS[granularity]) - 1)
    if start > end:
        raise InvalidParameter("start", f"start {start} is after end {end}; swap them")
    days = (end - start).days + 1
    if days > MAX_DAYS[granularity]:
        raise InvalidParameter(
            "end",
            f"{days} days at {granularity} granularity is too large; at most "
            f"{MAX_DAYS[granularity]} days (use a coarser granularity)",
        )
    return start, end


def _show(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")
