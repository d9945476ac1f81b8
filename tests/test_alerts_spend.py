"""Spend anomaly detection: pure functions over daily leaf rows, no warehouse."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from blocks_pipelines.alerts.spend import SpendParams, detect_new_services, detect_spend_spikes, score_days
from blocks_pipelines.state.alert_models import AlertKind, Severity
from tests.alerts_helpers import daily_frame
from tests.synthetic.daily_spend import synthetic_daily

END = date(2026, 11, 30)


def _rows(days: list[date], cost_of, service="AmazonEC2", account="111111111111", usage_type="BoxUsage:m5.large"):
    return [(d, service, account, "us-east-1", usage_type, float(cost_of(d))) for d in days]


def _days(n: int, end: date = END) -> list[date]:
    return [end - timedelta(days=n - 1 - i) for i in range(n)]


def test_injected_spikes_are_found_with_their_first_day_and_figures():
    daily, injected = synthetic_daily(services=20, accounts=5, days=365, end=END, spikes=12, spike_sizes=(8.0, 12.0))
    # sensitivity 5 without a dollar threshold: the statistics alone, strict enough for "almost nothing else"
    found = detect_spend_spikes(daily, END, SpendParams(sensitivity=5.0, min_impact_usd=0.0))
    by_key = {(d.dimensions["service"], d.dimensions["usage_account_id"], d.first_seen): d for d in found}
    for spike in injected:
        hit = by_key.get((spike.service, spike.usage_account_id, spike.first_day))
        assert hit is not None, f"missed {spike}"
        assert hit.kind is AlertKind.spend_spike
        assert hit.last_seen == spike.first_day + timedelta(days=spike.days - 1)
        # the impact is the injected dollars, within the series' noise
        assert hit.impact_usd == pytest.approx(spike.amount_per_day * spike.days, rel=0.35)
        assert hit.actual > hit.expected
    # almost nothing else: 20 x 5 series over ~300 judged days each
    assert len(found) - len(injected) <= 3


def test_a_strong_weekly_cycle_raises_nothing():
    # weekends at 30% of weekdays, a little deterministic wobble: a trailing median would flag every Monday
    def cost(d: date) -> float:
        base = 300.0 if d.weekday() < 5 else 90.0
        return base * (1 + 0.02 * ((d.toordinal() * 7919) % 5 - 2) / 2)

    daily = daily_frame(_rows(_days(180), cost))
    assert detect_spend_spikes(daily, END, SpendParams(sensitivity=4.0, min_impact_usd=0.0)) == []
    assert detect_new_services(daily, END, SpendParams(), since=END - timedelta(days=30)) == []


def test_a_monday_spike_is_judged_against_mondays_and_one_spike_does_not_hide_the_next():
    spikes = {END - timedelta(days=14), END - timedelta(days=7)}  # two consecutive same weekdays

    def cost(d: date) -> float:
        base = 300.0 if d.weekday() < 5 else 90.0
        wobble = 1 + 0.03 * (((d.toordinal() * 7919) % 7) - 3) / 3
        return base * wobble + (600.0 if d in spikes else 0.0)

    daily = daily_frame(_rows(_days(180), cost))
    found = detect_spend_spikes(daily, END, SpendParams(sensitivity=4.0, min_impact_usd=50.0))
    assert sorted(d.first_seen for d in found) == sorted(spikes)
    for d in found:
        assert d.expected == pytest.approx(300.0, rel=0.05)  # the median of that weekday, not lifted by the spike
        assert d.impact_usd == pytest.approx(600.0, rel=0.1)
        assert d.severity is Severity.high  # 600 >= 5 x 50
        assert "AmazonEC2" in d.message and f"{d.first_seen}" in d.message


def _wobble(d: date) -> float:
    """A deterministic +-3 % day-to-day wobble (no two neighbouring days alike)."""
    return 1 + 0.03 * (((d.toordinal() * 7919) % 7) - 3) / 3


def test_steady_growth_with_a_weekly_cycle_raises_nothing():
    # 10 % a month: a same-weekday median of the last 8 weeks lags this by a month and calls ordinary days high
    start = END - timedelta(days=364)

    def cost(d: date) -> float:
        base = 300.0 if d.weekday() < 5 else 120.0
        return base * 1.10 ** ((d - start).days / 30) * _wobble(d)

    daily = daily_frame(_rows(_days(365), cost))
    assert detect_spend_spikes(daily, END, SpendParams(min_impact_usd=0.0)) == []
    scored, _ = score_days(daily, END, SpendParams().sensitivity)
    judged = scored.filter(scored["expected"].is_not_null() & (scored["usage_date"] >= start + timedelta(days=120)))
    # the baseline follows the growth: no drift of the residuals above zero
    assert abs(judged["resid"].median()) < 0.01 * judged["cost"].median()


def test_a_spike_across_a_week_boundary_does_not_hide_the_next_week():
    # a two-day spike over a Sunday and Monday lands in two weekly windows of the level; the level drops each
    # week's top day, so the spike the Wednesday after is still judged against an ordinary Wednesday
    sunday = END - timedelta(days=(END.weekday() + 1) % 7 + 14)
    first = {sunday, sunday + timedelta(days=1)}
    second = sunday + timedelta(days=10)  # the Wednesday of the next week

    def cost(d: date) -> float:
        base = 300.0 if d.weekday() < 5 else 90.0
        return base * _wobble(d) + (900.0 if d in first else 0.0) + (300.0 if d == second else 0.0)

    found = detect_spend_spikes(daily_frame(_rows(_days(180), cost)), END, SpendParams(min_impact_usd=50.0))
    assert [(d.first_seen, d.last_seen) for d in found] == [(sunday, sunday + timedelta(days=1)), (second, second)]
    assert found[1].expected == pytest.approx(300.0, rel=0.05)
    assert found[1].impact_usd == pytest.approx(300.0, rel=0.1)


def test_a_weekly_batch_job_is_judged_on_its_own_day():
    # a job that runs only on Sundays: nothing on the other six days, so the level is the week's mean, not 0
    doubled = END - timedelta(days=(END.weekday() + 1) % 7)  # the last Sunday

    def cost(d: date) -> float:
        if d.weekday() != 6:
            return 0.0
        return 700.0 * _wobble(d) * (2 if d == doubled else 1)

    found = detect_spend_spikes(daily_frame(_rows(_days(180), cost)), END, SpendParams(min_impact_usd=50.0))
    assert [(d.first_seen, d.last_seen) for d in found] == [(doubled, doubled)]
    assert found[0].expected == pytest.approx(700.0, rel=0.05)


def test_min_impact_threshold_keeps_small_series_quiet():
    spike_day = END - timedelta(days=3)

    def cost(d: date) -> float:
        return 2.0 * (1 + 0.02 * (((d.toordinal() * 31) % 5) - 2)) + (20.0 if d == spike_day else 0.0)

    daily = daily_frame(_rows(_days(120), cost))
    assert len(detect_spend_spikes(daily, END, SpendParams(sensitivity=4.0, min_impact_usd=1.0))) == 1
    assert detect_spend_spikes(daily, END, SpendParams(sensitivity=4.0, min_impact_usd=50.0)) == []


def test_a_multi_day_spike_is_one_anomaly_with_its_top_usage_types():
    first = END - timedelta(days=4)

    def steady(d: date) -> float:
        return 200.0 * (1 + 0.02 * (((d.toordinal() * 13) % 5) - 2))

    rows = _rows(_days(150), steady, usage_type="BoxUsage:m5.large")
    rows += _rows(_days(150), lambda d: 40.0 + (500.0 if d >= first else 0.0), usage_type="DataTransfer-Out-Bytes")
    rows += _rows(_days(150), lambda d: 20.0, usage_type="EBS:VolumeUsage.gp3")
    found = detect_spend_spikes(daily_frame(rows), END, SpendParams(sensitivity=4.0, min_impact_usd=50.0))
    assert len(found) == 1
    anomaly = found[0]
    assert (anomaly.first_seen, anomaly.last_seen) == (first, END)
    assert anomaly.impact_usd == pytest.approx(5 * 500.0, rel=0.05)
    top = anomaly.top_usage_types[0]
    assert (top.usage_type, top.expected, top.actual) == ("DataTransfer-Out-Bytes", 40.0, 540.0)
    assert "since" in anomaly.message and "5 days" in anomaly.message


def test_since_keeps_only_anomalies_still_going():
    spike_day = END - timedelta(days=20)

    def cost(d: date) -> float:
        return 300.0 * (1 + 0.02 * (((d.toordinal() * 7919) % 5) - 2)) + (900.0 if d == spike_day else 0.0)

    daily = daily_frame(_rows(_days(150), cost))
    params = SpendParams(sensitivity=4.0, min_impact_usd=50.0)
    assert len(detect_spend_spikes(daily, END, params)) == 1
    assert detect_spend_spikes(daily, END, params, since=END - timedelta(days=7)) == []


def test_no_verdict_during_a_series_warm_up():
    # a brand-new series: three weeks of data are not enough for a weekday baseline and its noise
    daily = daily_frame(_rows(_days(21), lambda d: 100.0 if d != END else 1000.0))
    scored, _ = score_days(daily, END, 5.0)
    assert scored["noise"].null_count() == scored.height
    assert detect_spend_spikes(daily, END, SpendParams(min_impact_usd=0.0)) == []


def test_a_new_service_is_flagged_once_it_costs_something():
    old = _rows(_days(120), lambda d: 300.0)
    new_first = END - timedelta(days=2)
    new = _rows(
        _days(3), lambda d: 40.0, service="AmazonSageMaker", account="222222222222", usage_type="ml.g5.xlarge-Hosting"
    )
    daily = daily_frame(old + new)
    found = detect_new_services(daily, END, SpendParams(min_impact_usd=50.0), since=END - timedelta(days=7))
    assert len(found) == 1
    alert = found[0]
    assert (alert.kind, alert.dimensions, alert.first_seen) == (
        AlertKind.new_service,
        {"service": "AmazonSageMaker"},
        new_first,
    )
    assert alert.impact_usd == 120.0 and alert.top_usage_types[0].usage_type == "ml.g5.xlarge-Hosting"
    assert "222222222222" in alert.message
    # a service in the tenant's first fortnight is not "new": there is no before
    young = daily_frame(_rows(_days(10), lambda d: 300.0) + new)
    assert detect_new_services(young, END, SpendParams(min_impact_usd=50.0), since=END - timedelta(days=7)) == []
