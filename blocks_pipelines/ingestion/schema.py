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
    Column(
        "provider",
        pl.String,
        True,
        "Whose bill the row is on, as the file names it: AWS, Microsoft, Google Cloud, Oracle... (FOCUS ProviderName, "
        "or ServiceProviderName where 1.3 files drop the deprecated column; CUR is AWS).",
    ),
    Column(
        "service_provider",
        pl.String,
        False,
        "FOCUS 1.3 ServiceProviderName (the seller, also in marketplaces); ProviderName before 1.3.",
    ),
    Column("host_provider", pl.String, False, "FOCUS 1.3 HostProviderName: whose infrastructure runs the service."),
    Column(
        "invoice_issuer", pl.String, False, "Who issues the invoice (FOCUS InvoiceIssuerName, bill/InvoicingEntity)."
    ),
    Column("billing_account_type", pl.String, False, "FOCUS 1.2 BillingAccountType (provider label of the account)."),
    Column("sub_account_type", pl.String, False, "FOCUS 1.2 SubAccountType (AWS account, subscription, project...)."),
    Column("billing_period", pl.String, True, "Billing month, YYYY-MM."),
    Column("usage_start", UTC_HOUR, True, "Start of the usage hour, UTC (truncated to the hour)."),
    Column("usage_end", UTC_HOUR, True, "End of the usage interval, UTC."),
    Column("usage_date", pl.Date, True, "UTC date of usage_start; the lake's partition column."),
    Column("payer_account_id", pl.String, True, "Payer (management / billing) account."),
    Column("usage_account_id", pl.String, True, "Linked account that used the resource (sub account in FOCUS)."),
    Column("line_item_type", pl.String, True, "CUR line item type (Usage, SavingsPlanCoveredUsage, Tax, ...)."),
    Column(
        "charge_class",
        pl.String,
        True,
        "usage | savings_plan | reservation | fee | credit | refund | tax | discount: "
        "a coarse class of line_item_type.",
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
    Column(
        "pricing_currency",
        pl.String,
        False,
        "Currency prices are set in, when it differs from the billing currency (FOCUS 1.2, pricing/currency).",
    ),
    Column("pricing_currency_effective_cost", pl.Float64, False, "FOCUS 1.2 PricingCurrencyEffectiveCost."),
    Column("pricing_currency_list_unit_price", pl.Float64, False, "FOCUS 1.2 PricingCurrencyListUnitPrice."),
    Column(
        "pricing_currency_contracted_unit_price", pl.Float64, False, "FOCUS 1.2 PricingCurrencyContractedUnitPrice."
    ),
    Column("unblended_cost", pl.Float64, True, "lineItem/UnblendedCost (FOCUS BilledCost)."),
    Column(
        "amortized_cost",
        pl.Float64,
        True,
        "Cost with commitments amortized, by the Cloud Intelligence Dashboards rule (FOCUS EffectiveCost).",
    ),
    Column(
        "public_on_demand_cost",
        pl.Float64,
        True,
        "pricing/publicOnDemandCost (FOCUS ListCost); 0 on SavingsPlanNegation rows so sums never double count.",
    ),
    Column("savings_plan_arn", pl.String, False, "Savings Plan that covered or billed this row."),
    Column("savings_plan_effective_cost", pl.Float64, False, "savingsPlan/SavingsPlanEffectiveCost."),
    Column(
        "savings_plan_total_commitment", pl.Float64, False, "savingsPlan/TotalCommitmentToDate (recurring fee rows)."
    ),
    Column("savings_plan_used_commitment", pl.Float64, False, "savingsPlan/UsedCommitment (recurring fee rows)."),
    Column("reservation_arn", pl.String, False, "Reserved Instance that covered or billed this row."),
    Column(
        "invoice_id",
        pl.String,
        False,
        "bill/InvoiceId (blank until the month is final), FOCUS 1.2 InvoiceId; lake sums per id equal the source.",
    ),
    Column("contract_applied", pl.String, False, "FOCUS 1.3 ContractApplied (JSON): contract commitments applied."),
    Column("allocated_method_id", pl.String, False, "FOCUS 1.3 AllocatedMethodId (provider split cost allocation)."),
    Column("allocated_method_details", pl.String, False, "FOCUS 1.3 AllocatedMethodDetails (JSON)."),
    Column("allocated_resource_id", pl.String, False, "FOCUS 1.3 AllocatedResourceId: the resource a split goes to."),
    Column("allocated_resource_name", pl.String, False, "FOCUS 1.3 AllocatedResourceName."),
    Column("allocated_tags", pl.String, False, "FOCUS 1.3 AllocatedTags as a JSON object."),
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

# Where each canonical column comes from, per source format (the code is ingestion/formats.py; a test reads a file
# of each format through it and checks every single-column cell). `a > b`: a, else b; `-`: no source (null or the
# stated constant); several FOCUS versions are listed where a column was renamed or added.
SOURCE_FORMATS = ("cur1", "cur2", "focus")
SOURCE_MAPPING: dict[str, tuple[str, str, str]] = {
    "provider": ("AWS", "AWS", "ProviderName > ServiceProviderName (1.3) > AWS"),
    "service_provider": (
        "lineItem/LegalEntity on AWS Marketplace rows > AWS",
        "line_item_legal_entity on AWS Marketplace rows > AWS",
        "ServiceProviderName (1.3) > ProviderName",
    ),
    "host_provider": ("AWS", "AWS", "HostProviderName (1.3)"),
    "invoice_issuer": ("bill/InvoicingEntity", "bill_invoicing_entity", "InvoiceIssuerName"),
    "billing_account_type": ("-", "-", "BillingAccountType (1.2)"),
    "sub_account_type": ("-", "-", "SubAccountType (1.2)"),
    "billing_period": (
        "bill/BillingPeriodStartDate > manifest",
        "billing_period > bill_billing_period_start_date",
        "BillingPeriodStart > manifest",
    ),
    "usage_start": (
        "lineItem/UsageStartDate > identity/TimeInterval",
        "line_item_usage_start_date > identity_time_interval",
        "ChargePeriodStart",
    ),
    "usage_end": (
        "lineItem/UsageEndDate > identity/TimeInterval > start + 1 h",
        "line_item_usage_end_date > identity_time_interval > start + 1 h",
        "ChargePeriodEnd > start + 1 h",
    ),
    "payer_account_id": ("bill/PayerAccountId", "bill_payer_account_id", "BillingAccountId"),
    "usage_account_id": ("lineItem/UsageAccountId", "line_item_usage_account_id", "SubAccountId > BillingAccountId"),
    "line_item_type": (
        "lineItem/LineItemType",
        "line_item_line_item_type",
        "ChargeCategory + CommitmentDiscountType/Status",
    ),
    "service": (
        "lineItem/ProductCode > product/servicecode",
        "line_item_product_code > product_servicecode",
        "x_ServiceCode > ServiceName",
    ),
    "service_name": ("product/ProductName", "product_product_name > product['product_name']", "ServiceName"),
    "usage_type": ("lineItem/UsageType", "line_item_usage_type", "x_UsageType (1.0) > SkuMeter (1.1+)"),
    "operation": ("lineItem/Operation", "line_item_operation", "x_Operation"),
    "region": (
        "product/regionCode > product/region",
        "product_region_code > product['region_code', 'region']",
        "RegionId > Region (1.0-preview)",
    ),
    "availability_zone": ("lineItem/AvailabilityZone", "line_item_availability_zone", "AvailabilityZone"),
    "resource_id": ("lineItem/ResourceId", "line_item_resource_id", "ResourceId"),
    "instance_type": (
        "product/instanceType",
        "product_instance_type > product['instance_type']",
        "x_InstanceType > SkuPriceDetails.InstanceType > x_UsageType suffix",
    ),
    "product_family": (
        "product/productFamily",
        "product_product_family > product['product_family']",
        "ServiceCategory",
    ),
    "pricing_term": ("pricing/term", "pricing_term", "PricingCategory"),
    "usage_amount": (
        "lineItem/UsageAmount > 0",
        "line_item_usage_amount > 0",
        "ConsumedQuantity > PricingQuantity > 0",
    ),
    "pricing_unit": ("pricing/unit", "pricing_unit", "ConsumedUnit > PricingUnit"),
    "currency": ("lineItem/CurrencyCode", "line_item_currency_code", "BillingCurrency"),
    "pricing_currency": ("pricing/currency", "pricing_currency", "PricingCurrency (1.2)"),
    "pricing_currency_effective_cost": ("-", "-", "PricingCurrencyEffectiveCost (1.2)"),
    "pricing_currency_list_unit_price": ("-", "-", "PricingCurrencyListUnitPrice (1.2)"),
    "pricing_currency_contracted_unit_price": ("-", "-", "PricingCurrencyContractedUnitPrice (1.2)"),
    "unblended_cost": ("lineItem/UnblendedCost", "line_item_unblended_cost", "BilledCost"),
    "amortized_cost": (
        "CID rule by lineItem/LineItemType",
        "CID rule by line_item_line_item_type",
        "EffectiveCost > BilledCost",
    ),
    "public_on_demand_cost": (
        "pricing/publicOnDemandCost (0 on SavingsPlanNegation)",
        "pricing_public_on_demand_cost (0 on SavingsPlanNegation)",
        "ListCost > BilledCost",
    ),
    "savings_plan_arn": (
        "savingsPlan/SavingsPlanARN",
        "savings_plan_savings_plan_a_r_n",
        "CommitmentDiscountId when CommitmentDiscountType is a Savings Plan",
    ),
    "savings_plan_effective_cost": (
        "savingsPlan/SavingsPlanEffectiveCost",
        "savings_plan_savings_plan_effective_cost",
        "EffectiveCost when CommitmentDiscountType is a Savings Plan",
    ),
    "savings_plan_total_commitment": (
        "savingsPlan/TotalCommitmentToDate",
        "savings_plan_total_commitment_to_date",
        "-",
    ),
    "savings_plan_used_commitment": ("savingsPlan/UsedCommitment", "savings_plan_used_commitment", "-"),
    "reservation_arn": (
        "reservation/ReservationARN",
        "reservation_reservation_a_r_n",
        "CommitmentDiscountId when CommitmentDiscountType is a reservation",
    ),
    "invoice_id": ("bill/InvoiceId", "bill_invoice_id", "InvoiceId (1.2)"),
    "contract_applied": ("-", "-", "ContractApplied (1.3)"),
    "allocated_method_id": ("-", "-", "AllocatedMethodId (1.3)"),
    "allocated_method_details": ("-", "-", "AllocatedMethodDetails (1.3)"),
    "allocated_resource_id": ("-", "-", "AllocatedResourceId (1.3)"),
    "allocated_resource_name": ("-", "-", "AllocatedResourceName (1.3)"),
    "allocated_tags": ("-", "-", "AllocatedTags (1.3)"),
    "tags": ("resourceTags/*", "resource_tags (map)", "Tags (JSON or map)"),
    "cost_categories": ("costCategory/*", "cost_category (map)", "x_CostCategories (AWS 1.0; in Tags from 1.2)"),
}


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
    lines += [
        "",
        "## Source columns by format",
        "",
        "`a > b`: a, else b. `-`: the format has no such column (null). FOCUS versions in brackets say where a column",
        "was added; every FOCUS version from 1.0 to 1.3 is read by the same mapping. The literal null markers",
        "SQL-based exporters write in CSV (`NULL`, `null`, `\\N`) and `NaN` in numeric columns (CSV or Parquet)",
        "read as null; in a required column they fail the file, naming its row and column.",
        "",
        "| canonical column | legacy CUR (cur1) | CUR 2.0 (cur2) | FOCUS 1.0-1.3 (focus) |",
        "| --- | --- | --- | --- |",
    ]
    derived = {
        "tenant_id": "tenant",
        "usage_date": "date of usage_start",
        "charge_class": "from line_item_type",
        "source_format": "format read",
        "delivery_id": "manifest / export id",
    }
    for c in CANONICAL_COLUMNS:
        cells = SOURCE_MAPPING.get(c.name) or (derived[c.name],) * 3
        lines.append(f"| `{c.name}` | " + " | ".join(f"`{x}`" if x != "-" else "-" for x in cells) + " |")
    lines += ["", "## line_item_type -> charge_class", "", "| line_item_type | charge_class |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in LINE_ITEM_TYPES.items()]
    return "\n".join(lines) + "\n"
