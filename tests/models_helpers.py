"""Fixtures for the dbt model tests: a tenant with known accounts and hand-computable canonical line items."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from blocks_pipelines.tenants.config import TenantConfig, dump_tenant
from tests.synthetic.line_items import canonical_frame

PAYER, PROD, DEV, DATA = "444444444401", "444444444402", "444444444403", "444444444404"
UNKNOWN_ACCOUNT = "999999999999"
PLAN_A = "arn:aws:savingsplans::444444444401:savingsplan/plan-a"
PLAN_B = "arn:aws:savingsplans::444444444401:savingsplan/plan-b"
SP_HOUR = datetime(2026, 10, 1, 10, tzinfo=timezone.utc)
DAYS = [date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)]
OLD_SNAPSHOT_DAY = date(2026, 6, 1)
M4_HOURLY = 2.0  # the previous-generation on-demand instance: 2 $/h, about $1,460 a month of compute
DEV_HOURLY = 0.1664  # t3.xlarge in the dev account, on day 2 only


def make_tenant(tenant_id: str = "testco") -> TenantConfig:
    return TenantConfig.model_validate(
        {
            "id": tenant_id,
            "name": "Test Co",
            "billing_mode": "blocks_vendor",
            "organization": {
                "payer_account_id": PAYER,
                "organizational_units": ["Root", "Root/Prod", "Root/Dev", "Root/Data"],
                "linked_accounts": [
                    {"account_id": PAYER, "name": "management", "ou_path": "Root"},
                    {"account_id": PROD, "name": "prod-web", "ou_path": "Root/Prod"},
                    {"account_id": DEV, "name": "dev-sandbox", "ou_path": "Root/Dev"},
                    {"account_id": DATA, "name": "analytics", "ou_path": "Root/Data"},
                ],
            },
            "connection": {
                "role_arn": f"arn:aws:iam::{PAYER}:role/BlocksDataRead",
                "external_id": "blocks-testco-0123456789",
            },
            "cur_source": {"uri": "sources/testco", "format": "cur1", "report_name": "testco-cur"},
            "history_start": "2026-06-01",
            "guardrails": {"max_hourly_commitment": 50.0, "target_coverage": 0.8},
        }
    )


def install_tenant(config_dir: Path, tenant: TenantConfig) -> None:
    (config_dir / "tenants").mkdir(parents=True, exist_ok=True)
    (config_dir / "tenants" / f"{tenant.id}.yaml").write_text(dump_tenant(tenant))


def hand_fixture(tenant_id: str) -> pl.DataFrame:
    """Three days of line items; in SP_HOUR two Savings Plans are in play (expected figures in the tests).

    SP_HOUR: plan A commits 10 $/h and covers 12.0 of on-demand for 8.0; plan B commits 5 $/h and covers 7.5 for
    5.0; uncovered eligible usage is the m4 instance (2.0), Fargate (0.5) and Lambda (0.5); Spot, S3, RDS and tax
    are not eligible. Every hour: the m4 instance, an idle public IPv4, a NAT gateway moving nothing, an EBS volume
    in a zone without instances, an old snapshot; some rows in an account the registry does not know.
    """
    rows: list[dict] = []
    base = {"tenant_id": tenant_id, "region": "eu-west-1", "availability_zone": "eu-west-1a", "payer_account_id": PAYER}
    for day in DAYS:
        for hour in range(24):
            h = datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)
            b = {**base, "usage_start": h}
            rows += [
                {
                    **b,
                    "usage_account_id": PROD,
                    "service": "AmazonEC2",
                    "usage_type": "EUW1-BoxUsage:m4.xlarge",
                    "resource_id": "i-m4old",
                    "instance_type": "m4.xlarge",
                    "pricing_term": "OnDemand",
                    "unblended_cost": M4_HOURLY,
                    "tags": '{"user:team": "web"}',
                },
                {
                    **b,
                    "usage_account_id": PROD,
                    "service": "AmazonVPC",
                    "usage_type": "EUW1-PublicIPv4:IdleAddress",
                    "resource_id": "eipalloc-idle",
                    "unblended_cost": 0.005,
                },
                {
                    **b,
                    "usage_account_id": PROD,
                    "service": "AmazonEC2",
                    "usage_type": "EUW1-NatGateway-Hours",
                    "resource_id": "nat-quiet",
                    "unblended_cost": 0.048,
                },
                {
                    **b,
                    "usage_account_id": DATA,
                    "service": "AmazonEC2",
                    "usage_type": "EUW1-EBS:VolumeUsage.gp3",
                    "resource_id": "vol-orphan",
                    "availability_zone": "eu-west-1c",
                    "unblended_cost": 0.02,
                },
                {
                    **b,
                    "usage_account_id": DATA,
                    "service": "AmazonEC2",
                    "usage_type": "EUW1-EBS:SnapshotUsage",
                    "resource_id": "snap-old",
                    "unblended_cost": 0.01,
                },
                {
                    **b,
                    "usage_account_id": UNKNOWN_ACCOUNT,
                    "service": "AmazonS3",
                    "usage_type": "EUW1-TimedStorage",
                    "unblended_cost": 0.1,
                },
                {
                    **b,
                    "usage_account_id": DEV,
                    "service": "AmazonEC2",
                    "usage_type": "EUW1-SpotUsage:c5.large",
                    "resource_id": "i-spot",
                    "instance_type": "c5.large",
                    "pricing_term": "Spot",
                    "unblended_cost": 0.03,
                    "public_on_demand_cost": 0.085,
                },
            ]
            if day == DAYS[1]:  # a non-production instance, xlarge: the rightsizing rule's case
                rows.append(
                    {
                        **b,
                        "usage_account_id": DEV,
                        "service": "AmazonEC2",
                        "usage_type": "EUW1-BoxUsage:t3.xlarge",
                        "resource_id": "i-devbig",
                        "instance_type": "t3.xlarge",
                        "pricing_term": "OnDemand",
                        "unblended_cost": DEV_HOURLY,
                        "tags": '{"user:environment": "dev"}',
                    }
                )
    sp = {**base, "usage_start": SP_HOUR}
    rows += [
        {
            **sp,
            "usage_account_id": PROD,
            "line_item_type": "SavingsPlanCoveredUsage",
            "service": "AmazonEC2",
            "usage_type": "EUW1-BoxUsage:m5.4xlarge",
            "resource_id": "i-m5a",
            "instance_type": "m5.4xlarge",
            "unblended_cost": 12.0,
            "amortized_cost": 8.0,
            "savings_plan_arn": PLAN_A,
            "savings_plan_effective_cost": 8.0,
        },
        {
            **sp,
            "usage_account_id": PROD,
            "line_item_type": "SavingsPlanNegation",
            "service": "AmazonEC2",
            "usage_type": "EUW1-BoxUsage:m5.4xlarge",
            "resource_id": "i-m5a",
            "unblended_cost": -12.0,
            "amortized_cost": 0.0,
            "savings_plan_arn": PLAN_A,
        },
        {
            **sp,
            "usage_account_id": PAYER,
            "line_item_type": "SavingsPlanRecurringFee",
            "service": "ComputeSavingsPlans",
            "usage_type": "ComputeSP:1yrNoUpfront",
            "unblended_cost": 10.0,
            "amortized_cost": 2.0,
            "public_on_demand_cost": 0.0,
            "savings_plan_arn": PLAN_A,
            "savings_plan_total_commitment": 10.0,
            "savings_plan_used_commitment": 8.0,
        },
        {
            **sp,
            "usage_account_id": DEV,
            "line_item_type": "SavingsPlanCoveredUsage",
            "service": "AmazonECS",
            "usage_type": "EUW1-Fargate-vCPU-Hours:perCPU",
            "unblended_cost": 7.5,
            "amortized_cost": 5.0,
            "savings_plan_arn": PLAN_B,
            "savings_plan_effective_cost": 5.0,
        },
        {
            **sp,
            "usage_account_id": DEV,
            "line_item_type": "SavingsPlanNegation",
            "service": "AmazonECS",
            "usage_type": "EUW1-Fargate-vCPU-Hours:perCPU",
            "unblended_cost": -7.5,
            "amortized_cost": 0.0,
            "savings_plan_arn": PLAN_B,
        },
        {
            **sp,
            "usage_account_id": PAYER,
            "line_item_type": "SavingsPlanRecurringFee",
            "service": "ComputeSavingsPlans",
            "usage_type": "ComputeSP:1yrNoUpfront",
            "unblended_cost": 5.0,
            "amortized_cost": 0.0,
            "public_on_demand_cost": 0.0,
            "savings_plan_arn": PLAN_B,
            "savings_plan_total_commitment": 5.0,
            "savings_plan_used_commitment": 5.0,
        },
        {
            **sp,
            "usage_account_id": DEV,
            "service": "AmazonECS",
            "usage_type": "EUW1-Fargate-GB-Hours",
            "unblended_cost": 0.5,
        },
        {
            **sp,
            "usage_account_id": DEV,
            "service": "AWSLambda",
            "usage_type": "EUW1-Lambda-GB-Second",
            "unblended_cost": 0.5,
        },
        {
            **sp,
            "usage_account_id": DATA,
            "service": "AmazonRDS",
            "usage_type": "EUW1-InstanceUsage:db.m5.large",
            "unblended_cost": 1.0,
        },
        {
            **sp,
            "usage_account_id": PAYER,
            "line_item_type": "Tax",
            "service": "AmazonEC2",
            "unblended_cost": 3.0,
            "public_on_demand_cost": 0.0,
        },
        {
            **sp,
            "usage_account_id": PAYER,
            "line_item_type": "Credit",
            "service": "AmazonEC2",
            "unblended_cost": -1.0,
            "public_on_demand_cost": 0.0,
        },
    ]
    # The snapshot was already billed four months earlier: the "old snapshot" rule reads its age from the lake.
    old = datetime(OLD_SNAPSHOT_DAY.year, OLD_SNAPSHOT_DAY.month, OLD_SNAPSHOT_DAY.day, 5, tzinfo=timezone.utc)
    rows.append(
        {
            **base,
            "usage_start": old,
            "usage_account_id": DATA,
            "service": "AmazonEC2",
            "usage_type": "EUW1-EBS:SnapshotUsage",
            "resource_id": "snap-old",
            "unblended_cost": 0.01,
        }
    )
    return canonical_frame(rows)


def other_tenant_rows(tenant_id: str) -> pl.DataFrame:
    """Rows of another tenant in the same lake: no mart of the tested tenant may see them."""
    start = datetime(2026, 10, 1, 10, tzinfo=timezone.utc)
    return canonical_frame(
        [
            {
                "tenant_id": tenant_id,
                "usage_start": start + timedelta(hours=i),
                "service": "AmazonEC2",
                "usage_type": "EUW1-BoxUsage:m4.large",
                "unblended_cost": 1000.0,
            }
            for i in range(3)
        ]
    )


@contextmanager
def isolated_platform(root: Path) -> Iterator[tuple[Path, str]]:
    """A module-scoped platform of its own under root (home, tenant registry, local lake, SQLite state, DuckDB
    target): yields (the registry's config folder, the lake URI)."""
    with pytest.MonkeyPatch.context() as mp:
        home, config = root / "home", root / "config"
        lake = str(home / "lake")
        for var, value in {
            "BLOCKS_HOME": home,
            "BLOCKS_ASSETS_CONFIG": config,
            "BLOCKS_LAKE_URI": lake,
            "BLOCKS_ENV": "local",
            "BLOCKS_STATE_BACKEND": "sqlite",
        }.items():
            mp.setenv(var, str(value))
        mp.delenv("BLOCKS_DBT_TARGET", raising=False)
        mp.delenv("BLOCKS_S3_ENDPOINT_URL", raising=False)
        yield config, lake
