"""Whether a series point or projection period covers its whole calendar period. Pure: tested without a warehouse.

A week or month point sums only the days inside the requested range and before the data's end (CUR hours arrive up
to a day late), so a point can hold part of its period: the current month, a range starting on the 15th. Such a
point is flagged `partial`, with the days it holds and why, rather than snapped silently to whole periods (which
would change the range the caller asked for) or shown as if it were a whole month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta


def period_end(first: date, granularity: str) -> date:
    """The last day of the calendar period starting on `first` (a day, a Monday, the first of a month)."""
    if granularity == "week":
        return first + timedelta(days=6)
    if granularity == "month":
        return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first


@dataclass(frozen=True)
class Coverage:
    first_day: date  # first day the figure holds
    last_day: date  # last day the figure holds (the last day may itself hold only some hours)
    partial: bool
    reason: str | None  # why partial, in words a customer reads

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1


def coverage(
    start: date, end: date, range_start: date, range_end: date, data_first: date | None, data_through: datetime | None
) -> Coverage:
    """What of the period start..end (inclusive) a figure over range_start..range_end holds, given data from
    data_first to data_through (the end of the last hour with data, exclusive)."""
    reasons: list[str] = []
    first, last = max(start, range_start), min(end, range_end)
    if first > start:
        reasons.append(f"the range starts on {first.isoformat()}")
    if last < end:
        reasons.append(f"the range ends on {last.isoformat()}")
    if data_first is not None and data_first > first:
        first = data_first
        reasons.append(f"data starts on {data_first.isoformat()}")
    if data_through is not None:
        through_day = (data_through - timedelta(microseconds=1)).date()  # the day holding the last hour
        day_complete = data_through.hour == 0 and data_through.minute == 0
        if through_day < last or (through_day == last and not day_complete):
            last = min(last, through_day)
            reasons.append(f"data runs through {data_through.strftime('%Y-%m-%d %H:%M')} UTC")
    return Coverage(first, max(first, last), bool(reasons), "; ".join(reasons) or None)


def days_in(start: date, end: date) -> int:
    return (end - start).days + 1
