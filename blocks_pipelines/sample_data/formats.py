"""Column layouts of the four output formats, built from the internal line-item frame.

- cur1: legacy CUR `category/Name` columns (names as in real exports; SavingsPlanARN as in the AWS data dictionary,
  some exports spell it SavingsPlanArn). CSV timestamps `2026-11-01T00:00:00Z`.
- cur1 Parquet: the same columns renamed the way the legacy Parquet / Athena CUR does
  (`lineItem/UsageStartDate` -> `line_item_usage_start_date`, `savingsPlan/SavingsPlanARN` ->
  `savings_plan_savings_plan_a_r_n`, `resourceTags/user:cost-center` -> `resource_tags_user_cost_center`).
- cur2: CUR 2.0 (Data Exports COST_AND_USAGE_REPORT) columns; `product`, `resource_tags` (keys `user_team`...) and
  `cost_category` are MAP<string,string>; plus `billing_period` 'YYYY-MM'.
- focus: FOCUS 1.0 with AWS columns (FOCUS_1_0_AWS): 43 FOCUS columns + x_CostCategories, x_Discounts,
  x_Operation, x_ServiceCode, x_UsageType. SavingsPlanNegation rows are folded into their covered usage
  (BilledCost 0), so sum(BilledCost) = invoice and sum(EffectiveCost) = amortized cost. Refunds are
  ChargeCategory Adjustment with ChargeClass Correction. Tags keys keep the CUR spelling (`user:team`).
Parquet timestamps are UTC-adjusted milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from blocks_pipelines.sample_data import catalog as cat
from blocks_pipelines.sample_data.inventory import COST_CATEGORY_KEYS, TAG_KEYS, cost_category_column, tag_column

FORMATS = ("cur1-csv", "cur1-parquet", "cur2", "focus")
CSV_TS = "%Y-%m-%dT%H:%M:%SZ"
PARQUET_TS = pl.Datetime("ms", "UTC")


@dataclass(frozen=True)
class Col:
    name: str
    expr: pl.Expr
    kind: str  # str | float | ts | map


def _s(name: str, expr: pl.Expr | str | None) -> Col:
    if expr is None:
        e = pl.lit(None, dtype=pl.String)
    elif isinstance(expr, str):
        e = pl.col(expr)
    else:
        e = expr
    return Col(name, e.cast(pl.String), "str")


def _f(name: str, expr: pl.Expr | str | None) -> Col:
    e = pl.lit(None, dtype=pl.Float64) if expr is None else (pl.col(expr) if isinstance(expr, str) else expr)
    return Col(name, e.cast(pl.Float64), "float")


def _t(name: str, col: str) -> Col:
    return Col(name, pl.col(col), "ts")


def _iso(col: str) -> pl.Expr:
    return pl.col(col).dt.strftime(CSV_TS)


TIME_INTERVAL = pl.concat_str([_iso("usage_start"), pl.lit("/"), _iso("usage_end")])
IS_EC2_INSTANCE = pl.col("usage_type").str.contains("BoxUsage|SpotUsage")
COVERED = pl.col("line_item_type") == "SavingsPlanCoveredUsage"
FEE = pl.col("line_item_type") == "SavingsPlanRecurringFee"
BLANK_ON_FEES = ("SavingsPlanRecurringFee", "RIFee", "Tax", "Credit", "Refund")


def _cur1_columns() -> list[Col]:
    cols = [
        _s("identity/LineItemId", "line_item_id"),
        _s("identity/TimeInterval", TIME_INTERVAL),
        _s("bill/InvoiceId", "invoice_id"),
        _s("bill/BillingEntity", pl.lit("AWS")),
        _s("bill/BillType", pl.lit("Anniversary")),
        _s("bill/PayerAccountId", "payer_account_id"),
        _t("bill/BillingPeriodStartDate", "billing_period_start"),
        _t("bill/BillingPeriodEndDate", "billing_period_end"),
        _s("lineItem/UsageAccountId", "usage_account_id"),
        _s("lineItem/LineItemType", "line_item_type"),
        _t("lineItem/UsageStartDate", "usage_start"),
        _t("lineItem/UsageEndDate", "usage_end"),
        _s("lineItem/ProductCode", "product_code"),
        _s("lineItem/UsageType", "usage_type"),
        _s("lineItem/Operation", "operation"),
        _s("lineItem/AvailabilityZone", "availability_zone"),
        _s("lineItem/ResourceId", "resource_id"),
        _f("lineItem/UsageAmount", "usage_amount"),
        _f("lineItem/NormalizationFactor", "normalization_factor"),
        _f("lineItem/NormalizedUsageAmount", "normalized_usage_amount"),
        _s("lineItem/CurrencyCode", "currency"),
        _f("lineItem/UnblendedRate", "unblended_rate"),
        _f("lineItem/UnblendedCost", "unblended_cost"),
        _f("lineItem/BlendedRate", "unblended_rate"),
        _f("lineItem/BlendedCost", "unblended_cost"),
        _s("lineItem/LineItemDescription", "description"),
        _s("lineItem/TaxType", "tax_type"),
        _s("lineItem/LegalEntity", pl.lit(cat.LEGAL_ENTITY)),
        _s("product/ProductName", "product_name"),
        _s("product/currentGeneration", "current_generation"),
        _s("product/instanceFamily", "instance_family"),
        _s("product/instanceType", "instance_type"),
        _s("product/location", "location"),
        _s("product/locationType", pl.when(pl.col("location").is_not_null()).then(pl.lit("AWS Region"))),
        _s("product/memory", "memory"),
        _s("product/operatingSystem", pl.when(pl.col("instance_type").is_not_null()).then(pl.lit("Linux"))),
        _s("product/operation", "operation"),
        _s("product/productFamily", "product_family"),
        _s("product/region", "region"),
        _s("product/servicecode", "product_code"),
        _s("product/servicename", "product_name"),
        _s("product/sku", "sku"),
        _s("product/tenancy", pl.when(IS_EC2_INSTANCE).then(pl.lit("Shared"))),
        _s("product/usagetype", "usage_type"),
        _s("product/vcpu", "vcpu"),
        _s("product/volumeApiName", "volume_api_name"),
        _s("pricing/LeaseContractLength", pl.when(pl.col("reservation_arn").is_not_null()).then(pl.lit("1yr"))),
        _s("pricing/RateCode", pl.concat_str([pl.col("sku"), pl.lit(".JRTCKXETXF.6YS6EN2CT7")])),
        _s("pricing/currency", pl.lit(cat.CURRENCY)),
        _f("pricing/publicOnDemandCost", "public_od_cost"),
        _f(
            "pricing/publicOnDemandRate",
            pl.when(pl.col("line_item_type").is_in(BLANK_ON_FEES).not_()).then(pl.col("public_rate")),
        ),
        _s("pricing/term", "pricing_term"),
        _s("pricing/unit", "pricing_unit"),
        _f("reservation/AmortizedUpfrontCostForUsage", "ri_amortized_upfront_cost_for_usage"),
        _f("reservation/AmortizedUpfrontFeeForBillingPeriod", "ri_amortized_upfront_fee_for_bp"),
        _f("reservation/EffectiveCost", "ri_effective_cost"),
        _s("reservation/EndTime", "ri_end_time"),
        _s("reservation/NumberOfReservations", "ri_number_of_reservations"),
        _f("reservation/RecurringFeeForUsage", "ri_recurring_fee_for_usage"),
        _s("reservation/ReservationARN", "reservation_arn"),
        _s("reservation/StartTime", "ri_start_time"),
        _s("reservation/TotalReservedUnits", "ri_total_reserved_units"),
        _f("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod", "ri_unused_amortized_upfront_fee"),
        _f("reservation/UnusedQuantity", "ri_unused_quantity"),
        _f("reservation/UnusedRecurringFee", "ri_unused_recurring_fee"),
        _f("savingsPlan/AmortizedUpfrontCommitmentForBillingPeriod", pl.when(FEE).then(0.0)),
        _s("savingsPlan/EndTime", "sp_end_time"),
        _s("savingsPlan/OfferingType", "sp_offering_type"),
        _s("savingsPlan/PaymentOption", "sp_payment_option"),
        _s("savingsPlan/PurchaseTerm", "sp_purchase_term"),
        _f("savingsPlan/RecurringCommitmentForBillingPeriod", "sp_recurring_commitment_for_bp"),
        _s("savingsPlan/SavingsPlanARN", "savings_plan_arn"),
        _f("savingsPlan/SavingsPlanEffectiveCost", "sp_effective_cost"),
        _f("savingsPlan/SavingsPlanRate", "sp_rate"),
        _s("savingsPlan/StartTime", "sp_start_time"),
        _f("savingsPlan/TotalCommitmentToDate", "sp_total_commitment"),
        _f("savingsPlan/UsedCommitment", "sp_used_commitment"),
    ]
    cols += [_s(f"resourceTags/{k}", tag_column(k)) for k in TAG_KEYS]
    cols += [_s(f"costCategory/{k}", cost_category_column(k)) for k in COST_CATEGORY_KEYS]
    return cols


CUR1_COLUMNS: list[Col] = _cur1_columns()


def legacy_parquet_name(name: str) -> str:
    """`lineItem/UsageStartDate` -> `line_item_usage_start_date`, the legacy Parquet/Athena CUR spelling."""
    snake = re.sub(r"([A-Z])", r"_\1", name).lower()
    snake = re.sub(r"[^a-z0-9]+", "_", snake)
    return re.sub(r"_+", "_", snake).strip("_")


def cur1_frame(li: pl.DataFrame, *, for_csv: bool) -> pl.DataFrame:
    exprs = []
    for c in CUR1_COLUMNS:
        if c.kind == "ts":
            e = c.expr.dt.strftime(CSV_TS) if for_csv else c.expr.cast(PARQUET_TS)
        else:
            e = c.expr
        exprs.append(e.alias(c.name if for_csv else legacy_parquet_name(c.name)))
    return li.select(exprs)


# --- CUR 2.0 -------------------------------------------------------------------------------------------------
PRODUCT_MAP_KEYS: dict[str, pl.Expr] = {
    "product_name": pl.col("product_name"),
    "region": pl.col("region"),
    "servicename": pl.col("product_name"),
    "current_generation": pl.col("current_generation"),
    "memory": pl.col("memory"),
    "vcpu": pl.col("vcpu"),
    "operating_system": pl.when(pl.col("instance_type").is_not_null()).then(pl.lit("Linux")),
    "tenancy": pl.when(IS_EC2_INSTANCE).then(pl.lit("Shared")),
    "volume_api_name": pl.col("volume_api_name"),
}


def cur2_tag_key(key: str) -> str:
    return legacy_parquet_name(key)  # user:cost-center -> user_cost_center


def _cur2_columns() -> list[Col]:
    # rates are strings in CUR 2.0 (as in the Data Exports schema); maps are filled by the writer
    m = lambda name: Col(name, pl.lit(None), "map")  # noqa: E731  (filled by the writer)
    return [
        _s("bill_bill_type", pl.lit("Anniversary")),
        _s("bill_billing_entity", pl.lit("AWS")),
        _t("bill_billing_period_end_date", "billing_period_end"),
        _t("bill_billing_period_start_date", "billing_period_start"),
        _s("bill_invoice_id", "invoice_id"),
        _s("bill_invoicing_entity", pl.lit(cat.LEGAL_ENTITY)),
        _s("bill_payer_account_id", "payer_account_id"),
        _s("bill_payer_account_name", "payer_account_name"),
        _s("capacity_reservation_capacity_reservation_arn", None),
        _s("capacity_reservation_capacity_reservation_status", None),
        _s("capacity_reservation_capacity_reservation_type", None),
        m("cost_category"),
        m("discount"),
        _f("discount_bundled_discount", None),
        _f("discount_total_discount", None),
        _s("identity_line_item_id", "line_item_id"),
        _s("identity_time_interval", TIME_INTERVAL),
        _s("line_item_availability_zone", "availability_zone"),
        _f("line_item_blended_cost", "unblended_cost"),
        _s("line_item_blended_rate", "unblended_rate"),
        _s("line_item_currency_code", "currency"),
        _s("line_item_legal_entity", pl.lit(cat.LEGAL_ENTITY)),
        _s("line_item_line_item_description", "description"),
        _s("line_item_line_item_type", "line_item_type"),
        _f("line_item_net_unblended_cost", None),
        _s("line_item_net_unblended_rate", None),
        _f("line_item_normalization_factor", "normalization_factor"),
        _f("line_item_normalized_usage_amount", "normalized_usage_amount"),
        _s("line_item_operation", "operation"),
        _s("line_item_product_code", "product_code"),
        _s("line_item_resource_id", "resource_id"),
        _s("line_item_tax_type", "tax_type"),
        _f("line_item_unblended_cost", "unblended_cost"),
        _s("line_item_unblended_rate", "unblended_rate"),
        _s("line_item_usage_account_id", "usage_account_id"),
        _s("line_item_usage_account_name", "usage_account_name"),
        _f("line_item_usage_amount", "usage_amount"),
        _t("line_item_usage_end_date", "usage_end"),
        _t("line_item_usage_start_date", "usage_start"),
        _s("line_item_usage_type", "usage_type"),
        _s("pricing_currency", pl.lit(cat.CURRENCY)),
        _s("pricing_lease_contract_length", pl.when(pl.col("reservation_arn").is_not_null()).then(pl.lit("1yr"))),
        _s("pricing_offering_class", pl.when(pl.col("reservation_arn").is_not_null()).then(pl.lit("standard"))),
        _f("pricing_public_on_demand_cost", "public_od_cost"),
        _s(
            "pricing_public_on_demand_rate",
            pl.when(pl.col("line_item_type").is_in(BLANK_ON_FEES).not_()).then(pl.col("public_rate")),
        ),
        _s("pricing_purchase_option", pl.when(pl.col("reservation_arn").is_not_null()).then(pl.lit("No Upfront"))),
        _s("pricing_rate_code", pl.concat_str([pl.col("sku"), pl.lit(".JRTCKXETXF.6YS6EN2CT7")])),
        _s("pricing_rate_id", None),
        _s("pricing_term", "pricing_term"),
        _s("pricing_unit", "pricing_unit"),
        m("product"),
        _s("product_comment", None),
        _s("product_fee_code", None),
        _s("product_fee_description", None),
        _s("product_from_location", None),
        _s("product_from_location_type", None),
        _s("product_from_region_code", None),
        _s("product_instance_family", "instance_family"),
        _s("product_instance_type", "instance_type"),
        _s("product_instancesku", None),
        _s("product_location", "location"),
        _s("product_location_type", pl.when(pl.col("location").is_not_null()).then(pl.lit("AWS Region"))),
        _s("product_operation", "operation"),
        _s("product_pricing_unit", "pricing_unit"),
        _s("product_product_family", "product_family"),
        _s("product_region_code", "region"),
        _s("product_servicecode", "product_code"),
        _s("product_sku", "sku"),
        _s("product_to_location", None),
        _s("product_to_location_type", None),
        _s("product_to_region_code", None),
        _s("product_usagetype", "usage_type"),
        _f("reservation_amortized_upfront_cost_for_usage", "ri_amortized_upfront_cost_for_usage"),
        _f("reservation_amortized_upfront_fee_for_billing_period", "ri_amortized_upfront_fee_for_bp"),
        _s("reservation_availability_zone", None),
        _f("reservation_effective_cost", "ri_effective_cost"),
        _s("reservation_end_time", "ri_end_time"),
        _s("reservation_modification_status", None),
        _f("reservation_net_amortized_upfront_cost_for_usage", None),
        _f("reservation_net_amortized_upfront_fee_for_billing_period", None),
        _f("reservation_net_effective_cost", None),
        _f("reservation_net_recurring_fee_for_usage", None),
        _f("reservation_net_unused_amortized_upfront_fee_for_billing_period", None),
        _f("reservation_net_unused_recurring_fee", None),
        _f("reservation_net_upfront_value", None),
        _s("reservation_normalized_units_per_reservation", None),
        _s("reservation_number_of_reservations", "ri_number_of_reservations"),
        _f("reservation_recurring_fee_for_usage", "ri_recurring_fee_for_usage"),
        _s("reservation_reservation_a_r_n", "reservation_arn"),
        _s("reservation_start_time", "ri_start_time"),
        _s("reservation_subscription_id", None),
        _s("reservation_total_reserved_normalized_units", None),
        _s("reservation_total_reserved_units", "ri_total_reserved_units"),
        _s("reservation_units_per_reservation", None),
        _f("reservation_unused_amortized_upfront_fee_for_billing_period", "ri_unused_amortized_upfront_fee"),
        _f("reservation_unused_normalized_unit_quantity", None),
        _f("reservation_unused_quantity", "ri_unused_quantity"),
        _f("reservation_unused_recurring_fee", "ri_unused_recurring_fee"),
        _f("reservation_upfront_value", None),
        m("resource_tags"),
        _f("savings_plan_amortized_upfront_commitment_for_billing_period", pl.when(FEE).then(0.0)),
        _s("savings_plan_end_time", "sp_end_time"),
        _s("savings_plan_instance_type_family", None),
        _f("savings_plan_net_amortized_upfront_commitment_for_billing_period", None),
        _f("savings_plan_net_recurring_commitment_for_billing_period", None),
        _f("savings_plan_net_savings_plan_effective_cost", None),
        _s("savings_plan_offering_type", "sp_offering_type"),
        _s("savings_plan_payment_option", "sp_payment_option"),
        _s("savings_plan_purchase_term", "sp_purchase_term"),
        _f("savings_plan_recurring_commitment_for_billing_period", "sp_recurring_commitment_for_bp"),
        _s("savings_plan_region", None),
        _s("savings_plan_savings_plan_a_r_n", "savings_plan_arn"),
        _f("savings_plan_savings_plan_effective_cost", "sp_effective_cost"),
        _f("savings_plan_savings_plan_rate", "sp_rate"),
        _s("savings_plan_start_time", "sp_start_time"),
        _f("savings_plan_total_commitment_to_date", "sp_total_commitment"),
        _f("savings_plan_used_commitment", "sp_used_commitment"),
        _f("split_line_item_actual_usage", None),
        _f("split_line_item_net_split_cost", None),
        _f("split_line_item_net_unused_cost", None),
        _s("split_line_item_parent_resource_id", None),
        _f("split_line_item_public_on_demand_split_cost", None),
        _f("split_line_item_public_on_demand_unused_cost", None),
        _f("split_line_item_reserved_usage", None),
        _f("split_line_item_split_cost", None),
        _f("split_line_item_split_usage", None),
        _f("split_line_item_split_usage_ratio", None),
        _f("split_line_item_unused_cost", None),
        _s("billing_period", "billing_period"),
    ]


CUR2_COLUMNS: list[Col] = _cur2_columns()

CUR2_MAPS: dict[str, dict[str, pl.Expr]] = {
    "product": PRODUCT_MAP_KEYS,
    "resource_tags": {cur2_tag_key(k): pl.col(tag_column(k)) for k in TAG_KEYS},
    "cost_category": {k: pl.col(cost_category_column(k)) for k in COST_CATEGORY_KEYS},
    "discount": {},
}


# --- FOCUS 1.0 with AWS columns ------------------------------------------------------------------------------
_LIT = pl.col("line_item_type")
_CHARGE_CATEGORY = (
    pl.when(_LIT.is_in(["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"]))
    .then(pl.lit("Usage"))
    .when(_LIT.is_in(["SavingsPlanRecurringFee", "RIFee", "SavingsPlanUpfrontFee", "Fee"]))
    .then(pl.lit("Purchase"))
    .when(_LIT == "Tax")
    .then(pl.lit("Tax"))
    .when(_LIT == "Credit")
    .then(pl.lit("Credit"))
    .otherwise(pl.lit("Adjustment"))
)
_COMMITMENT_ID = pl.coalesce(pl.col("savings_plan_arn"), pl.col("reservation_arn"))
_CID_AMORTIZED = (  # the Cloud Intelligence Dashboards rule, see REFERENCE.md
    pl.when(COVERED)
    .then(pl.col("sp_effective_cost"))
    .when(FEE)
    .then(pl.col("sp_total_commitment") - pl.col("sp_used_commitment"))
    .when(_LIT.is_in(["SavingsPlanNegation", "SavingsPlanUpfrontFee"]))
    .then(0.0)
    .when(_LIT == "DiscountedUsage")
    .then(pl.col("ri_effective_cost"))
    .when(_LIT == "RIFee")
    .then(pl.col("ri_unused_amortized_upfront_fee") + pl.col("ri_unused_recurring_fee"))
    .otherwise(pl.col("unblended_cost"))
)
_IS_USAGE = _LIT.is_in(["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"])


def _focus_columns() -> list[Col]:
    m = lambda name: Col(name, pl.lit(None), "map")  # noqa: E731  (filled by the writer)
    return [
        _s("AvailabilityZone", "availability_zone"),
        _f("BilledCost", pl.when(COVERED).then(0.0).otherwise(pl.col("unblended_cost"))),
        _s("BillingAccountId", "payer_account_id"),
        _s("BillingAccountName", "payer_account_name"),
        _s("BillingCurrency", "currency"),
        _t("BillingPeriodEnd", "billing_period_end"),
        _t("BillingPeriodStart", "billing_period_start"),
        _s("ChargeCategory", _CHARGE_CATEGORY),
        _s("ChargeClass", pl.when(_LIT == "Refund").then(pl.lit("Correction"))),
        _s("ChargeDescription", "description"),
        _s(
            "ChargeFrequency",
            pl.when(_IS_USAGE)
            .then(pl.lit("Usage-Based"))
            .when(_LIT.is_in(["SavingsPlanRecurringFee", "RIFee"]))
            .then(pl.lit("Recurring"))
            .otherwise(pl.lit("One-Time")),
        ),
        _t("ChargePeriodEnd", "usage_end"),
        _t("ChargePeriodStart", "usage_start"),
        _s(
            "CommitmentDiscountCategory",
            pl.when(pl.col("savings_plan_arn").is_not_null())
            .then(pl.lit("Spend"))
            .when(pl.col("reservation_arn").is_not_null())
            .then(pl.lit("Usage")),
        ),
        _s("CommitmentDiscountId", _COMMITMENT_ID),
        _s("CommitmentDiscountName", None),
        _s("CommitmentDiscountStatus", pl.when(_COMMITMENT_ID.is_not_null() & _IS_USAGE).then(pl.lit("Used"))),
        _s(
            "CommitmentDiscountType",
            pl.when(pl.col("savings_plan_arn").is_not_null())
            .then(pl.lit("Savings Plan"))
            .when(pl.col("reservation_arn").is_not_null())
            .then(pl.lit("Reserved Instance")),
        ),
        _f("ConsumedQuantity", pl.when(_IS_USAGE).then(pl.col("usage_amount"))),
        _s("ConsumedUnit", pl.when(_IS_USAGE).then(pl.col("pricing_unit"))),
        _f("ContractedCost", pl.when(_IS_USAGE).then(pl.col("public_od_cost")).otherwise(pl.col("unblended_cost"))),
        _f("ContractedUnitPrice", pl.when(_IS_USAGE).then(pl.col("public_rate"))),
        _f("EffectiveCost", _CID_AMORTIZED),
        _s("InvoiceIssuerName", pl.lit("AWS")),
        _f("ListCost", pl.when(_IS_USAGE).then(pl.col("public_od_cost")).otherwise(pl.col("unblended_cost"))),
        _f("ListUnitPrice", pl.when(_IS_USAGE).then(pl.col("public_rate"))),
        _s(
            "PricingCategory",
            pl.when(pl.col("pricing_term") == "Spot")
            .then(pl.lit("Dynamic"))
            .when(_LIT.is_in(["DiscountedUsage", "SavingsPlanCoveredUsage"]))
            .then(pl.lit("Committed"))
            .when(_LIT == "Usage")
            .then(pl.lit("Standard")),
        ),
        _f("PricingQuantity", pl.when(_IS_USAGE | FEE).then(pl.col("usage_amount"))),
        _s("PricingUnit", "pricing_unit"),
        _s("ProviderName", pl.lit("AWS")),
        _s("PublisherName", pl.lit("AWS")),
        _s("RegionId", "region"),
        _s("RegionName", "location"),
        _s("ResourceId", "resource_id"),
        _s("ResourceName", None),
        _s("ResourceType", None),
        _s("ServiceCategory", pl.col("product_code").replace_strict(cat.SERVICE_CATEGORIES, default="Other")),
        _s("ServiceName", "product_name"),
        _s("SkuId", "sku"),
        _s("SkuPriceId", pl.concat_str([pl.col("sku"), pl.lit(".JRTCKXETXF")])),
        _s("SubAccountId", "usage_account_id"),
        _s("SubAccountName", "usage_account_name"),
        m("Tags"),
        m("x_CostCategories"),
        m("x_Discounts"),
        _s("x_Operation", "operation"),
        _s("x_ServiceCode", "product_code"),
        _s("x_UsageType", "usage_type"),
    ]


FOCUS_COLUMNS: list[Col] = _focus_columns()

FOCUS_MAPS: dict[str, dict[str, pl.Expr]] = {
    "Tags": {k: pl.col(tag_column(k)) for k in TAG_KEYS},
    "x_CostCategories": {k: pl.col(cost_category_column(k)) for k in COST_CATEGORY_KEYS},
    "x_Discounts": {},
}


def focus_rows(li: pl.DataFrame) -> pl.DataFrame:
    """FOCUS has no negation rows: covered usage is billed at 0 and the commitment fee carries the cost."""
    return li.filter(pl.col("line_item_type") != "SavingsPlanNegation")
