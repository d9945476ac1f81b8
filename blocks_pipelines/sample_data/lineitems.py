"""One billing period of line items, in a format-neutral frame (snake_case internal names).

Pipeline per month, all vectorized: resources x hours -> active rows (demand curves) -> amounts and costs ->
Reserved Instance (DiscountedUsage) -> Savings Plans (SavingsPlanCoveredUsage + SavingsPlanNegation +
SavingsPlanRecurringFee) -> monthly RIFee, Tax, Credit, Refund rows. The format writers only rename and reshape.

Invariants the tests check (and that make the Cloud Intelligence Dashboards amortization rule exact):
- each covered row has a negation row carrying -unblended of it, in the same hour and account;
- per plan and hour, UsedCommitment on the recurring fee row = the sum of SavingsPlanEffectiveCost it covered,
  and TotalCommitmentToDate = the hourly commitment;
- RIFee unblended = used + unused reserved hours x rate, UnusedRecurringFee = unused hours x rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import polars as pl

from blocks_pipelines.sample_data import catalog as cat
from blocks_pipelines.sample_data.anomalies import apply_spikes
from blocks_pipelines.sample_data.commitments import SavingsPlanSpec
from blocks_pipelines.sample_data.demand import HOURS_PER_MONTH, hour_grid, profile_levels
from blocks_pipelines.sample_data.inventory import ALWAYS_ON, HOURLY, SCALED, STORAGE, Inventory
from blocks_pipelines.sample_data.rand import hex_ids, normal, scalar_rng, uniform

TAX_RATE = 0.06


@dataclass(frozen=True)
class Period:
    start: datetime  # first instant of the billing month, UTC
    end: datetime  # first instant of the next month
    data_end: datetime  # usage stops here (end of month, or the generation's end time for the open month)

    @property
    def closed(self) -> bool:
        return self.data_end >= self.end

    @property
    def label(self) -> str:
        return self.start.strftime("%Y-%m")


def month_period(year: int, month: int, end: datetime) -> Period:
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    nxt = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=timezone.utc)
    data_end = min(nxt, end.replace(minute=0, second=0, microsecond=0))
    return Period(start, nxt, data_end)


def usage_rows(inv: Inventory, hours: pl.Series, anchor: datetime, key: tuple) -> pl.DataFrame:
    """Active resource-hours with amounts and on-demand costs (line_item_type Usage), sorted by hour."""
    levels = profile_levels(hours, anchor, *key, "levels")
    res = inv.resources.with_columns(pl.col("profile_idx").cast(pl.UInt32))
    rows = (
        levels.join(res, on="profile_idx", how="inner")
        .filter((pl.col("threshold") == ALWAYS_ON) | (pl.col("threshold") < pl.col("level")))
        .sort(["usage_start", "resource_idx"])
    )
    noise = (1.0 + 0.08 * normal(rows.height, *key, "row-noise")).clip(0.2)
    rows = rows.with_columns(
        pl.when(pl.col("amount_mode") == HOURLY)
        .then(1.0)
        .when(pl.col("amount_mode") == SCALED)
        .then(pl.col("base_amount") * pl.col("level") * noise)
        .when(pl.col("amount_mode") == STORAGE)
        .then(pl.col("base_amount") * pl.col("level") / HOURS_PER_MONTH)
        .otherwise(0.0)
        .alias("usage_amount")
    )
    rows = apply_spikes(rows, inv.resources, anchor)
    return rows.with_columns(
        pl.lit("Usage").alias("line_item_type"),
        (pl.col("usage_amount") * pl.col("rate")).alias("unblended_cost"),
        (pl.col("usage_amount") * pl.col("public_rate")).alias("public_od_cost"),
        pl.col("rate").alias("unblended_rate"),
    ).drop("level")


def eligible_on_demand_per_hour(inv: Inventory, anchor: datetime, key: tuple) -> float:
    """Mean hourly on-demand cost of Compute-SP-eligible usage over the week starting at anchor."""
    rows = usage_rows(inv, hour_grid(anchor, anchor + timedelta(days=7)), anchor, (*key, "reference-week"))
    return float(rows.filter(pl.col("sp_eligible")).get_column("public_od_cost").sum()) / (7 * 24)


def apply_restatement(rows: pl.DataFrame, key: tuple) -> pl.DataFrame:
    """A re-delivered month: metered (non-hourly) usage shifts slightly, as late-arriving usage records do."""
    shift = (1.0 + 0.02 * normal(rows.height, *key, "restatement")).clip(0.9, 1.1)
    scaled = pl.col("amount_mode") == SCALED
    rows = rows.with_columns(
        pl.when(scaled).then(pl.col("usage_amount") * shift).otherwise(pl.col("usage_amount")).alias("usage_amount")
    )
    return rows.with_columns(
        (pl.col("usage_amount") * pl.col("rate")).alias("unblended_cost"),
        (pl.col("usage_amount") * pl.col("public_rate")).alias("public_od_cost"),
    )


def apply_reserved_instance(rows: pl.DataFrame, inv: Inventory) -> pl.DataFrame:
    ri = inv.reserved_instance
    if ri is None:
        return rows
    start = datetime(ri.start.year, ri.start.month, ri.start.day, tzinfo=timezone.utc)
    end = datetime(ri.end.year, ri.end.month, ri.end.day, tzinfo=timezone.utc)
    match = (
        (pl.col("instance_type") == ri.instance_type)
        & (pl.col("region") == ri.region)
        & (pl.col("pricing_unit") == "Hrs")
        & (pl.col("usage_start") >= start)
        & (pl.col("usage_start") < end)
    )
    rank = pl.when(match).then(1).otherwise(0).cum_sum().over("usage_start")
    covered = match & (rank <= ri.count)
    return rows.with_columns(
        pl.when(covered).then(pl.lit("DiscountedUsage")).otherwise(pl.col("line_item_type")).alias("line_item_type"),
        pl.when(covered).then(0.0).otherwise(pl.col("unblended_cost")).alias("unblended_cost"),
        pl.when(covered).then(0.0).otherwise(pl.col("unblended_rate")).alias("unblended_rate"),
        pl.when(covered).then(pl.lit("Reserved")).otherwise(pl.col("pricing_term")).alias("pricing_term"),
        pl.when(covered).then(pl.lit(ri.arn)).alias("reservation_arn"),
        pl.when(covered).then(pl.col("usage_amount") * ri.hourly_rate).alias("ri_effective_cost"),
        pl.when(covered).then(pl.col("usage_amount") * ri.hourly_rate).alias("ri_recurring_fee_for_usage"),
        pl.when(covered).then(0.0).alias("ri_amortized_upfront_cost_for_usage"),
    )


def apply_savings_plans(rows: pl.DataFrame, plans: list[SavingsPlanSpec], key: tuple) -> pl.DataFrame:
    """Each plan in start order covers eligible on-demand rows of an hour until its commitment is used up."""
    rows = rows.with_columns(
        uniform(rows.height, *key, "sp-priority").alias("_prio"),
        pl.lit(None, dtype=pl.String).alias("savings_plan_arn"),
        pl.lit(None, dtype=pl.Float64).alias("sp_effective_cost"),
        pl.lit(None, dtype=pl.Float64).alias("sp_rate"),
    )
    for plan in sorted(plans, key=lambda p: (p.start, p.arn)):
        cand = (
            (pl.col("line_item_type") == "Usage")
            & pl.col("sp_eligible")
            & (pl.col("usage_start") >= plan.start)
            & (pl.col("usage_start") < plan.end)
        )
        eff = pl.when(cand).then(pl.col("public_od_cost") * plan.rate_ratio).otherwise(0.0)
        rows = rows.sort(["usage_start", "_prio"]).with_columns(_cum=eff.cum_sum().over("usage_start"))
        covered = cand & (pl.col("_cum") <= plan.hourly_commitment + 1e-12)
        rows = rows.with_columns(
            pl.when(covered)
            .then(pl.lit("SavingsPlanCoveredUsage"))
            .otherwise(pl.col("line_item_type"))
            .alias("line_item_type"),
            pl.when(covered).then(pl.lit(plan.arn)).otherwise(pl.col("savings_plan_arn")).alias("savings_plan_arn"),
            pl.when(covered)
            .then(pl.col("public_od_cost") * plan.rate_ratio)
            .otherwise(pl.col("sp_effective_cost"))
            .alias("sp_effective_cost"),
            pl.when(covered)
            .then(pl.col("public_rate") * plan.rate_ratio)
            .otherwise(pl.col("sp_rate"))
            .alias("sp_rate"),
        )
    return rows.drop("_prio", "_cum", strict=False)


def negation_rows(rows: pl.DataFrame) -> pl.DataFrame:
    cov = rows.filter(pl.col("line_item_type") == "SavingsPlanCoveredUsage")
    return cov.with_columns(
        pl.lit("SavingsPlanNegation").alias("line_item_type"),
        (-pl.col("unblended_cost")).alias("unblended_cost"),
        (-pl.col("unblended_rate")).alias("unblended_rate"),
        pl.lit(0.0).alias("usage_amount"),
        pl.lit(0.0).alias("public_od_cost"),
        pl.lit(0.0).alias("sp_effective_cost"),
        pl.concat_str(
            [
                pl.lit("SavingsPlanNegation used by AccountId : "),
                pl.col("usage_account_id"),
                pl.lit(" and UsageSku : "),
                pl.col("sku"),
            ]
        ).alias("description"),
    )


def recurring_fee_rows(
    rows: pl.DataFrame, plans: list[SavingsPlanSpec], hours: pl.Series, payer: str, period: Period
) -> pl.DataFrame:
    frames = []
    for plan in plans:
        active = hours.filter((hours >= plan.start) & (hours < plan.end))
        if active.is_empty():
            continue
        used = (
            rows.filter(
                (pl.col("savings_plan_arn") == plan.arn) & (pl.col("line_item_type") == "SavingsPlanCoveredUsage")
            )
            .group_by("usage_start")
            .agg(pl.col("sp_effective_cost").sum().alias("sp_used_commitment"))
        )
        c = plan.hourly_commitment
        frames.append(
            pl.DataFrame({"usage_start": active})
            .join(used, on="usage_start", how="left")
            .with_columns(
                pl.col("sp_used_commitment").fill_null(0.0).clip(upper_bound=c),
                pl.lit(payer).alias("usage_account_id"),
                pl.lit("SavingsPlanRecurringFee").alias("line_item_type"),
                pl.lit("ComputeSavingsPlans").alias("product_code"),
                pl.lit(f"ComputeSP:{plan.purchase_term}NoUpfront").alias("usage_type"),
                pl.lit("").alias("operation"),
                pl.lit(1.0).alias("usage_amount"),
                pl.lit(c).alias("unblended_rate"),
                pl.lit(c).alias("unblended_cost"),
                pl.lit(0.0).alias("public_od_cost"),
                pl.lit("Hrs").alias("pricing_unit"),
                pl.lit("Savings Plan").alias("product_family"),
                pl.lit(f"{plan.term_years} year No Upfront Compute Savings Plan").alias("description"),
                pl.lit(plan.arn).alias("savings_plan_arn"),
                pl.lit(c).alias("sp_total_commitment"),
                pl.lit(c * (period.end - period.start).total_seconds() / 3600).alias("sp_recurring_commitment_for_bp"),
            )
        )
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def ri_fee_rows(rows: pl.DataFrame, inv: Inventory, hours: pl.Series, period: Period) -> pl.DataFrame:
    ri = inv.reserved_instance
    if ri is None:
        return pl.DataFrame()
    start = datetime(ri.start.year, ri.start.month, ri.start.day, tzinfo=timezone.utc)
    end = datetime(ri.end.year, ri.end.month, ri.end.day, tzinfo=timezone.utc)
    n_hours = hours.filter((hours >= start) & (hours < end)).len()
    if n_hours == 0:
        return pl.DataFrame()
    reserved = float(ri.count * n_hours)
    used = float(rows.filter(pl.col("reservation_arn") == ri.arn).get_column("usage_amount").sum())
    unused = max(reserved - used, 0.0)
    return pl.DataFrame(
        {
            "usage_start": [period.start],
            "usage_end": [period.end],
            "usage_account_id": [ri.account_id],
            "line_item_type": ["RIFee"],
            "product_code": ["AmazonRDS"],
            "region": [ri.region],
            "usage_type": [cat.usage_type(ri.region, f"HeavyUsage:{ri.instance_type}")],
            "operation": ["CreateDBInstance:0002"],
            "usage_amount": [reserved],
            "unblended_rate": [ri.hourly_rate],
            "unblended_cost": [reserved * ri.hourly_rate],
            "public_od_cost": [0.0],
            "pricing_unit": ["Hrs"],
            "pricing_term": ["Reserved"],
            "product_family": ["Database Instance"],
            "instance_type": [ri.instance_type],
            "description": [f"USD {ri.hourly_rate} hourly fee per MySQL, {ri.instance_type} instance"],
            "reservation_arn": [ri.arn],
            "ri_unused_quantity": [unused],
            "ri_unused_recurring_fee": [unused * ri.hourly_rate],
            "ri_unused_amortized_upfront_fee": [0.0],
            "ri_amortized_upfront_fee_for_bp": [0.0],
            "ri_number_of_reservations": [str(ri.count)],
            "ri_total_reserved_units": [str(reserved)],
            "ri_start_time": [f"{ri.start.isoformat()}T00:00:00Z"],
            "ri_end_time": [f"{ri.end.isoformat()}T00:00:00Z"],
        }
    )


def adjustment_rows(rows: pl.DataFrame, inv: Inventory, period: Period, key: tuple, restatement: bool) -> pl.DataFrame:
    """Monthly Tax per (account, service) plus credits and refunds, dated at the start of the period."""
    by_service = (
        rows.group_by("usage_account_id", "product_code", maintain_order=True)
        .agg(pl.col("unblended_cost").sum().alias("base"))
        .sort("usage_account_id", "product_code")
    )
    tax = (
        by_service.filter(pl.col("base") > 0)
        .with_columns(
            pl.lit("Tax").alias("line_item_type"),
            (pl.col("base") * TAX_RATE).round(6).alias("unblended_cost"),
            pl.lit("Sales Tax").alias("tax_type"),
            pl.lit("Tax").alias("usage_type"),
            pl.concat_str([pl.lit("Tax for product code "), pl.col("product_code")]).alias("description"),
        )
        .drop("base")
    )

    def spend(role: str, product: str) -> tuple[str | None, float]:
        acct = next((a.account_id for a in inv.accounts if a.role == role), None)
        if acct is None:
            return None, 0.0
        base = by_service.filter((pl.col("usage_account_id") == acct) & (pl.col("product_code") == product))
        return acct, float(base.get_column("base").sum())

    rng = scalar_rng(*key, "adjustments")
    extra: list[dict] = []
    dev_acct, dev_ec2 = spend("dev", "AmazonEC2")
    if dev_acct and dev_ec2 > 0:
        extra.append(
            {
                "usage_account_id": dev_acct,
                "product_code": "AmazonEC2",
                "line_item_type": "Credit",
                "unblended_cost": -round(min(150.0, 0.1 * dev_ec2), 2),
                "usage_type": "",
                "description": "AWS Promotional Credit",
            }
        )
    prod_acct, prod_ec2 = spend("prod", "AmazonEC2")
    if prod_acct and prod_ec2 > 0 and rng.random() < 0.4:
        extra.append(
            {
                "usage_account_id": prod_acct,
                "product_code": "AmazonEC2",
                "line_item_type": "Refund",
                "unblended_cost": -round(prod_ec2 * rng.uniform(0.005, 0.015), 2),
                "usage_type": "",
                "description": "Refund for service impairment",
            }
        )
    if restatement:
        late = scalar_rng(*key, "late-adjustments")
        _, prod_rds = spend("prod", "AmazonRDS")
        if prod_acct:
            extra.append(
                {
                    "usage_account_id": prod_acct,
                    "product_code": "AmazonRDS",
                    "line_item_type": "Credit",
                    "unblended_cost": -round(max(prod_rds, 100.0) * late.uniform(0.03, 0.06), 2),
                    "usage_type": "",
                    "description": "Service credit (SLA) applied after month close",
                }
            )
            extra.append(
                {
                    "usage_account_id": prod_acct,
                    "product_code": "AmazonEC2",
                    "line_item_type": "Refund",
                    "unblended_cost": -round(max(prod_ec2, 100.0) * late.uniform(0.01, 0.02), 2),
                    "usage_type": "",
                    "description": "Late refund for data transfer overcharge",
                }
            )
    out = pl.concat([tax, pl.DataFrame(extra)], how="diagonal_relaxed") if extra else tax
    return out.with_columns(
        pl.lit(period.start).alias("usage_start"),
        pl.lit(period.end).alias("usage_end"),
        pl.lit(0.0).alias("usage_amount"),
        pl.lit(0.0).alias("public_od_cost"),
    )


def billing_period_rows(
    inv: Inventory,
    *,
    payer: str,
    period: Period,
    plans: list[SavingsPlanSpec],
    anchor: datetime,
    key: tuple,
    restatement: bool,
    delivery_id: str,
    invoice_id: str | None,
) -> pl.DataFrame:
    """Every line item of one billing period (up to period.data_end)."""
    hours = hour_grid(period.start, period.data_end)
    month_key = (*key, period.label)
    rows = usage_rows(inv, hours, anchor, month_key)
    if restatement:
        rows = apply_restatement(rows, (*month_key, delivery_id))
    rows = apply_reserved_instance(rows, inv)
    rows = apply_savings_plans(rows, plans, month_key)
    parts = [
        rows,
        negation_rows(rows),
        recurring_fee_rows(rows, plans, hours, payer, period),
        ri_fee_rows(rows, inv, hours, period),
    ]
    body = pl.concat([p for p in parts if p.width], how="diagonal_relaxed")
    body = pl.concat([body, adjustment_rows(body, inv, period, month_key, restatement)], how="diagonal_relaxed")
    return finalize(
        body, inv, plans, payer=payer, period=period, delivery_id=delivery_id, invoice_id=invoice_id, key=month_key
    )


def _plan_attributes(plans: list[SavingsPlanSpec]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "savings_plan_arn": [p.arn for p in plans],
            "sp_offering_type": ["ComputeSavingsPlans"] * len(plans),
            "sp_payment_option": ["No Upfront"] * len(plans),
            "sp_purchase_term": [p.purchase_term for p in plans],
            "sp_start_time": [p.start.strftime("%Y-%m-%dT%H:%M:%S.000Z") for p in plans],
            "sp_end_time": [p.end.strftime("%Y-%m-%dT%H:%M:%S.000Z") for p in plans],
        },
        schema={
            "savings_plan_arn": pl.String,
            "sp_offering_type": pl.String,
            "sp_payment_option": pl.String,
            "sp_purchase_term": pl.String,
            "sp_start_time": pl.String,
            "sp_end_time": pl.String,
        },
    )


def finalize(
    body: pl.DataFrame,
    inv: Inventory,
    plans: list[SavingsPlanSpec],
    *,
    payer: str,
    period: Period,
    delivery_id: str,
    invoice_id: str | None,
    key: tuple,
) -> pl.DataFrame:
    names = pl.DataFrame(
        {"usage_account_id": list(inv.account_names), "usage_account_name": list(inv.account_names.values())}
    )
    locations = pl.DataFrame({"region": list(cat.REGIONS), "location": [v[1] for v in cat.REGIONS.values()]})
    products = pl.DataFrame({"product_code": list(cat.PRODUCT_NAMES), "product_name": list(cat.PRODUCT_NAMES.values())})
    body = (
        body.with_columns(pl.col("usage_end").fill_null(pl.col("usage_start") + pl.duration(hours=1)))
        .join(names, on="usage_account_id", how="left")
        .join(locations, on="region", how="left")
        .join(products, on="product_code", how="left")
        .join(_plan_attributes(plans), on="savings_plan_arn", how="left")
        .sort(
            ["usage_start", "usage_account_id", "product_code", "resource_id", "usage_type", "line_item_type"],
            nulls_last=True,
            maintain_order=True,
        )
    )
    return body.with_columns(
        pl.col(pl.Float64).round(10),  # CUR prints at most 10 decimals
        hex_ids(body.height, 40, *key, delivery_id).alias("line_item_id"),
        pl.lit(period.start).alias("billing_period_start"),
        pl.lit(period.end).alias("billing_period_end"),
        pl.lit(period.label).alias("billing_period"),
        pl.lit(invoice_id, dtype=pl.String).alias("invoice_id"),
        pl.lit(payer).alias("payer_account_id"),
        pl.lit(inv.account_names.get(payer, "management")).alias("payer_account_name"),
        pl.lit(cat.CURRENCY).alias("currency"),
        (pl.col("usage_amount") * pl.col("normalization_factor")).alias("normalized_usage_amount"),
    )
