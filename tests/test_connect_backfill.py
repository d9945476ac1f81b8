"""Backfill planning: the tenant's history as billing-month ranges of hourly partition keys."""

from __future__ import annotations

from datetime import date, datetime, timezone

from test_connect_support import make_tenant

from blocks_pipelines.connect.backfill import backfill_months


def test_months_cover_history_start_to_the_last_complete_hour_without_gaps():
    tenant = make_tenant(history_start=date(2025, 11, 15))
    months = backfill_months(tenant, now=datetime(2026, 2, 3, 10, 42, tzinfo=timezone.utc))

    assert [m.billing_period for m in months] == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert (months[0].start_key, months[0].end_key) == ("2025-11-15-00:00", "2025-11-30-23:00")
    assert (months[1].start_key, months[1].end_key) == ("2025-12-01-00:00", "2025-12-31-23:00")  # across new year
    assert (months[-1].start_key, months[-1].end_key) == ("2026-02-01-00:00", "2026-02-03-09:00")
    assert sum(m.hours for m in months) == 16 * 24 + 31 * 24 + 31 * 24 + 2 * 24 + 10


def test_nothing_to_backfill_in_the_first_hour():
    tenant = make_tenant(history_start=date(2026, 3, 1))
    assert backfill_months(tenant, now=datetime(2026, 3, 1, 0, 30, tzinfo=timezone.utc)) == []
    one = backfill_months(tenant, now=datetime(2026, 3, 1, 1, 0, tzinfo=timezone.utc))
    assert [(m.start_key, m.end_key, m.hours) for m in one] == [("2026-03-01-00:00", "2026-03-01-00:00", 1)]
