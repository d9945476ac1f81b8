"""A tenant's history as billing months of hourly partitions: one backfill run per month. Pure functions.

A month is the unit AWS delivers and restates (every delivery is the whole month so far), so one run per month reads
each delivery once and replaces whole days atomically.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from blocks_pipelines.tenants.config import TenantConfig
from blocks_pipelines.tenants.partitions import PARTITION_FMT


@dataclass(frozen=True)
class MonthRange:
    billing_period: str  # YYYY-MM
    start_key: str  # first hourly partition key of the month (or of history_start)
    end_key: str  # last hourly partition key, inclusive (the last complete hour for the current month)

    @property
    def hours(self) -> int:
        start = datetime.strptime(self.start_key, PARTITION_FMT)
        end = datetime.strptime(self.end_key, PARTITION_FMT)
        return int((end - start) / timedelta(hours=1)) + 1


def _next_month(d: datetime) -> datetime:
    return d.replace(year=d.year + (d.month == 12), month=d.month % 12 + 1, day=1)


def backfill_months(tenant: TenantConfig, now: datetime | None = None) -> list[MonthRange]:
    """Month ranges from history_start up to the last complete hour before `now` (UTC)."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    last_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    start = tenant.history_start_dt
    out = []
    while start <= last_hour:
        month_end = _next_month(start.replace(day=1)) - timedelta(hours=1)
        end = min(month_end, last_hour)
        out.append(MonthRange(f"{start:%Y-%m}", start.strftime(PARTITION_FMT), end.strftime(PARTITION_FMT)))
        start = month_end + timedelta(hours=1)
    return out
