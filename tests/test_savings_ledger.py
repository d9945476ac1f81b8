"""The savings_ledger mart on a tenant small enough to check by hand: two hours in September without plans, two
hours in October with one Savings Plan used fully in the first hour and idle in the second."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest

import models_helpers as h
from blocks_pipelines.lake.layout import mart_uri
from blocks_pipelines.models.build import run_dbt_build
from tests.synthetic.line_items import canonical_frame, write_line_items

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs, crash-injected processes or moto S3/SQS

TENANT = "ledgerco"
PLAN = "arn:aws:savingsplans::444444444401:savingsplan/plan-l"


def ledger_line_items() -> pl.DataFrame:
    base = {"tenant_id": TENANT, "region": "eu-west-1", "payer_account_id": h.PAYER, "usage_account_id": h.PROD}
    ec2 = {"service": "AmazonEC2", "usage_type": "EUW1-BoxUsage:m5.xlarge", "pricing_term": "OnDemand"}
    rows = []
    for hour in (22, 23):  # September: 10 $/h of on-demand EC2 and 1 $ of tax, no plan
        at = datetime(2026, 9, 30, hour, tzinfo=timezone.utc)
        rows += [
            {**base, **ec2, "usage_start": at, "unblended_cost": 10.0},
            {
                **base,
                "usage_start": at,
                "line_item_type": "Tax",
                "service": "AmazonEC2",
                "unblended_cost": 1.0,
                "public_on_demand_cost": 0.0,
            },
        ]
    h0, h1 = (datetime(2026, 10, 1, hour, tzinfo=timezone.utc) for hour in (0, 1))
    fee = {
        **base,
        "usage_account_id": h.PAYER,
        "line_item_type": "SavingsPlanRecurringFee",
        "service": "ComputeSavingsPlans",
        "usage_type": "ComputeSP:1yrNoUpfront",
        "unblended_cost": 7.0,
        "public_on_demand_cost": 0.0,
        "savings_plan_arn": PLAN,
        "savings_plan_total_commitment": 7.0,
    }
    s3 = {**base, "service": "AmazonS3", "usage_type": "EUW1-TimedStorage", "unblended_cost": 2.0}
    rows += [
        # hour 0: the plan covers 10 of on-demand for 7 and is fully used; 5 more of EC2 runs on-demand
        {
            **base,
            **ec2,
            "usage_start": h0,
            "line_item_type": "SavingsPlanCoveredUsage",
            "unblended_cost": 10.0,
            "amortized_cost": 7.0,
            "savings_plan_arn": PLAN,
            "savings_plan_effective_cost": 7.0,
        },
        {
            **base,
            **ec2,
            "usage_start": h0,
            "line_item_type": "SavingsPlanNegation",
            "unblended_cost": -10.0,
            "amortized_cost": 0.0,
            "savings_plan_arn": PLAN,
        },
        {**fee, "usage_start": h0, "amortized_cost": 0.0, "savings_plan_used_commitment": 7.0},
        {**base, **ec2, "usage_start": h0, "unblended_cost": 5.0},
        {**s3, "usage_start": h0},
        # hour 1: nothing for the plan to cover (its 7 is paid unused); 5 of EC2 runs on-demand
        {**fee, "usage_start": h1, "amortized_cost": 7.0, "savings_plan_used_commitment": 0.0},
        {**base, **ec2, "usage_start": h1, "unblended_cost": 5.0},
        {**s3, "usage_start": h1},
    ]
    return canonical_frame(rows)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    root = tmp_path_factory.mktemp("ledger")
    with h.isolated_platform(root) as (config, lake):
        tenant = h.make_tenant(TENANT)
        h.install_tenant(config, tenant)
        write_line_items(ledger_line_items(), lake)
        result = run_dbt_build(TENANT)
        assert result.success, "\n".join(result.failures)
        frame = pl.read_parquet(mart_uri(lake, "savings_ledger", TENANT))
        yield {r["billing_period"]: r for r in frame.iter_rows(named=True)}


def test_a_month_without_plans_falls_short_of_the_promise_by_the_whole_20_percent(ledger):
    sep = ledger["2026-09"]
    # on-demand equivalent 2 x 10 (tax is outside the guarantee); the customer pays 80% of it; Blocks pays it all
    assert sep["on_demand_equivalent"] == pytest.approx(20.0)
    assert sep["customer_cost"] == pytest.approx(16.0)
    assert sep["promised_savings"] == pytest.approx(4.0)
    assert sep["blocks_cost"] == pytest.approx(20.0)
    assert sep["realized_savings"] == pytest.approx(0.0)
    assert sep["realized_esr_pct"] == pytest.approx(0.0)
    assert sep["margin"] == pytest.approx(-4.0)
    assert sep["shortfall"] == pytest.approx(4.0)
    assert (sep["period_start"], sep["period_end"], sep["data_through"]) == (
        date(2026, 9, 1),
        date(2026, 9, 30),
        date(2026, 9, 30),
    )
    assert sep["is_month_to_date"] is False
    # hindsight: hours before any plan carry the ratio plans got later (0.7, sp_eligible_usage_hourly);
    # u = [10, 10] -> cover 10 saves 20 - 0.7 x 10 x 2 = 6, a commitment of 10 x 0.7 $/h
    assert sep["sp_rate_ratio"] == pytest.approx(0.7)
    assert sep["hindsight_sp_savings"] == pytest.approx(6.0)
    assert sep["hindsight_hourly_commitment"] == pytest.approx(7.0)
    assert sep["sp_savings"] == pytest.approx(0.0)
    assert sep["hindsight_regret"] == pytest.approx(6.0)


def test_an_idle_commitment_shows_as_negative_esr_shortfall_and_regret(ledger):
    oct_ = ledger["2026-10"]
    # on-demand equivalent: 10 (covered) + 5 + 2 in hour 0, 5 + 2 in hour 1; the fee and Negation rows count 0
    assert oct_["on_demand_equivalent"] == pytest.approx(24.0)
    # Blocks pays: 7 (effective) + 5 + 2, then 7 (unused commitment) + 5 + 2
    assert oct_["blocks_cost"] == pytest.approx(28.0)
    assert oct_["customer_cost"] == pytest.approx(19.2)
    assert oct_["realized_savings"] == pytest.approx(-4.0)
    assert oct_["realized_esr_pct"] == pytest.approx(-100 * 4.0 / 24.0)
    assert oct_["margin"] == pytest.approx(19.2 - 28.0)
    assert oct_["shortfall"] == pytest.approx(8.8)
    assert oct_["is_month_to_date"] is True and oct_["days_with_data"] == 1
    assert (oct_["sp_eligible_on_demand"], oct_["sp_covered_on_demand"], oct_["sp_commitment_cost"]) == pytest.approx(
        (20.0, 10.0, 14.0)
    )
    assert oct_["sp_coverage_pct"] == pytest.approx(50.0)
    assert oct_["sp_utilization_pct"] == pytest.approx(50.0)
    assert oct_["sp_savings"] == pytest.approx(10.0 - 14.0)
    # hindsight at the plan's rate 7/10: u = [15, 5]; cover 5 saves 10 - 0.7 x 5 x 2 = 3, cover 15 saves -1
    assert oct_["sp_rate_ratio"] == pytest.approx(0.7)
    assert oct_["hindsight_sp_savings"] == pytest.approx(3.0)
    assert oct_["hindsight_hourly_commitment"] == pytest.approx(3.5)
    assert oct_["hindsight_regret"] == pytest.approx(3.0 - (10.0 - 14.0))


def test_margin_is_realized_minus_promised_savings_in_every_month(ledger):
    for row in ledger.values():
        assert row["margin"] == pytest.approx(row["realized_savings"] - row["promised_savings"])
        assert row["promised_savings_pct"] == pytest.approx(20.0)
