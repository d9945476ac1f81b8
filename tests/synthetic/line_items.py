"""Canonical line items made up for tests and benchmarks of the dbt models (ingestion is not needed to run them).

`canonical_frame` turns a few hand-written rows into the full canonical schema; `synthetic_month` generates a
tenant-month of a realistic mix (EC2 on demand and under a Savings Plan, storage, idle IPs, NAT, tax) at a chosen
size; `write_line_items` lays a frame out in the lake exactly as ingestion does (one file per tenant and day).
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import polars as pl

from blocks_pipelines.ingestion.schema import CANONICAL_COLUMNS, CANONICAL_SCHEMA, LINE_ITEM_TYPES
from blocks_pipelines.lake import layout, months
from blocks_pipelines.lake.fs import write_bytes

DEFAULT_ACCOUNTS = ("111111111112", "111111111113", "111111111114")  # the last one is tagged dev

_DEFAULTS: dict[str, Any] = {
    "provider": "AWS",
    "payer_account_id": "111111111111",
    "usage_account_id": "111111111111",
    "line_item_type": "Usage",
    "usage_amount": 1.0,
    "currency": "USD",
    "unblended_cost": 0.0,
    "source_format": "cur1",
    "delivery_id": "synthetic",
    "tags": "{}",
}


def canonical_frame(rows: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """Rows need tenant_id and usage_start (a UTC datetime); the rest defaults sensibly.

    amortized_cost defaults to unblended_cost and public_on_demand_cost to unblended_cost (0 on Negation rows),
    so a fixture states only what its case is about.
    """
    full = []
    for row in rows:
        r = {**_DEFAULTS, **row}
        start: datetime = r["usage_start"]
        r.setdefault("usage_end", start + timedelta(hours=1))
        r.setdefault("usage_date", start.date())
        r.setdefault("billing_period", start.strftime("%Y-%m"))
        r.setdefault("charge_class", LINE_ITEM_TYPES[r["line_item_type"]])
        r.setdefault("amortized_cost", r["unblended_cost"])
        negation = r["line_item_type"] == "SavingsPlanNegation"
        r.setdefault("public_on_demand_cost", 0.0 if negation else r["unblended_cost"])
        full.append({c.name: r.get(c.name) for c in CANONICAL_COLUMNS})
    return pl.DataFrame(full, schema=CANONICAL_SCHEMA, orient="row")


def write_line_items(frame: pl.DataFrame, lake_uri: str) -> list[str]:
    """Write one Parquet file per (tenant, usage_date) and commit each billing month's pointer, as ingestion lays
    out the lake (a day already in the month and absent from the frame keeps its file); returns the uris."""
    uris = []
    for (tenant_id, bp), month in frame.sort("usage_start").group_by(
        ["tenant_id", "billing_period"], maintain_order=True
    ):
        current, tag = months.read_month(lake_uri, tenant_id, bp)
        version = months.new_version_id()
        files = {f.usage_date: f for f in current.files} if current else {}
        for (day,), part in month.group_by(["usage_date"], maintain_order=True):
            buf = io.BytesIO()
            part.write_parquet(buf, compression="zstd")
            name = layout.line_items_file_name(version, day)
            uri = layout.line_items_file_uri(lake_uri, tenant_id, bp, name)
            write_bytes(uri, buf.getvalue())
            files[day] = months.MonthFile(name, day, part.height)
            uris.append(uri)
        nxt = months.carry_forward(
            lake_uri, months.MonthVersion(tenant_id, bp, version, tuple(files[d] for d in sorted(files)), "synthetic")
        )
        months.commit_month(lake_uri, nxt, tag)
        months.sweep_month(lake_uri, tenant_id, bp, nxt)
    return uris


def synthetic_month(
    tenant_id: str, month: date, rows_per_hour: int, accounts: tuple[str, ...] = DEFAULT_ACCOUNTS, seed: int = 7
) -> pl.DataFrame:
    """About rows_per_hour x hours-in-month line items for one tenant (at least ~20 per hour for the mix).

    Per hour: one Savings Plan (commitment $4/h) covering part of the EC2 usage with its Negation and recurring
    fee rows, on-demand EC2 instances (some of a previous generation, some in a dev account), EBS volumes, an idle
    public IPv4 address, a NAT gateway that moves almost nothing, S3 and tax; the rest are filler S3 requests.
    """
    rng = random.Random(seed)
    first = datetime(month.year, month.month, 1, tzinfo=timezone.utc)
    nxt = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=timezone.utc)
    hours = [first + timedelta(hours=h) for h in range(int((nxt - first).total_seconds() // 3600))]

    sp_arn = "arn:aws:savingsplans::111111111111:savingsplan/synthetic-1"
    fixed: list[dict[str, Any]] = []
    for h in hours:
        base = {"tenant_id": tenant_id, "usage_start": h, "region": "eu-west-1", "availability_zone": "eu-west-1a"}
        # SP covers $5 of on-demand at 0.72 -> $3.6 used of a $4 commitment.
        fixed += [
            {
                **base,
                "line_item_type": "SavingsPlanCoveredUsage",
                "service": "AmazonEC2",
                "usage_type": "EUW1-BoxUsage:m5.xlarge",
                "resource_id": "i-sp0001",
                "instance_type": "m5.xlarge",
                "unblended_cost": 5.0,
                "amortized_cost": 3.6,
                "savings_plan_arn": sp_arn,
                "savings_plan_effective_cost": 3.6,
                "usage_account_id": accounts[0],
            },
            {
                **base,
                "line_item_type": "SavingsPlanNegation",
                "service": "AmazonEC2",
                "usage_type": "EUW1-BoxUsage:m5.xlarge",
                "resource_id": "i-sp0001",
                "unblended_cost": -5.0,
                "amortized_cost": 0.0,
                "savings_plan_arn": sp_arn,
                "usage_account_id": accounts[0],
            },
            {
                **base,
                "line_item_type": "SavingsPlanRecurringFee",
                "service": "ComputeSavingsPlans",
                "usage_type": "ComputeSP:1yrNoUpfront",
                "unblended_cost": 4.0,
                "amortized_cost": 0.4,
                "public_on_demand_cost": 0.0,
                "savings_plan_arn": sp_arn,
                "savings_plan_total_commitment": 4.0,
                "savings_plan_used_commitment": 3.6,
            },
            {
                **base,
                "service": "AmazonEC2",
                "usage_type": "EUW1-BoxUsage:m4.2xlarge",
                "resource_id": "i-old0001",
                "instance_type": "m4.2xlarge",
                "pricing_term": "OnDemand",
                "unblended_cost": 0.44,
                "usage_account_id": accounts[1],
            },
            {
                **base,
                "service": "AmazonEC2",
                "usage_type": "EUW1-BoxUsage:c5.2xlarge",
                "resource_id": "i-dev0001",
                "instance_type": "c5.2xlarge",
                "pricing_term": "OnDemand",
                "unblended_cost": 0.38,
                "usage_account_id": accounts[2],
                "tags": '{"user:environment": "dev"}',
            },
            {
                **base,
                "service": "AmazonEC2",
                "usage_type": "EUW1-EBS:VolumeUsage.gp3",
                "resource_id": "vol-0001",
                "unblended_cost": 0.011,
                "usage_account_id": accounts[1],
            },
            {
                **base,
                "service": "AmazonVPC",
                "usage_type": "EUW1-PublicIPv4:IdleAddress",
                "resource_id": "eipalloc-0001",
                "unblended_cost": 0.005,
                "usage_account_id": accounts[1],
            },
            {
                **base,
                "service": "AmazonEC2",
                "usage_type": "EUW1-NatGateway-Hours",
                "resource_id": "nat-0001",
                "unblended_cost": 0.048,
                "usage_account_id": accounts[1],
            },
            {
                **base,
                "service": "AmazonEC2",
                "usage_type": "EUW1-NatGateway-Bytes",
                "resource_id": "nat-0001",
                "usage_amount": 0.001,
                "unblended_cost": 0.00005,
                "usage_account_id": accounts[1],
            },
            {
                **base,
                "line_item_type": "Tax",
                "service": "AmazonEC2",
                "unblended_cost": 0.2,
                "public_on_demand_cost": 0.0,
            },
        ]
    frame = canonical_frame(fixed)
    filler = max(rows_per_hour - 10, 0) * len(hours)
    if filler == 0:
        return frame
    template = canonical_frame(
        [
            {
                "tenant_id": tenant_id,
                "usage_start": first,
                "service": "AmazonS3",
                "usage_type": "EUW1-Requests-Tier1",
                "region": "eu-west-1",
            }
        ]
    )
    starts = pl.Series("usage_start", [hours[rng.randrange(len(hours))] for _ in range(filler)])
    cost = pl.Series("unblended_cost", [rng.gammavariate(2.0, 0.01) for _ in range(filler)])
    account = pl.Series("usage_account_id", [rng.choice(accounts) for _ in range(filler)])
    filler_frame = (
        template.select(pl.all().repeat_by(filler).explode())
        .with_columns(
            starts.dt.cast_time_unit("us").dt.convert_time_zone("UTC"),
            (starts + timedelta(hours=1)).dt.cast_time_unit("us").dt.convert_time_zone("UTC").alias("usage_end"),
            starts.dt.date().alias("usage_date"),
            cost,
            cost.alias("amortized_cost"),
            cost.alias("public_on_demand_cost"),
            account,
            pl.Series("resource_id", [f"bucket-{i % 50}" for i in range(filler)]),
        )
        .with_columns(pl.col("usage_start").dt.strftime("%Y-%m").alias("billing_period"))
    )
    return pl.concat([frame, filler_frame.select(frame.columns).cast(CANONICAL_SCHEMA)])
