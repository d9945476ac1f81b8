"""What the figures mean: partial periods flagged, unknown filter values answered with hints, and savings measured
against a baseline that fees, tax and credits cannot push below zero (docs/api.md: Periods, Filters, Savings)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient

from blocks_pipelines.lake.layout import mart_uri
from serving.data.hints import closest
from serving.data.periods import coverage, period_end
from serving.data.projection import run_projection
from serving.data.spend import parse_spend_query, run_spend
from serving.data.store import MartStore

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs, crash-injected processes or moto S3/SQS

T = "acme_corp"
FIRST = datetime(2026, 9, 25, tzinfo=timezone.utc)
THROUGH = datetime(2026, 11, 10, 15, tzinfo=timezone.utc)  # the last hour with data is 14:00
HOURS = int((THROUGH - FIRST).total_seconds() // 3600)

# per hour: (service, charge_class, line_item_type, unblended, amortized, public on-demand)
HOURLY = [
    ("AmazonEC2", "usage", "Usage", 10.0, 10.0, 10.0),
    ("AmazonEC2", "savings_plan", "SavingsPlanCoveredUsage", 5.0, 3.6, 5.0),
    ("AmazonEC2", "savings_plan", "SavingsPlanNegation", -5.0, 0.0, 0.0),
    ("ComputeSavingsPlans", "savings_plan", "SavingsPlanRecurringFee", 4.0, 0.4, 0.0),  # 0.4/h unused
    ("AWSMarketplace", "usage", "Usage", 2.0, 2.0, 0.0),  # no public price
]
# once: (hour, service, charge_class, line_item_type, amount)
ONCE = [
    (datetime(2026, 11, 1, tzinfo=timezone.utc), "AWSTax", "tax", "Tax", 50.0),
    (datetime(2026, 11, 2, tzinfo=timezone.utc), "AmazonEC2", "credit", "Credit", -30.0),
]


def write_hourly(lake: Path) -> None:
    rows = []
    for h in range(HOURS):
        hour = FIRST + timedelta(hours=h)
        rows += [(hour, *r) for r in HOURLY]
    rows += [(hour, svc, cls, lit, amount, amount, 0.0) for hour, svc, cls, lit, amount in ONCE]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE x (usage_hour TIMESTAMP, service VARCHAR, charge_class VARCHAR, line_item_type VARCHAR, "
        "unblended_cost DOUBLE, amortized_cost DOUBLE, public_on_demand_cost DOUBLE)"
    )
    con.executemany("INSERT INTO x VALUES (?, ?, ?, ?, ?, ?, ?)", [(r[0].replace(tzinfo=None), *r[1:]) for r in rows])
    out = Path(mart_uri(str(lake), "spend_hourly", T))
    out.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"""COPY (SELECT '{T}' AS tenant_id, usage_hour, usage_hour::DATE AS usage_date,
        strftime(usage_hour, '%Y-%m') AS billing_period, '111111111111' AS usage_account_id, 'prod' AS account_name,
        'Root/Engineering/Prod' AS ou_path, 'eu-west-1' AS region, service, 'BoxUsage' AS usage_type, charge_class,
        line_item_type, unblended_cost, amortized_cost, public_on_demand_cost, 1.0 AS usage_amount,
        '{{"user:team":"web"}}' AS tags FROM x) TO '{out}' (FORMAT parquet)""")
    projection = Path(mart_uri(str(lake), "savings_projection", T))
    projection.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"""COPY (SELECT '{T}' AS tenant_id, 'month' AS period_type, s::DATE AS period_start,
        e::DATE AS period_end, 100.0 AS baseline_cost, 80.0 AS projected_cost, 20.0 AS savings, 20.0 AS delta_pct,
        NULL::DOUBLE AS achievable_cost
        FROM (VALUES ('2026-10-01', '2026-10-31'), ('2026-11-01', '2026-11-30')) v(s, e))
        TO '{projection}' (FORMAT parquet)""")


@pytest.fixture
def data(tmp_path):
    write_hourly(tmp_path / "lake")
    store = MartStore(str(tmp_path / "lake"), tmp_path / "cache")
    yield store.tenant(T)
    store.close()


def spend(data, **params):
    raw = {k: v if isinstance(v, list) else [v] for k, v in params.items()}
    return run_spend(data, parse_spend_query(raw, data.last_date))


def test_month_points_say_whether_they_hold_the_whole_calendar_month(data):
    body = spend(data, start="2026-09-01", end="2026-11-30", granularity="month")
    sep, oct_, nov = body.series
    assert (oct_.period_start, oct_.period_end, oct_.partial, oct_.days_with_data) == (
        "2026-10-01",
        "2026-10-31",
        False,
        31,
    )
    assert sep.partial and sep.days_with_data == 6 and sep.partial_reason == "data starts on 2026-09-25"
    assert nov.partial and nov.days_with_data == 10 and nov.partial_reason == "data runs through 2026-11-10 15:00 UTC"
    assert body.partial_periods
    # a range cutting a month is said too
    [cut] = spend(data, start="2026-10-15", end="2026-10-31", granularity="month").series
    assert cut.partial and cut.days_with_data == 17 and cut.partial_reason == "the range starts on 2026-10-15"
    from serving.data.spend import SPEND_CSV_HEADER, spend_csv_rows

    q = parse_spend_query({"start": ["2026-09-01"], "end": ["2026-11-30"], "granularity": ["month"]}, data.last_date)
    rows = [dict(zip(SPEND_CSV_HEADER, r, strict=False)) for r in spend_csv_rows(body, q)]
    assert [r["partial"] for r in rows] == [True, False, True]


def test_week_and_day_points(data):
    weeks = spend(data, start="2026-10-26", end="2026-11-10", granularity="week").series
    assert [(w.period_start, w.partial) for w in weeks] == [
        ("2026-10-26", False),
        ("2026-11-02", False),
        ("2026-11-09", True),
    ]
    assert weeks[-1].partial_reason == "the range ends on 2026-11-10; data runs through 2026-11-10 15:00 UTC"
    days = spend(data, start="2026-11-09", end="2026-11-10").series
    assert [(d.period_start, d.partial) for d in days] == [("2026-11-09", False), ("2026-11-10", True)]
    hours = spend(data, start="2026-11-10", end="2026-11-10", granularity="hour")
    assert not hours.partial_periods and hours.series[0].period_end is None


def test_savings_are_measured_on_usage_and_commitments_only(data):
    body = spend(data, start="2026-10-01", end="2026-11-10", group_by="service")
    hours = int((THROUGH - datetime(2026, 10, 1, tzinfo=timezone.utc)).total_seconds() // 3600)
    t = body.totals
    # covered usage saves 1.4/h, the unused commitment costs 0.4/h; tax, credit and unpriced usage are outside
    assert t.savings == pytest.approx(1.0 * hours)
    assert t.on_demand_equivalent_cost == pytest.approx(15.0 * hours)
    assert t.excluded_from_savings_cost == pytest.approx(2.0 * hours + 50.0 - 30.0)
    assert t.amortized_cost == pytest.approx(t.on_demand_equivalent_cost - t.savings + t.excluded_from_savings_cost)
    # the naive public-minus-amortized figure would be negative here
    assert t.public_on_demand_cost - t.amortized_cost < 0
    by = {g.group: g for g in t.by_group}
    assert by["AWSTax"].savings == 0 and by["AWSMarketplace"].savings == 0
    assert by["AmazonEC2"].savings == pytest.approx(1.4 * hours)
    assert by["ComputeSavingsPlans"].savings == pytest.approx(-0.4 * hours)  # a real loss: unused commitment


def test_unknown_filter_values_get_hints_known_ones_do_not(data):
    body = spend(data, service="EC2", start="2026-11-01", end="2026-11-10")
    assert body.totals.cost == 0 and body.series == []
    [hint] = body.hints
    assert (hint.field, hint.value, hint.known[0]) == ("service", "EC2", "AmazonEC2")
    assert "matches nothing in your data" in hint.message
    assert spend(data, service="AmazonEC2", ou="Root/Engineering", start="2026-11-01", end="2026-11-10").hints == []
    [tag] = spend(data, tag="user:team=webb", start="2026-11-01", end="2026-11-10").hints
    assert tag.known == ["user:team=web"]
    [acct] = spend(data, account="222222222222", start="2026-11-01", end="2026-11-10").hints
    assert acct.known == ["111111111111"]


def test_projection_periods_with_fewer_days_than_the_calendar_are_partial(data):
    result = run_projection(data, "month")
    oct_, nov = result.history
    assert (oct_.partial, oct_.days_with_data, oct_.days_in_period) == (False, 31, 31)
    assert (nov.partial, nov.days_with_data, nov.days_in_period) == (True, 10, 30)
    assert result.current == nov


def test_pure_period_rules():
    assert period_end(date(2026, 2, 1), "month") == date(2026, 2, 28)
    assert period_end(date(2026, 11, 2), "week") == date(2026, 11, 8)
    whole = coverage(
        date(2026, 10, 1),
        date(2026, 10, 31),
        date(2026, 9, 1),
        date(2026, 12, 31),
        date(2026, 1, 1),
        datetime(2026, 11, 1, tzinfo=timezone.utc),
    )
    assert not whole.partial and whole.days == 31  # data through midnight holds the whole last day
    assert closest("ec2", ["AWSLambda", "AmazonEC2", "AmazonS3"])[0] == "AmazonEC2"


def test_the_api_answers_an_unknown_service_with_200_and_hints(tmp_path, monkeypatch):
    from serving.app import create_app
    from serving.testing import dev_headers, prepare_env

    home = prepare_env(
        monkeypatch, tmp_path, Path(__file__).resolve().parent.parent / "assets_config" / "tenants", {T: 1.0}, days=10
    )
    with TestClient(create_app()) as client:
        r = client.get("/api/spend?service=EC2&granularity=month", headers=dev_headers(home, T))
        assert r.status_code == 200
        body = r.json()
        assert body["hints"][0]["field"] == "service" and "AmazonEC2" in body["hints"][0]["known"]
        assert body["totals"]["cost"] == 0
        ok = client.get("/api/spend?granularity=month", headers=dev_headers(home, T)).json()
        assert ok["hints"] == [] and ok["partial_periods"] == any(pt["partial"] for pt in ok["series"])
        assert all(pt["period_end"] and pt["days_with_data"] for pt in ok["series"])


# ---- Major Tom says it too ---------------------------------------------------------------------------------------


class _Scope:
    def __init__(self, data, connection=None):
        self.data, self._connection = data, connection

    def recommendation_statuses(self):
        return {}

    def connection_status(self):
        return self._connection


def answer(data, message, context=None, connection=None):
    from serving.major_tom.answers import start_answer
    from serving.schemas import ChatContext

    out, lines = start_answer(message, ChatContext(**context) if context else None, _Scope(data, connection))
    list(lines)
    assert not out.refused, out.text
    return out.text


def test_major_tom_separates_savings_from_tax_and_says_the_month_is_not_over(data):
    text = answer(data, "Where did the savings come from?")
    assert "Tax, fees, credits and charges without an on-demand price came to" in text
    assert "saved -" not in text  # the naive figure is negative here; the baseline's is not
    assert "So far for the month from 2026-11-01 (10 of its 30 days have data" in text
    dashboard = answer(
        data,
        "explain this view",
        {"path": "/app/dashboard", "query": "granularity=month&start=2026-10-01&end=2026-11-30"},
    )
    assert "Not every month here is complete" in dashboard
    assert "the month from 2026-11-01 holds 10 of its days (data runs through 2026-11-10 15:00 UTC)" in dashboard


def test_major_tom_names_a_filter_that_matched_nothing(data):
    text = answer(data, "explain this view", {"path": "/app/dashboard", "query": "service=EC2"})
    assert "Nothing in your data matches service=EC2 (did you mean AmazonEC2" in text


def test_major_tom_gives_the_customer_fixes_it_can_carry_out(data):
    from blocks_pipelines.connect.errors import entry

    failing = [
        {"name": "assume_role", "message": "denied.", "remediation": entry("BLK-CONN-001").remediation},
        {"name": "credentials", "message": "rejected.", "remediation": entry("BLK-CONN-002").remediation},
    ]
    text = answer(
        data,
        "is my data up to date?",
        connection={"status": "failed", "checked_at": "2026-11-10T12:00:00+00:00", "failing": failing},
    )
    assert "`blocks" not in text and "Operator action" not in text
    assert "from the Connect AWS page" in text and "on Blocks' side, not in your AWS account" in text


def test_no_answer_tells_the_customer_to_do_what_only_the_back_office_can(tmp_path, monkeypatch):
    from serving.data.store import MartStore
    from serving.testing import write_fixture_lake

    write_fixture_lake(tmp_path / "lake", {T: 1.0}, days=40)
    store = MartStore(str(tmp_path / "lake"), tmp_path / "cache")
    try:
        d = store.tenant(T)
        texts = [
            answer(d, m)
            for m in (
                "Where did the savings come from?",
                "What should I do next?",
                "What changed this week?",
                "is my data up to date?",
            )
        ]
        texts += [
            answer(d, "explain this view", {"path": p, "query": ""})
            for p in ("/app/dashboard", "/app/recommendations", "/app/savings-plans")
        ]
    finally:
        store.close()
    for text in texts:
        for phrase in (
            "back office",
            "back-office",
            "Dagster",
            "`blocks",
            "Approve it",
            "materializ",
            "for this tenant",
        ):
            assert phrase.lower() not in text.lower(), (phrase, text)


def test_proposals_in_the_api_carry_their_units(tmp_path, monkeypatch):
    from pydantic import BaseModel

    from blocks_pipelines.savings_plans.proposals import build_proposal, publish_proposal
    from blocks_pipelines.state import get_state_store
    from serving.app import create_app
    from serving.testing import dev_headers, prepare_env
    from sp_purchase_helpers import hourly_usage, tenant

    class Rec(BaseModel):
        hourly_commitment: float = 2.5
        expected_savings: float = 7200.0  # over the 1-year term
        expected_monthly_savings: float = 600.0

    home = prepare_env(
        monkeypatch, tmp_path, Path(__file__).resolve().parent.parent / "assets_config" / "tenants", {T: 1.0}, days=5
    )
    acme = tenant(T)
    publish_proposal(
        get_state_store(), build_proposal(acme, hourly_usage(days=10), Rec(), [], datetime.now(timezone.utc))
    )
    with TestClient(create_app()) as client:
        [p] = client.get("/api/savings-plans", headers=dev_headers(home, T)).json()["proposals"]
    assert p["hourly_commitment"] == 2.5
    assert p["total_commitment_usd"] == pytest.approx(2.5 * 8760 * acme.guardrails.term_years)
    assert (p["expected_savings_usd_per_month"], p["expected_savings_usd_over_term"]) == (600.0, 7200.0)
