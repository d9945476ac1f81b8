"""A multi-cloud tenant's marts: another cloud's savings plan rows (FOCUS from Azure) never count as AWS Savings
Plan coverage or commitment, so the SP analyzer's input is the AWS bill's alone."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

import models_helpers as h
from blocks_pipelines.lake.layout import mart_uri
from blocks_pipelines.models.build import run_dbt_build
from tests.synthetic.line_items import canonical_frame, write_line_items

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs, crash-injected processes or moto S3/SQS

TENANT = "testco"
AZURE_ACCOUNT = "/providers/Microsoft.Billing/billingAccounts/8a1b2c3d-0000-4a00-9000-000000000001"
AZURE_PLAN = "/providers/Microsoft.BillingBenefits/savingsPlanOrders/o-1/savingsPlans/sp-1"


def _azure_rows() -> pl.DataFrame:
    """In SP_HOUR, Azure VM usage covered by an Azure savings plan, and that plan's fee, as ingestion maps them."""
    base = {
        "tenant_id": TENANT,
        "usage_start": h.SP_HOUR,
        "provider": "Microsoft",
        "source_format": "focus",
        "payer_account_id": AZURE_ACCOUNT,
        "usage_account_id": "/subscriptions/sub-1",
        "currency": "USD",
        "savings_plan_arn": AZURE_PLAN,
        "service": "Virtual Machines",
        "region": "westeurope",
    }
    return canonical_frame(
        [
            {
                **base,
                "line_item_type": "SavingsPlanCoveredUsage",
                "unblended_cost": 0.0,
                "amortized_cost": 30.0,
                "public_on_demand_cost": 40.0,
                "savings_plan_effective_cost": 30.0,
                "usage_type": "D4s v5",
            },
            {
                **base,
                "line_item_type": "SavingsPlanRecurringFee",
                "unblended_cost": 30.0,
                "amortized_cost": 0.0,
                "savings_plan_total_commitment": 30.0,
                "savings_plan_used_commitment": 30.0,
            },
        ]
    )


@pytest.fixture(scope="module")
def marts(tmp_path_factory):
    root = tmp_path_factory.mktemp("models-multicloud")
    with h.isolated_platform(root) as (config, lake):
        h.install_tenant(config, h.make_tenant(TENANT))
        write_line_items(pl.concat([h.hand_fixture(TENANT), _azure_rows()]), lake)
        result = run_dbt_build(TENANT)
        assert result.success
        yield {
            m: pl.read_parquet(mart_uri(lake, m, TENANT)) for m in ("sp_eligible_usage_hourly", "sp_position_hourly")
        }


def _hour(frame: pl.DataFrame, ts: datetime) -> pl.DataFrame:
    return frame.filter(pl.col("usage_hour") == ts.replace(tzinfo=None))


def test_azure_savings_plan_usage_is_not_aws_sp_eligible_or_covered(marts):
    row = _hour(marts["sp_eligible_usage_hourly"], h.SP_HOUR).row(0, named=True)
    # the AWS figures of tests/test_models_build.py, untouched by Azure's 40.0 of covered usage
    assert (row["eligible_on_demand_cost"], row["covered_on_demand_cost"], row["sp_effective_cost"]) == pytest.approx(
        (22.5, 19.5, 13.0)
    )


def test_azure_savings_plans_are_not_aws_positions(marts):
    pos = {r["savings_plan_arn"]: r for r in _hour(marts["sp_position_hourly"], h.SP_HOUR).iter_rows(named=True)}
    assert set(pos) == {h.PLAN_A, h.PLAN_B, "TOTAL"}
    assert pos["TOTAL"]["commitment"] == pytest.approx(15.0)
    assert pos["TOTAL"]["coverage_pct"] == pytest.approx(100 * 19.5 / 22.5)
