"""The mart contract as the serving layer reads it (columns from docs/contracts.md, in order)."""

from __future__ import annotations

MART_COLUMNS: dict[str, dict[str, str]] = {
    "spend_hourly": {
        "tenant_id": "VARCHAR",
        "usage_hour": "TIMESTAMP",
        "usage_date": "DATE",
        "billing_period": "VARCHAR",
        "usage_account_id": "VARCHAR",
        "account_name": "VARCHAR",
        "ou_path": "VARCHAR",
        "region": "VARCHAR",
        "service": "VARCHAR",
        "usage_type": "VARCHAR",
        "charge_class": "VARCHAR",
        "line_item_type": "VARCHAR",
        "unblended_cost": "DOUBLE",
        "amortized_cost": "DOUBLE",
        "public_on_demand_cost": "DOUBLE",
        "usage_amount": "DOUBLE",
        "tags": "VARCHAR",
    },
    "spend_daily": {
        "tenant_id": "VARCHAR",
        "usage_date": "DATE",
        "billing_period": "VARCHAR",
        "usage_account_id": "VARCHAR",
        "account_name": "VARCHAR",
        "ou_path": "VARCHAR",
        "region": "VARCHAR",
        "service": "VARCHAR",
        "charge_class": "VARCHAR",
        "tags": "VARCHAR",
        "unblended_cost": "DOUBLE",
        "amortized_cost": "DOUBLE",
        "public_on_demand_cost": "DOUBLE",
    },
    "savings_projection": {
        "tenant_id": "VARCHAR",
        "period_type": "VARCHAR",
        "period_start": "DATE",
        "period_end": "DATE",
        "baseline_cost": "DOUBLE",
        "projected_cost": "DOUBLE",
        "savings": "DOUBLE",
        "delta_pct": "DOUBLE",
        "achievable_cost": "DOUBLE",
    },
    "sp_eligible_usage_hourly": {
        "tenant_id": "VARCHAR",
        "usage_hour": "TIMESTAMP",
        "eligible_on_demand_cost": "DOUBLE",
        "covered_on_demand_cost": "DOUBLE",
        "uncovered_on_demand_cost": "DOUBLE",
        "sp_effective_cost": "DOUBLE",
        "sp_rate_ratio": "DOUBLE",
    },
    "sp_position_hourly": {
        "tenant_id": "VARCHAR",
        "usage_hour": "TIMESTAMP",
        "savings_plan_arn": "VARCHAR",
        "commitment": "DOUBLE",
        "used_commitment": "DOUBLE",
        "unused_commitment": "DOUBLE",
        "eligible_on_demand_cost": "DOUBLE",
        "covered_on_demand_cost": "DOUBLE",
        "coverage_pct": "DOUBLE",
        "utilization_pct": "DOUBLE",
    },
    "recommendations": {
        "recommendation_id": "VARCHAR",
        "tenant_id": "VARCHAR",
        "category": "VARCHAR",
        "rec_type": "VARCHAR",
        "resource_id": "VARCHAR",
        "usage_account_id": "VARCHAR",
        "region": "VARCHAR",
        "service": "VARCHAR",
        "title": "VARCHAR",
        "rationale": "VARCHAR",
        "expected_monthly_savings": "DOUBLE",
        "steps": "VARCHAR",
        "status": "VARCHAR",
        "generated_at": "TIMESTAMP",
    },
    "data_sources_daily": {
        "tenant_id": "VARCHAR",
        "usage_date": "DATE",
        "source_format": "VARCHAR",
        "rows": "BIGINT",
        "unblended_cost": "DOUBLE",
    },
    "savings_ledger": {
        "tenant_id": "VARCHAR",
        "billing_period": "VARCHAR",
        "period_start": "DATE",
        "period_end": "DATE",
        "data_through": "DATE",
        "days_with_data": "BIGINT",
        "is_month_to_date": "BOOLEAN",
        **{
            c: "DOUBLE"
            for c in (
                "on_demand_equivalent",
                "customer_cost",
                "promised_savings",
                "promised_savings_pct",
                "blocks_cost",
                "realized_savings",
                "realized_esr_pct",
                "margin",
                "shortfall",
                "sp_eligible_on_demand",
                "sp_covered_on_demand",
                "sp_commitment_cost",
                "sp_coverage_pct",
                "sp_utilization_pct",
                "sp_savings",
                "sp_rate_ratio",
                "hindsight_hourly_commitment",
                "hindsight_sp_savings",
                "hindsight_regret",
            )
        },
    },
}

MARTS: tuple[str, ...] = tuple(MART_COLUMNS)
SPEND_MARTS = ("spend_hourly", "spend_daily")


def empty_table_sql(mart: str) -> str:
    cols = ", ".join(f"{name} {sql_type}" for name, sql_type in MART_COLUMNS[mart].items())
    return f"CREATE OR REPLACE TABLE {mart} ({cols})"


def projection_sql(mart: str) -> str:
    """Select exactly the contract columns, cast to the contract types, so a mart with extra columns still loads."""
    return ", ".join(f"CAST({name} AS {sql_type}) AS {name}" for name, sql_type in MART_COLUMNS[mart].items())


def derive_spend_daily(conn) -> None:
    """spend_daily from spend_hourly, for tenants whose lake has only the hourly mart (and for sample data)."""
    conn.execute("""
        CREATE OR REPLACE TABLE spend_daily AS
        SELECT tenant_id, usage_date, billing_period, usage_account_id, account_name, ou_path, region, service,
               charge_class, tags, sum(unblended_cost) AS unblended_cost, sum(amortized_cost) AS amortized_cost,
               sum(public_on_demand_cost) AS public_on_demand_cost
        FROM spend_hourly GROUP BY ALL
    """)
