"""The canonical line-item schema: every CUR format (legacy, 2.0, FOCUS) and Cost Explorer land in this shape.

docs/canonical_schema.md is generated from CANONICAL_COLUMNS (`blocks schema --markdown`), so the documentation
cannot drift from the code. Lake layout (one file per tenant, billing month and day; a month's files are the
version its pointer names, replaced whole: docs/lake_versions.md):

    {lake}/cur_line_items/tenant_id={tenant}/billing_period={YYYY-MM}/version={v}/usage_date={YYYY-MM-DD}/data.parquet
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

UTC_HOUR = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    required: bool  # never null once normalized
    doc: str


CANONICAL_COLUMNS: tuple[Column, ...] = (
    Column("tenant_id", pl.String, True, "Blocks tenant id (registry file name)."),
    Column("provider", pl.String, True, "AWS, Microsoft, Google Cloud, Oracle... (FOCUS ProviderName; CUR is AWS)."),
    Column("billing_period", pl.String, True, "Billing month, YYYY-MM."),
    Column("usage_start", UTC_HOUR, True, "Start of the usage hour, UTC (truncated to the hour)."),
    Column("usage_end", UTC_HOUR, True, "End of the usage interval, UTC."),
    Column("usage_date", pl.Date, True, "UTC date of usage_start; the lake's partition column."),
    Column("payer_account_id", pl.String, True, "Payer (management / billing) account."),
    Column("usage_account_id", pl.String, True, "Linked account that used the resource (sub account in FOCUS)."),
    Column("line_item_type", pl.String, True, "CUR line item type (Usage, SavingsPlanCoveredUsage, Tax, ...)."),
    Column(
        "charge_class", pl.String, True,
        "usage | savings_plan | reservation | fee | credit | refund | tax | discount: a coarse class of line_item_type.",
    ),
    Column("service", pl.String, False, "Service code (lineItem/ProductCode, e.g. AmazonEC2)."),
    Column("service_name", pl.String, False, "Human service name (product/ProductName, FOCUS ServiceName)."),
    Column("usage_type", pl.String, False, "lineItem/UsageType (e.g. EUW1-BoxUsage:m5.large)."),
    Column("operation", pl.String, False, "lineItem/Operation (e.g. RunInstances)."),
    Column("region", pl.String, False, "Region code (eu-west-1); null for global services."),
    Column("availability_zone", pl.String, False, "Availability zone."),
    Column("resource_id", pl.String, False, "Resource id or ARN."),
    Column("instance_type", pl.String, False, "EC2/RDS instance type, when present."),
    Column("product_family", pl.String, False, "product/productFamily (Compute Instance, Storage, ...)."),
    Column("pricing_term", pl.String, False, "OnDemand, Reserved, Spot, ... (pricing/term or usage type hints)."),
    Column("usage_amount", pl.Float64, True, "Usage quantity in pricing_unit (0 when the source has none)."),
    Column("pricing_unit", pl.String, False, "Unit of usage_amount (Hrs, GB-Mo, ...)."),
    Column("currency", pl.String, True, "ISO currency code; one currency per tenant and billing period."),
    Column("unblended_cost", pl.Float64, True, "lineItem/UnblendedCost (FOCUS BilledCost)."),
    Column(
        "amortized_cost", pl.Float64, True,
        "Cost with commitments amortized, by the Cloud Intelligence Dashboards rule (FOCUS EffectiveCost).",
    ),
    Column(
        "public_on_demand_cost", pl.Float64, True,
        "pricing/publicOnDemandCost (FOCUS ListCost); 0 on SavingsPlanNegation rows so sums never double count.",
    ),
    Column("savings_plan_arn", pl.String, False, "Savings Plan that covered or billed this row."),
    Column("savings_plan_effective_cost", pl.Float64, False, "savingsPlan/SavingsPlanEffectiveCost."),
    Column("savings_plan_total_commitment", pl.Float64, False, "savingsPlan/TotalCommitmentToDate (recurring fee rows)."),
    Column("savings_plan_used_commitment", pl.Float64, False, "savingsPlan/UsedCommitment (recurring fee rows)."),
    Column("reservation_arn", pl.String, False, "Reserved Instance that covered or billed this row."),
    Column("invoice_id", pl.String, False, "bill/InvoiceId: blank until the month is final."),
    Column("tags", pl.String, False, 'User and AWS tags as a JSON object, keys as in legacy CUR ("user:team").'),
    Column("cost_categories", pl.String, False, "Cost categories as a JSON object."),
    Column("source_format", pl.String, True, "cur1 | cur2 | focus | cost_explorer."),
    Column("delivery_id", pl.String, True, "Assembly id / export execution id / Cost Explorer pull id of the source."),
)

CANONICAL_SCHEMA: dict[str, pl.DataType] = {c.name: c.dtype for c in CANONICAL_COLUMNS}
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c.name for c in CANONICAL_COLUMNS if c.required)

LINE_ITEM_TYPES: dict[str, str] = {
    "Usage": "usage",
    "DiscountedUsage": "reservation",
    "SavingsPlanCoveredUsage": "savings_plan",
    "SavingsPlanNegation": "savings_plan",
    "SavingsPlanRecurringFee": "savings_plan",
    "SavingsPlanUpfrontFee": "savings_plan",
    "RIFee": "reservation",
    "Fee": "fee",
    "Credit": "credit",
    "Refund": "refund",
    "Tax": "tax",
    "BundledDiscount": "discount",
    "EdpDiscount": "discount",
    "PrivateRateDiscount": "discount",
    "RiVolumeDiscount": "discount",
    "DistributorDiscount": "discount",
    "SppDiscount": "discount",
    "FlatRateSubscription": "fee",
}

# Services whose on-demand usage a Compute Savings Plan can cover (Spot excluded by pricing_term).
SP_ELIGIBLE_SERVICES = ("AmazonEC2", "AmazonECS", "AmazonEKS", "AWSLambda")

LAKE_TABLE = "cur_line_items"


def schema_markdown() -> str:
    lines = [
        "# Canonical line-item schema",
        "",
        "Generated from `blocks_pipelines/ingestion/schema.py` by `blocks schema --markdown`; do not edit by hand.",
        "",
        "Lake layout: `{lake}/cur_line_items/tenant_id={tenant}/billing_period={YYYY-MM}/version={v}/"
        "usage_date={YYYY-MM-DD}/data.parquet`, each month the version its `_current.json` pointer names "
        "(docs/lake_versions.md).",
        "",
        "| column | type | required | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for c in CANONICAL_COLUMNS:
        lines.append(f"| `{c.name}` | {c.dtype} | {'yes' if c.required else ''} | {c.doc} |")
    lines += ["", "## line_item_type -> charge_class", "", "| line_item_type | charge_class |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in LINE_ITEM_TYPES.items()]
    return "\n".join(lines) + "\n"
