"""Synthetic CUR deliveries in AWS's exact layouts (legacy, CUR 2.0, FOCUS), built with vectorized polars.

Used by the ingestion tests and benchmark; every value is a function of the row index, so totals are reproducible.
"""

from __future__ import annotations

import gzip
import json
import uuid
import zipfile
from datetime import datetime
from pathlib import Path

import polars as pl

from blocks_pipelines.ingestion.deliveries import month_bounds
from blocks_pipelines.lake import fs

# One cycle of 20 rows: 12 usage, 3 SP covered, 1 negation, 1 SP fee, 1 RI covered, 1 tax, 1 credit.
LINE_ITEM_CYCLE = (
    ["Usage"] * 12
    + ["SavingsPlanCoveredUsage"] * 3
    + ["SavingsPlanNegation", "SavingsPlanRecurringFee", "DiscountedUsage", "Tax", "Credit"]
)
SP_ARN = "arn:aws:savingsplans::111111111111:savingsplan/abcd-1234"
RI_ARN = "arn:aws:ec2:us-east-1:111111111111:reserved-instances/ri-1"


def cur2_frame(
    n_rows: int,
    billing_period: str,
    payer: str,
    accounts: list[str],
    *,
    currency: str = "USD",
    invoice_id: str | None = None,
    offset: int = 0,
) -> pl.DataFrame:
    """A CUR 2.0 month (Data Exports snake_case columns, map columns as list of {key, value})."""
    start, end = month_bounds(billing_period)
    hours = int((end - start).total_seconds() // 3600)
    i = pl.int_range(offset, offset + n_rows, dtype=pl.Int64, eager=False)
    lit = pl.lit(pl.Series(LINE_ITEM_CYCLE)).gather(i % len(LINE_ITEM_CYCLE))
    cost = ((i * 7919) % 1000 + 1).cast(pl.Float64) / 100
    usage_start = pl.lit(start.replace(tzinfo=None)).cast(pl.Datetime("ms")) + pl.duration(hours=i % hours)
    region = pl.lit(pl.Series(["us-east-1", "eu-west-1", "us-west-2"])).gather(i % 3)
    kv = lambda k, v: pl.struct(pl.lit(k).alias("key"), v.cast(pl.String).alias("value"))  # noqa: E731
    negation = lit == "SavingsPlanNegation"
    frame = pl.select(i.alias("_i")).with_columns(
        identity_line_item_id=pl.col("_i").cast(pl.String),
        identity_time_interval=pl.lit(""),
        bill_invoice_id=pl.lit(invoice_id, pl.String),
        bill_billing_entity=pl.lit("AWS"),
        bill_bill_type=pl.lit("Anniversary"),
        bill_payer_account_id=pl.lit(payer),
        bill_billing_period_start_date=pl.lit(start.replace(tzinfo=None)).cast(pl.Datetime("ms")),
        bill_billing_period_end_date=pl.lit(end.replace(tzinfo=None)).cast(pl.Datetime("ms")),
        line_item_usage_account_id=pl.lit(pl.Series(accounts)).gather(i % len(accounts)),
        line_item_line_item_type=lit,
        line_item_usage_start_date=usage_start,
        line_item_usage_end_date=usage_start + pl.duration(hours=1),
        line_item_product_code=pl.lit(pl.Series(["AmazonEC2", "AmazonS3", "AWSLambda", "AmazonRDS"])).gather(i % 4),
        line_item_usage_type=pl.lit("BoxUsage:m5.large"),
        line_item_operation=pl.lit("RunInstances"),
        line_item_availability_zone=region + "a",
        line_item_resource_id=pl.lit("i-") + (i % 5000).cast(pl.String),
        line_item_usage_amount=pl.lit(1.0),
        line_item_normalization_factor=pl.lit(4.0),
        line_item_currency_code=pl.lit(currency),
        line_item_unblended_rate=cost,
        line_item_unblended_cost=pl.when(negation).then(-cost).otherwise(cost),
        line_item_blended_cost=cost,
        line_item_line_item_description=pl.lit("$0.096 per On Demand Linux m5.large Instance Hour"),
        product=pl.concat_list(kv("region", region), kv("product_name", pl.lit("Amazon Elastic Compute Cloud"))),
        product_product_family=pl.lit("Compute Instance"),
        product_region_code=region,
        product_instance_type=pl.lit("m5.large"),
        product_servicecode=pl.lit("AmazonEC2"),
        pricing_term=pl.lit("OnDemand"),
        pricing_unit=pl.lit("Hrs"),
        pricing_public_on_demand_cost=cost * 1.25,
        pricing_public_on_demand_rate=cost * 1.25,
        reservation_reservation_a_r_n=pl.when(lit == "DiscountedUsage").then(pl.lit(RI_ARN)),
        reservation_effective_cost=pl.when(lit == "DiscountedUsage").then(cost * 0.6),
        reservation_unused_amortized_upfront_fee_for_billing_period=pl.lit(None, pl.Float64),
        reservation_unused_recurring_fee=pl.lit(None, pl.Float64),
        savings_plan_savings_plan_a_r_n=pl.when(lit.str.starts_with("SavingsPlan")).then(pl.lit(SP_ARN)),
        savings_plan_savings_plan_effective_cost=pl.when(lit == "SavingsPlanCoveredUsage").then(cost * 0.7),
        savings_plan_total_commitment_to_date=pl.when(lit == "SavingsPlanRecurringFee").then(cost),
        savings_plan_used_commitment=pl.when(lit == "SavingsPlanRecurringFee").then(cost * 0.9),
        resource_tags=pl.concat_list(
            kv("user_team", pl.lit(pl.Series(["web", "api", "data", "ml"])).gather(i % 4)),
            kv("user_env", pl.lit(pl.Series(["prod", "dev", "stage"])).gather(i % 3)),
        ),
        cost_category=pl.concat_list(kv("CostCenter", pl.lit("cc-") + (i % 7).cast(pl.String))),
        billing_period=pl.lit(billing_period),
    )
    return frame.drop("_i")


LEGACY_NAMES = {
    "identity_line_item_id": "identity/LineItemId",
    "identity_time_interval": "identity/TimeInterval",
    "bill_invoice_id": "bill/InvoiceId",
    "bill_billing_entity": "bill/BillingEntity",
    "bill_bill_type": "bill/BillType",
    "bill_payer_account_id": "bill/PayerAccountId",
    "bill_billing_period_start_date": "bill/BillingPeriodStartDate",
    "bill_billing_period_end_date": "bill/BillingPeriodEndDate",
    "line_item_usage_account_id": "lineItem/UsageAccountId",
    "line_item_line_item_type": "lineItem/LineItemType",
    "line_item_usage_start_date": "lineItem/UsageStartDate",
    "line_item_usage_end_date": "lineItem/UsageEndDate",
    "line_item_product_code": "lineItem/ProductCode",
    "line_item_usage_type": "lineItem/UsageType",
    "line_item_operation": "lineItem/Operation",
    "line_item_availability_zone": "lineItem/AvailabilityZone",
    "line_item_resource_id": "lineItem/ResourceId",
    "line_item_usage_amount": "lineItem/UsageAmount",
    "line_item_currency_code": "lineItem/CurrencyCode",
    "line_item_unblended_cost": "lineItem/UnblendedCost",
    "product_product_family": "product/productFamily",
    "product_region_code": "product/region",
    "product_instance_type": "product/instanceType",
    "pricing_term": "pricing/term",
    "pricing_unit": "pricing/unit",
    "pricing_public_on_demand_cost": "pricing/publicOnDemandCost",
    "reservation_reservation_a_r_n": "reservation/ReservationARN",
    "reservation_effective_cost": "reservation/EffectiveCost",
    "savings_plan_savings_plan_a_r_n": "savingsPlan/SavingsPlanARN",
    "savings_plan_savings_plan_effective_cost": "savingsPlan/SavingsPlanEffectiveCost",
    "savings_plan_total_commitment_to_date": "savingsPlan/TotalCommitmentToDate",
    "savings_plan_used_commitment": "savingsPlan/UsedCommitment",
}


def cur1_frame(n_rows: int, billing_period: str, payer: str, accounts: list[str], **kw) -> pl.DataFrame:
    """A legacy CUR month as text, like the CSV AWS writes (`2026-11-01T00:00:00Z` times, flat tag columns)."""
    df = cur2_frame(n_rows, billing_period, payer, accounts, **kw)
    ts = {c: pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%SZ") for c in df.columns if df.schema[c] == pl.Datetime("ms")}

    def tag(k: str) -> pl.Expr:
        return (
            pl.col("resource_tags")
            .list.eval(pl.element().filter(pl.element().struct.field("key") == k).struct.field("value"))
            .list.first()
        )

    df = df.with_columns(**ts).with_columns(
        pl.concat_str(pl.col("line_item_usage_start_date"), pl.col("line_item_usage_end_date"), separator="/").alias(
            "identity_time_interval"
        ),
        tag("user_team").alias("resourceTags/user:team"),
        tag("user_env").alias("resourceTags/user:env"),
    )
    return df.select(
        [pl.col(k).cast(pl.String).alias(v) for k, v in LEGACY_NAMES.items()]
        + [pl.col("resourceTags/user:team"), pl.col("resourceTags/user:env")]
    )


def focus_frame(
    n_rows: int,
    billing_period: str,
    payer: str,
    accounts: list[str],
    *,
    providers: tuple[str, ...] = ("AWS",),
    currency: str = "USD",
) -> pl.DataFrame:
    start, end = month_bounds(billing_period)
    hours = int((end - start).total_seconds() // 3600)
    i = pl.int_range(0, n_rows, dtype=pl.Int64, eager=False)
    cost = ((i * 7919) % 1000 + 1).cast(pl.Float64) / 100
    t0 = pl.lit(start).cast(pl.Datetime("us", "UTC")) + pl.duration(hours=i % hours)
    cat = pl.lit(pl.Series(["Usage"] * 8 + ["Tax", "Credit"])).gather(i % 10)
    used_sp = (i % 10) < 2
    return pl.select(
        ProviderName=pl.lit(pl.Series(list(providers))).gather(i % len(providers)),
        BillingAccountId=pl.lit(payer),
        SubAccountId=pl.lit(pl.Series(accounts)).gather(i % len(accounts)),
        BillingPeriodStart=pl.lit(start).cast(pl.Datetime("us", "UTC")),
        BillingPeriodEnd=pl.lit(end).cast(pl.Datetime("us", "UTC")),
        ChargePeriodStart=t0,
        ChargePeriodEnd=t0 + pl.duration(hours=1),
        ChargeCategory=cat,
        BilledCost=cost,
        EffectiveCost=pl.when(used_sp).then(cost * 0.7).otherwise(cost),
        ListCost=cost * 1.25,
        BillingCurrency=pl.lit(currency),
        ServiceName=pl.lit("Amazon Elastic Compute Cloud"),
        RegionId=pl.lit("us-east-1"),
        ResourceId=pl.lit("i-") + (i % 100).cast(pl.String),
        CommitmentDiscountId=pl.when(used_sp).then(pl.lit(SP_ARN)),
        CommitmentDiscountType=pl.when(used_sp).then(pl.lit("Savings Plan")),
        CommitmentDiscountStatus=pl.when(used_sp).then(pl.lit("Used")),
        ConsumedQuantity=pl.lit(1.0),
        Tags=pl.lit('{"team":"web"}'),
    )


def as_maps(df: pl.DataFrame) -> pl.DataFrame:
    """Lists of {key, value} as Map columns: written to Parquet they are MAP columns, as AWS writes CUR 2.0's."""

    def is_entries(t: pl.DataType) -> bool:
        return (
            isinstance(t, pl.List)
            and isinstance(t.inner, pl.Struct)
            and [f.name for f in t.inner.fields] == ["key", "value"]
        )

    return df.with_columns(
        pl.col(n).cast(pl.Map(t.inner.fields[0].dtype, t.inner.fields[1].dtype))
        for n, t in df.schema.items()
        if is_entries(t)
    )


def _write_table(df: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name
    if name.endswith(".parquet"):
        as_maps(df).write_parquet(path, compression="snappy")
    elif name.endswith(".csv.gz"):
        with gzip.open(path, "wb", compresslevel=1) as fh:
            df.write_csv(fh)
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(name.removesuffix(".zip") + ".csv", df.write_csv())
    else:
        df.write_csv(path)


def _manifest_time(dt: datetime) -> str:
    return dt.strftime("%Y%m%dT%H%M%S.000Z")


def write_legacy_delivery(
    root: str,
    report: str,
    frames: list[pl.DataFrame],
    billing_period: str,
    workdir: Path,
    *,
    suffix: str = "csv.gz",
    assembly_id: str | None = None,
) -> str:
    """A legacy delivery: data + manifest in the assembly folder and the period-level manifest; returns assemblyId."""
    assembly_id = assembly_id or str(uuid.uuid4())
    start, end = month_bounds(billing_period)
    period = f"{start:%Y%m%d}-{end:%Y%m%d}"
    keys = []
    for n, df in enumerate(frames, 1):
        rel = f"{report}/{period}/{assembly_id}/{report}-{n}.{suffix}"
        local = workdir / rel
        _write_table(df, local)
        fs.put_file(local, fs.join(root, rel))
        keys.append(f"cur/{rel}")
    columns = [{"category": c.split("/")[0], "name": c.split("/")[-1]} for c in frames[0].columns]
    manifest = {
        "assemblyId": assembly_id,
        "account": "111111111111",
        "columns": columns,
        "compression": {"csv.gz": "GZIP", "zip": "ZIP", "parquet": "Parquet"}.get(suffix, "None"),
        "reportKeys": keys,
        "billingPeriod": {"start": _manifest_time(start), "end": _manifest_time(end)},
        "bucket": "local",
        "reportId": "r-1",
        "reportName": report,
    }
    body = json.dumps(manifest).encode()
    fs.write_bytes(fs.join(root, report, period, assembly_id, f"{report}-Manifest.json"), body)
    fs.write_bytes(fs.join(root, report, period, f"{report}-Manifest.json"), body)
    return assembly_id


def write_export_delivery(
    root: str,
    export: str,
    frames: list[pl.DataFrame],
    billing_period: str,
    workdir: Path,
    *,
    suffix: str = "snappy.parquet",
    execution_id: str | None = None,
) -> str:
    """A Data Exports (CUR 2.0 / FOCUS) delivery: data files then the metadata manifest; returns executionId."""
    execution_id = execution_id or str(uuid.uuid4())
    data_files = []
    for n, df in enumerate(frames, 1):
        rel = f"{export}/data/BILLING_PERIOD={billing_period}/{execution_id}/{export}-{n:05d}.{suffix}"
        local = workdir / rel
        _write_table(df, local)
        fs.put_file(local, fs.join(root, rel))
        data_files.append(f"s3://local/exports/{rel}")
    start, end = month_bounds(billing_period)
    manifest = {
        "executionId": execution_id,
        "exportArn": f"arn:aws:bcm-data-exports:us-east-1:111111111111:export/{export}",
        "billingPeriod": {"start": f"{start:%Y-%m-%dT%H:%M:%S}.000Z", "end": f"{end:%Y-%m-%dT%H:%M:%S}.000Z"},
        "dataFiles": data_files,
        "columns": [{"name": c} for c in frames[0].columns],
        "reportName": export,
    }
    fs.write_bytes(
        fs.join(root, export, "metadata", f"BILLING_PERIOD={billing_period}", f"{export}-Manifest.json"),
        json.dumps(manifest).encode(),
    )
    return execution_id
