"""Coverage and utilization dips from sp_position_hourly, late or missing CUR data: pure detectors."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from blocks_pipelines.alerts.delivery import detect_late_data
from blocks_pipelines.alerts.position import detect_coverage_dips, detect_utilization_dips
from blocks_pipelines.state.alert_models import AlertKind, Severity

END = date(2026, 11, 30)


def position(
    days: int,
    coverage_of,
    utilization_of,
    commitment_per_hour: float = 2.0,
    eligible_per_hour: float = 20.0,
    end: date = END,
) -> pl.DataFrame:
    rows = []
    for i in range(days):
        d = end - timedelta(days=days - 1 - i)
        for h in range(24):
            ts = datetime.combine(d, datetime.min.time(), timezone.utc) + timedelta(hours=h)
            cov, util = coverage_of(d), utilization_of(d)
            rows.append(
                (
                    ts,
                    d,
                    "TOTAL",
                    commitment_per_hour,
                    commitment_per_hour * util / 100,
                    eligible_per_hour,
                    eligible_per_hour * cov / 100,
                )
            )
    return pl.DataFrame(
        rows,
        orient="row",
        schema={
            "usage_hour": pl.Datetime("us", "UTC"),
            "usage_date": pl.Date,
            "savings_plan_arn": pl.Utf8,
            "commitment": pl.Float64,
            "used_commitment": pl.Float64,
            "eligible_on_demand_cost": pl.Float64,
            "covered_on_demand_cost": pl.Float64,
        },
    )


def test_a_coverage_dip_is_one_alert_from_its_first_day():
    dip_from = END - timedelta(days=2)
    pos = position(40, lambda d: 55.0 if d >= dip_from else 80.0 + (d.toordinal() % 3), lambda d: 99.0)
    [dip] = detect_coverage_dips(pos, END, dip_points=10.0, min_impact_usd=50.0)
    assert (dip.kind, dip.first_seen, dip.last_seen, dip.unit) == (AlertKind.coverage_dip, dip_from, END, "pct")
    assert dip.actual == 55.0 and dip.expected == pytest.approx(81.0, abs=1.0)
    # 3 days x 480 $ eligible x ~26 points no longer covered
    assert dip.impact_usd == pytest.approx(3 * 480 * 0.26, rel=0.05)
    assert "55.0%" in dip.message and f"since {dip_from}" in dip.message


def test_steady_coverage_and_small_wobbles_raise_nothing():
    pos = position(40, lambda d: 80.0 + 4 * ((d.toordinal() * 7) % 3 - 1), lambda d: 97.0 + (d.toordinal() % 3))
    assert detect_coverage_dips(pos, END, dip_points=10.0, min_impact_usd=50.0) == []
    assert detect_utilization_dips(pos, END, floor_pct=90.0, min_impact_usd=50.0) == []


def test_a_utilization_dip_counts_the_unused_commitment():
    pos = position(30, lambda d: 80.0, lambda d: 60.0 if d >= END - timedelta(days=1) else 98.0)
    [dip] = detect_utilization_dips(pos, END, floor_pct=90.0, min_impact_usd=10.0)
    assert (dip.first_seen, dip.actual, dip.expected) == (END - timedelta(days=1), 60.0, 90.0)
    assert dip.impact_usd == pytest.approx(2 * 48 * 0.4)  # two days of $48 committed, 40 % unused
    assert detect_utilization_dips(pos, END, floor_pct=90.0, min_impact_usd=100.0) == []  # under the threshold
    assert detect_utilization_dips(pos, END, 90.0, 10.0, since=END + timedelta(days=1)) == []


def test_no_commitment_is_no_dip():
    pos = position(30, lambda d: 0.0, lambda d: 0.0, commitment_per_hour=0.0)
    assert detect_coverage_dips(pos, END, 10.0, 0.0) == [] and detect_utilization_dips(pos, END, 90.0, 0.0) == []


def test_late_and_missing_data():
    now = datetime(2026, 12, 4, 12, tzinfo=timezone.utc)
    connected = datetime(2026, 9, 1, tzinfo=timezone.utc)
    assert detect_late_data(now - timedelta(hours=20), now, connected) is None
    late = detect_late_data(now - timedelta(hours=40), now, connected)
    assert (late.kind, late.severity, late.actual) == (AlertKind.late_data, Severity.high, 40.0)
    assert late.first_seen == (now - timedelta(hours=4)).date()
    # the same episode two days later: the same first-seen day, so the same alert id
    later = detect_late_data(now - timedelta(hours=40), now + timedelta(days=2), connected)
    assert later.id_for("acme_corp") == late.id_for("acme_corp") and later.severity is Severity.critical
    missing = detect_late_data(None, now, now - timedelta(days=5))
    assert "no CUR delivery received" in missing.message and missing.severity is Severity.critical
    assert detect_late_data(None, now, now - timedelta(hours=2)) is None  # just connected
