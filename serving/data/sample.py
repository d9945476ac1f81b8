"""Deterministic sample marts with the contract's columns.

Shown (flagged `sample: true`) while a tenant's backfill has not produced marts yet, and written to Parquet by the
tests and the benchmark as fixture marts. Built in DuckDB SQL so a year of hourly rows takes well under a second.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb

from serving.data.marts import MARTS, derive_spend_daily, empty_table_sql, projection_sql

# service code, region, usage type, base hourly cost, share covered by Savings Plans
SERVICES: tuple[tuple[str, str | None, str, float, float], ...] = (
    ("AmazonEC2", "eu-west-1", "EUW1-BoxUsage:m5.xlarge", 4.0, 0.55),
    ("AmazonRDS", "eu-west-1", "EUW1-InstanceUsage:db.r5.large", 1.6, 0.0),
    ("AmazonS3", "eu-west-1", "EUW1-TimedStorage-ByteHrs", 0.7, 0.0),
    ("AWSLambda", "us-east-1", "USE1-Lambda-GB-Second", 0.45, 0.3),
    ("AmazonECS", "us-east-1", "USE1-Fargate-vCPU-Hours:perCPU", 0.9, 0.4),
    ("AmazonCloudFront", None, "DataTransfer-Out-Bytes", 0.3, 0.0),
)
SP_DISCOUNT = 0.28  # a 1-year no-upfront Compute SP, per REFERENCE.md section 2
TEAMS = ("web", "api", "data", "platform")


@dataclass(frozen=True)
class SampleAccount:
    account_id: str
    name: str
    ou_path: str


def default_accounts(tenant_id: str) -> tuple[SampleAccount, ...]:
    """Account ids derived from the tenant id, so two sample tenants never share an account."""
    base = int(hashlib.sha256(tenant_id.encode()).hexdigest()[:8], 16) % 10**8
    layout = (
        ("management", "Root"),
        ("prod-web", "Root/Engineering/Prod"),
        ("prod-api", "Root/Engineering/Prod"),
        ("analytics", "Root/Data"),
    )
    return tuple(SampleAccount(f"{base + i:012d}", name, ou) for i, (name, ou) in enumerate(layout))


def build_sample_marts(
    conn: duckdb.DuckDBPyConnection,
    tenant_id: str,
    end: date,
    days: int = 90,
    accounts: tuple[SampleAccount, ...] | None = None,
    scale: float = 1.0,
    cost_explorer_days: int = 0,
) -> None:
    """Create every mart as a table in conn, holding `days` days of hourly data ending on `end` (inclusive); the
    first `cost_explorer_days` of them are marked as coming from Cost Explorer, the rest from CUR."""
    accounts = accounts or default_accounts(tenant_id)
    start = end - timedelta(days=days - 1)
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _accounts (idx INT, usage_account_id VARCHAR, account_name VARCHAR, "
        "ou_path VARCHAR)"
    )
    conn.executemany(
        "INSERT INTO _accounts VALUES (?, ?, ?, ?)",
        [(i, a.account_id, a.name, a.ou_path) for i, a in enumerate(accounts)],
    )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE _services (sidx INT, service VARCHAR, region VARCHAR, "
        "usage_type VARCHAR, base DOUBLE, sp_share DOUBLE)"
    )
    conn.executemany("INSERT INTO _services VALUES (?, ?, ?, ?, ?, ?)", [(i, *s) for i, s in enumerate(SERVICES)])
    conn.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _usage AS
        WITH hours AS (
            SELECT h AS usage_hour, datediff('day', ?::DATE, h::DATE) AS day_idx
            FROM range(?::TIMESTAMP, ?::TIMESTAMP + INTERVAL 1 DAY, INTERVAL 1 HOUR) t(h)
        )
        SELECT usage_hour, a.usage_account_id, a.account_name, a.ou_path, s.service, s.region, s.usage_type,
               s.sp_share,
               '{{"user:team":"' || {_teams_sql()}[1 + (a.idx + s.sidx) % {len(TEAMS)}] || '","user:env":"'
                   || CASE WHEN a.ou_path LIKE '%Prod' THEN 'prod' ELSE 'shared' END || '"}}' AS tags,
               {scale} * s.base * (1.0 + 0.5 * a.idx)
                 * (1.0 + 0.25 * sin(2 * pi() * hour(usage_hour) / 24.0))
                 * (1.0 + 0.002 * day_idx)
                 * (0.9 + 0.2 * ((hash(usage_hour, a.idx, s.sidx) % 1000) / 1000.0)) AS on_demand
        FROM hours, _accounts a, _services s
    """,
        [start, start, end],
    )
    conn.execute(f"""
        CREATE OR REPLACE TABLE spend_hourly AS
        SELECT {_q(tenant_id)} AS tenant_id, usage_hour, usage_hour::DATE AS usage_date,
               strftime(usage_hour, '%Y-%m') AS billing_period, usage_account_id, account_name, ou_path, region,
               service, usage_type, 'usage' AS charge_class, 'Usage' AS line_item_type,
               on_demand * (1 - sp_share) AS unblended_cost, on_demand * (1 - sp_share) AS amortized_cost,
               on_demand * (1 - sp_share) AS public_on_demand_cost, on_demand * 10 AS usage_amount, tags
        FROM _usage
        UNION ALL
        SELECT {_q(tenant_id)}, usage_hour, usage_hour::DATE, strftime(usage_hour, '%Y-%m'), usage_account_id,
               account_name, ou_path, region, service, usage_type, 'savings_plan', 'SavingsPlanCoveredUsage',
               on_demand * sp_share, on_demand * sp_share * (1 - {SP_DISCOUNT}), on_demand * sp_share,
               on_demand * 10 * sp_share, tags
        FROM _usage WHERE sp_share > 0
    """)
    derive_spend_daily(conn)
    _build_data_sources(conn, start + timedelta(days=cost_explorer_days))
    _build_sp_marts(conn, tenant_id)
    _build_projection(conn, tenant_id, end)
    _build_recommendations(conn, tenant_id, accounts, end, scale)
    _build_ledger(conn)
    for table in ("_accounts", "_services", "_usage"):
        conn.execute(f"DROP TABLE {table}")


def _teams_sql() -> str:
    return "[" + ", ".join(_q(t) for t in TEAMS) + "]"


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _build_data_sources(conn: duckdb.DuckDBPyConnection, first_cur_day: date) -> None:
    conn.execute(
        """
        CREATE OR REPLACE TABLE data_sources_daily AS
        SELECT tenant_id, usage_date, CASE WHEN usage_date < ? THEN 'cost_explorer' ELSE 'cur1' END AS source_format,
               count(*) AS rows, sum(unblended_cost) AS unblended_cost
        FROM spend_hourly GROUP BY ALL
    """,
        [first_cur_day],
    )


def _build_sp_marts(conn: duckdb.DuckDBPyConnection, tenant_id: str) -> None:
    conn.execute(f"""
        CREATE OR REPLACE TABLE sp_eligible_usage_hourly AS
        SELECT {_q(tenant_id)} AS tenant_id, usage_hour, sum(on_demand) AS eligible_on_demand_cost,
               sum(on_demand * sp_share) AS covered_on_demand_cost,
               sum(on_demand * (1 - sp_share)) AS uncovered_on_demand_cost,
               sum(on_demand * sp_share * (1 - {SP_DISCOUNT})) AS sp_effective_cost,
               {1 - SP_DISCOUNT} AS sp_rate_ratio
        FROM _usage WHERE service IN ('AmazonEC2', 'AWSLambda', 'AmazonECS') GROUP BY usage_hour
    """)
    # One plan sized to the typical covered usage: utilization dips below 100% in quiet hours.
    conn.execute("""
        CREATE OR REPLACE TABLE sp_position_hourly AS
        WITH plan AS (SELECT quantile_cont(sp_effective_cost, 0.5) AS commitment FROM sp_eligible_usage_hourly),
        hourly AS (
            SELECT e.tenant_id, e.usage_hour, p.commitment, least(e.sp_effective_cost, p.commitment) AS used,
                   e.eligible_on_demand_cost, e.covered_on_demand_cost
            FROM sp_eligible_usage_hourly e, plan p
        )
        SELECT tenant_id, usage_hour, arn AS savings_plan_arn, commitment, used AS used_commitment,
               commitment - used AS unused_commitment, eligible_on_demand_cost, covered_on_demand_cost,
               100.0 * covered_on_demand_cost / nullif(eligible_on_demand_cost, 0) AS coverage_pct,
               100.0 * used / nullif(commitment, 0) AS utilization_pct
        FROM hourly, (VALUES ('TOTAL'), ('arn:aws:savingsplans::000000000000:savingsplan/sample-1')) v(arn)
    """)


def _build_projection(conn: duckdb.DuckDBPyConnection, tenant_id: str, end: date) -> None:
    """Baseline = on-demand-equivalent cost; projected = baseline less the 20% Blocks guarantee."""
    windows = []
    for back in range(14):
        d = end - timedelta(days=back)
        windows.append(("day", d, d))
    monday = end - timedelta(days=end.weekday())
    for back in range(8):
        s = monday - timedelta(weeks=back)
        windows.append(("week", s, s + timedelta(days=6)))
    month = end.replace(day=1)
    for _ in range(4):
        nxt = (month + timedelta(days=32)).replace(day=1)
        windows.append(("month", month, nxt - timedelta(days=1)))
        month = (month - timedelta(days=1)).replace(day=1)
    windows.append(("ytd", end.replace(month=1, day=1), end))
    conn.execute("CREATE OR REPLACE TEMP TABLE _windows (period_type VARCHAR, period_start DATE, period_end DATE)")
    conn.executemany("INSERT INTO _windows VALUES (?, ?, ?)", windows)
    conn.execute(f"""
        CREATE OR REPLACE TABLE savings_projection AS
        SELECT {_q(tenant_id)} AS tenant_id, w.period_type, w.period_start, w.period_end,
               coalesce(sum(d.public_on_demand_cost), 0) AS baseline_cost,
               0.8 * coalesce(sum(d.public_on_demand_cost), 0) AS projected_cost,
               0.2 * coalesce(sum(d.public_on_demand_cost), 0) AS savings,
               -20.0::DOUBLE AS delta_pct,
               coalesce(sum(d.amortized_cost), 0) AS achievable_cost
        FROM _windows w LEFT JOIN spend_daily d ON d.usage_date BETWEEN w.period_start AND w.period_end
        GROUP BY ALL ORDER BY w.period_type, w.period_start
    """)
    conn.execute("DROP TABLE _windows")


def _build_ledger(conn: duckdb.DuckDBPyConnection, discount: float = 0.2) -> None:
    """savings_ledger as the dbt model computes it, from the sample's spend and Savings Plans position."""
    conn.execute(f"""
        CREATE OR REPLACE TABLE savings_ledger AS
        WITH money AS (
            SELECT tenant_id, billing_period, max(usage_date) AS last_day, count(DISTINCT usage_date) AS days,
                   sum(public_on_demand_cost) AS od, sum(amortized_cost) AS cost
            FROM spend_hourly GROUP BY ALL
        ), hours AS (
            SELECT strftime(p.usage_hour, '%Y-%m') AS billing_period, p.eligible_on_demand_cost AS u,
                   p.covered_on_demand_cost AS covered, p.commitment, p.used_commitment, e.sp_rate_ratio AS r
            FROM sp_position_hourly p JOIN sp_eligible_usage_hourly e USING (usage_hour)
            WHERE p.savings_plan_arn = 'TOTAL'
        ), ranked AS (
            SELECT *, sum(u) OVER w AS below, row_number() OVER w AS i,
                   count(*) OVER (PARTITION BY billing_period) AS n
            FROM hours WINDOW w AS (PARTITION BY billing_period ORDER BY u ROWS UNBOUNDED PRECEDING)
        ), sp AS (
            SELECT billing_period, sum(u) AS eligible, sum(covered) AS covered, sum(commitment) AS commitment,
                   sum(used_commitment) AS used, avg(r) AS r,
                   greatest(max(below + u * (n - i) - r * u * n), 0) AS best,
                   arg_max(u * r, below + u * (n - i) - r * u * n) AS best_commitment
            FROM ranked GROUP BY billing_period
        )
        SELECT m.tenant_id, m.billing_period, strptime(m.billing_period || '-01', '%Y-%m-%d')::DATE AS period_start,
               last_day(period_start) AS period_end, m.last_day AS data_through, m.days AS days_with_data,
               m.last_day = max(m.last_day) OVER () AND m.last_day < last_day(period_start) AS is_month_to_date,
               m.od AS on_demand_equivalent, m.od * {1 - discount} AS customer_cost,
               m.od * {discount} AS promised_savings, {100 * discount} AS promised_savings_pct,
               m.cost AS blocks_cost, m.od - m.cost AS realized_savings,
               100 * (m.od - m.cost) / nullif(m.od, 0) AS realized_esr_pct,
               m.od * {1 - discount} - m.cost AS margin, greatest(m.cost - m.od * {1 - discount}, 0) AS shortfall,
               s.eligible AS sp_eligible_on_demand, s.covered AS sp_covered_on_demand,
               s.commitment AS sp_commitment_cost, 100 * s.covered / nullif(s.eligible, 0) AS sp_coverage_pct,
               100 * s.used / nullif(s.commitment, 0) AS sp_utilization_pct,
               s.covered - s.commitment AS sp_savings, s.r AS sp_rate_ratio,
               CASE WHEN s.best > 0 THEN s.best_commitment ELSE 0 END AS hindsight_hourly_commitment,
               s.best AS hindsight_sp_savings,
               greatest(s.best - (s.covered - s.commitment), 0) AS hindsight_regret
        FROM money m LEFT JOIN sp s USING (billing_period)
        ORDER BY m.billing_period
    """)


def _build_recommendations(conn, tenant_id: str, accounts: tuple[SampleAccount, ...], end: date, scale: float) -> None:
    acct = [a.account_id for a in accounts]
    recs = [
        (
            "rightsizing",
            "ec2_downsize",
            f"i-0{acct[1][-6:]}a1",
            acct[1 % len(acct)],
            "eu-west-1",
            "AmazonEC2",
            "Downsize an over-provisioned web instance",
            "Average CPU stayed under 12% for 14 days.",
            182.4,
            ["Check the instance's peak load", "Change the instance type to the next smaller size", "Watch latency"],
        ),
        (
            "idle",
            "idle_rds",
            f"db-{acct[2 % len(acct)][-6:]}",
            acct[2 % len(acct)],
            "eu-west-1",
            "AmazonRDS",
            "Stop an idle database",
            "No connections for 21 days.",
            96.0,
            ["Snapshot the database", "Stop or delete it"],
        ),
        (
            "commitment_posture",
            "sp_coverage",
            "compute-sp",
            acct[0],
            "global",
            "AmazonEC2",
            "Raise Savings Plans coverage",
            "Eligible compute is covered below the target.",
            240.0,
            [
                "Nothing to do on your side: Blocks prepares the proposal and its team reviews it before buying",
                "See coverage rise on the Savings Plans page after the purchase",
            ],
        ),
        (
            "modernization",
            "graviton",
            f"i-0{acct[3 % len(acct)][-6:]}b2",
            acct[3 % len(acct)],
            "us-east-1",
            "AmazonECS",
            "Move Fargate tasks to Graviton",
            "ARM tasks cost about 20% less for the same vCPU.",
            61.5,
            ["Build an arm64 image", "Switch the task's runtime platform"],
        ),
    ]
    conn.execute(empty_table_sql("recommendations"))
    for cat, rec_type, resource, account, region, service, title, why, saving, steps in recs:
        rec_id = hashlib.sha256(f"{tenant_id}|{rec_type}|{resource}".encode()).hexdigest()[:16]
        conn.execute(
            "INSERT INTO recommendations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?)",
            [
                rec_id,
                tenant_id,
                cat,
                rec_type,
                resource,
                account,
                region,
                service,
                title,
                why,
                round(saving * scale, 2),
                json.dumps(steps),
                end,
            ],
        )


def write_sample_lake(
    lake_dir: Path,
    tenant_id: str,
    end: date,
    days: int = 90,
    scale: float = 1.0,
    accounts: tuple[SampleAccount, ...] | None = None,
    cost_explorer_days: int = 0,
) -> None:
    """Export sample marts to `{lake}/marts/{mart}/tenant_id={t}/data.parquet` (fixtures for tests and benches)."""
    from blocks_pipelines.lake.layout import mart_uri

    conn = duckdb.connect()
    try:
        build_sample_marts(conn, tenant_id, end, days, accounts, scale, cost_explorer_days)
        for mart in MARTS:
            dest = Path(mart_uri(str(lake_dir), mart, tenant_id))
            dest.parent.mkdir(parents=True, exist_ok=True)
            conn.execute(f"COPY (SELECT {projection_sql(mart)} FROM {mart}) TO '{dest}' (FORMAT parquet)")
    finally:
        conn.close()
