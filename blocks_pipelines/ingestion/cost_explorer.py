"""Cost Explorer backfill for days a tenant has no CUR for yet: GetCostAndUsage HOURLY for the last 14 days
(the most Cost Explorer keeps hourly), DAILY before that, never further back than the 13 months before the current
one that Cost Explorer keeps. Rows are marked source_format="cost_explorer"; a CUR delivery of the same month
replaces them, and a backfill never overwrites days that already hold CUR rows.

Cost Explorer has no line items: rows are per (period, linked account, service), unblended = UnblendedCost,
amortized = AmortizedCost; public_on_demand_cost is unknown and set to unblended. Service names become CUR product
codes where known (SERVICE_CODES), and the "Tax" and Savings Plans fee services keep their CUR line item types, so
the marts group Cost Explorer days as they group CUR ones; everything else is "Usage".

Every request (each page too) costs $0.01, so the client is made without botocore's own retries: this module retries
throttling itself and counts every request it makes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import polars as pl
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from blocks_pipelines.connect.aws import COST_EXPLORER_REGION, ClientSource, assume_role, error_code, error_message
from blocks_pipelines.ingestion.errors import MixedCurrencyError
from blocks_pipelines.ingestion.ingest import IngestSummary, PeriodTotals
from blocks_pipelines.ingestion.lake_writer import (
    Slice,
    fetch_slice_files,
    lake_totals,
    replace_slice,
    totals_by_day,
    totals_by_period,
)
from blocks_pipelines.ingestion.schema import CANONICAL_SCHEMA, LINE_ITEM_TYPES
from blocks_pipelines.ingestion.workdirs import run_workdir
from blocks_pipelines.lake import fs, layout, months
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig, resolve_tenant

SOURCE_FORMAT = "cost_explorer"
HOURLY_DAYS = 14
HISTORY_MONTHS = 13  # months before the current one that Cost Explorer answers for
METRICS = ["UnblendedCost", "AmortizedCost", "UsageQuantity"]
GROUP_BY = [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}]
THROTTLE_CODES = {"LimitExceededException", "ThrottlingException"}
# An account without hourly granularity enabled (a paid Cost Explorer preference) refuses HOURLY requests.
HOURLY_REFUSED_CODES = {"ValidationException", "DataUnavailableException"}
MAX_ATTEMPTS = 6
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0

Sleep = Callable[[float], None]


class CostExplorerThrottled(RuntimeError):
    """Cost Explorer kept answering LimitExceededException after every retry."""


@dataclass
class RequestLog:
    """What a pull cost: billable requests (pages and retries included) and the throttled ones among them."""

    requests: int = 0
    throttled: int = 0
    hourly_refused: str | None = None  # why HOURLY fell back to DAILY, if it did


@dataclass
class CostExplorerBackfill:
    summary: IngestSummary
    requests: RequestLog
    first_day: date
    end_day: date  # exclusive
    days_with_cur: list[date] = field(default_factory=list)  # skipped: CUR rows are authoritative
    cost_by_day: dict[str, float] = field(default_factory=dict)  # unblended, rows written

    def to_dict(self) -> dict[str, Any]:
        """`blocks ingest`'s JSON summary plus what is particular to a Cost Explorer pull."""
        out = self.summary.to_dict()
        out["cost_explorer"] = {
            "first_day": self.first_day.isoformat(),
            "end_day": self.end_day.isoformat(),
            "requests": self.requests.requests,
            "throttled": self.requests.throttled,
            "hourly_refused": self.requests.hourly_refused,
            "days_with_cur": [d.isoformat() for d in self.days_with_cur],
            "cost_by_day": self.cost_by_day,
        }
        return out


def skip_reason(tenant: TenantConfig) -> str | None:
    """Why this tenant cannot be backfilled from Cost Explorer, or None when it can."""
    if not tenant.cur_source.is_s3:
        return (
            f"{tenant.id}'s CUR is local sample data ({tenant.cur_source.uri}): there is no AWS account behind it "
            "to ask Cost Explorer"
        )
    if "data_read" not in tenant.connection.scopes:
        return f"{tenant.id}'s connection has no data_read scope: its role may not read Cost Explorer"
    return None


def earliest_day(today: date) -> date:
    """First day Cost Explorer still answers for: the first of the month HISTORY_MONTHS before today's."""
    months = today.year * 12 + today.month - 1 - HISTORY_MONTHS
    return date(months // 12, months % 12 + 1, 1)


def complete_hours_end(now: datetime) -> datetime:
    """The exclusive end of the hours that are complete at `now`: the start of the current hour (UTC)."""
    return now.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def backfill_bounds(tenant: TenantConfig, start: date | None, end: date | None, now: datetime) -> tuple[date, date]:
    """[first, end) days to pull: from history_start (or start) but not before what Cost Explorer keeps, up to today
    included (or end). Empty (first >= end) when nothing is left."""
    today = now.astimezone(timezone.utc).date()
    first = max(start or tenant.history_start, tenant.history_start, earliest_day(today))
    return first, min(end or today + timedelta(days=1), today + timedelta(days=1))


def request_windows(start: date, end: date, now: datetime) -> list[tuple[str, str, str]]:
    """(granularity, Start, End) requests covering [start, end): HOURLY inside the last 14 days, ending at the last
    complete hour, DAILY before."""
    today = now.astimezone(timezone.utc).date()
    cut = today - timedelta(days=HOURLY_DAYS - 1)
    out = []
    if start < min(cut, end):
        out.append(("DAILY", start.isoformat(), min(cut, end).isoformat()))
    hourly_start = datetime.combine(max(start, cut), datetime.min.time(), timezone.utc)
    hourly_end = min(datetime.combine(end, datetime.min.time(), timezone.utc), complete_hours_end(now))
    if hourly_start < hourly_end:
        out.append(("HOURLY", f"{hourly_start:%Y-%m-%dT%H:%M:%SZ}", f"{hourly_end:%Y-%m-%dT%H:%M:%SZ}"))
    return out


def backoff_delay(attempt: int) -> float:
    """Exponential backoff with jitter (half to full of the capped exponential), attempt counted from 0."""
    return min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt) * random.uniform(0.5, 1.0)


def _get_page(client, kwargs: dict, log: RequestLog, sleep: Sleep) -> dict:
    attempt = 0
    while True:
        log.requests += 1
        try:
            return client.get_cost_and_usage(**kwargs)
        except ClientError as exc:
            if error_code(exc) not in THROTTLE_CODES:
                raise
            log.throttled += 1
            if attempt + 1 == MAX_ATTEMPTS:
                raise CostExplorerThrottled(
                    f"Cost Explorer still throttles after {MAX_ATTEMPTS} attempts ({error_message(exc)}); its limit "
                    "is per payer account and shared with every other tool reading it: retry later"
                ) from exc
            sleep(backoff_delay(attempt))
            attempt += 1


def fetch_cost_and_usage(
    client, granularity: str, start: str, end: str, log: RequestLog, sleep: Sleep = time.sleep
) -> list[dict]:
    """Flattened GetCostAndUsage groups: one dict per (period, account, service), following NextPageToken."""
    rows, token = [], None
    while True:
        kwargs = dict(
            TimePeriod={"Start": start, "End": end}, Granularity=granularity, Metrics=METRICS, GroupBy=GROUP_BY
        )
        if token:
            kwargs["NextPageToken"] = token
        resp = _get_page(client, kwargs, log, sleep)
        for period in resp["ResultsByTime"]:
            for g in period.get("Groups", []):
                m = g["Metrics"]
                rows.append(
                    {
                        "start": period["TimePeriod"]["Start"],
                        "end": period["TimePeriod"]["End"],
                        "account": g["Keys"][0],
                        "service": g["Keys"][1],
                        "unblended": float(m["UnblendedCost"]["Amount"]),
                        "amortized": float(m["AmortizedCost"]["Amount"]),
                        "usage": float(m.get("UsageQuantity", {}).get("Amount", 0.0)),
                        "currency": m["UnblendedCost"].get("Unit", "USD"),
                    }
                )
        token = resp.get("NextPageToken")
        if not token:
            return rows


def pull(client, start: date, end: date, now: datetime, log: RequestLog, sleep: Sleep = time.sleep) -> list[dict]:
    """Every group for [start, end); where HOURLY is refused, the same days DAILY (today's row then is partial and
    replaced by the next pull)."""
    rows = []
    for granularity, lo, hi in request_windows(start, end, now):
        try:
            rows += fetch_cost_and_usage(client, granularity, lo, hi, log, sleep)
        except ClientError as exc:
            if granularity != "HOURLY" or error_code(exc) not in HOURLY_REFUSED_CODES:
                raise
            log.hourly_refused = error_message(exc)
            rows += fetch_cost_and_usage(client, "DAILY", lo[:10], end.isoformat(), log, sleep)
    return rows


def _ce_time(e: pl.Expr) -> pl.Expr:
    """DAILY periods come as `2026-11-01`, HOURLY ones as `2026-11-01T05:00:00Z`."""
    full = e.str.replace(r"^(\d{4}-\d{2}-\d{2})$", "${1}T00:00:00Z")
    return full.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_unit="us").dt.replace_time_zone("UTC")


# Cost Explorer groups by service NAME; CUR (and so the marts and the API's group_by=service) use product codes.
SERVICE_CODES = {
    "Amazon Elastic Compute Cloud - Compute": "AmazonEC2",
    "EC2 - Other": "AmazonEC2",
    "Amazon Relational Database Service": "AmazonRDS",
    "Amazon Simple Storage Service": "AmazonS3",
    "AWS Lambda": "AWSLambda",
    "Amazon Elastic Container Service": "AmazonECS",
    "Amazon Elastic Container Service for Kubernetes": "AmazonEKS",
    "Amazon ElastiCache": "AmazonElastiCache",
    "Amazon DynamoDB": "AmazonDynamoDB",
    "Amazon CloudFront": "AmazonCloudFront",
    "Amazon Virtual Private Cloud": "AmazonVPC",
    "Amazon Elastic Load Balancing": "AWSELB",
    "AmazonCloudWatch": "AmazonCloudWatch",
    "Amazon CloudWatch": "AmazonCloudWatch",
    "AWS Key Management Service": "awskms",
    "Amazon Route 53": "AmazonRoute53",
    "Amazon OpenSearch Service": "AmazonES",
    "Amazon Redshift": "AmazonRedshift",
    "Amazon SageMaker": "AmazonSageMaker",
    "Amazon Elastic File System": "AmazonEFS",
    "Amazon Simple Queue Service": "AWSQueueService",
    "Amazon Simple Notification Service": "AmazonSNS",
    "AWS Glue": "AWSGlue",
    "Amazon Athena": "AmazonAthena",
    "AWS Backup": "AWSBackup",
    "Amazon Kinesis": "AmazonKinesis",
    "AWS Secrets Manager": "AWSSecretsManager",
    "Amazon EC2 Container Registry (ECR)": "AmazonECR",
    "AWS Config": "AWSConfig",
    "AWS CloudTrail": "AWSCloudTrail",
}
# CE reports tax and the Savings Plans fee as "services"; their CUR line item types keep the marts' charge classes.
SERVICE_LINE_ITEM_TYPES = {"Tax": "Tax", "Savings Plans for AWS Compute usage": "SavingsPlanRecurringFee"}


def ce_rows_to_canonical(rows: list[dict], tenant_id: str, payer: str, pull_id: str) -> pl.DataFrame:
    """Pure: Cost Explorer groups as canonical line items."""
    if not rows:
        return pl.DataFrame(schema=CANONICAL_SCHEMA)
    df = pl.DataFrame(rows)
    start, end = _ce_time(pl.col("start")), _ce_time(pl.col("end"))
    lit = pl.col("service").replace_strict(SERVICE_LINE_ITEM_TYPES, default="Usage")
    values = {
        "tenant_id": pl.lit(tenant_id),
        "provider": pl.lit("AWS"),
        "billing_period": start.dt.strftime("%Y-%m"),
        "usage_start": start,
        "usage_end": end,
        "usage_date": start.dt.date(),
        "payer_account_id": pl.lit(payer),
        "usage_account_id": pl.col("account"),
        "line_item_type": lit,
        "charge_class": lit.replace_strict(LINE_ITEM_TYPES),
        "service": pl.col("service").replace(SERVICE_CODES),
        "service_name": pl.col("service"),
        "usage_amount": pl.col("usage"),
        "currency": pl.col("currency"),
        "unblended_cost": pl.col("unblended"),
        "amortized_cost": pl.col("amortized"),
        "public_on_demand_cost": pl.col("unblended"),
        "tags": pl.lit("{}"),
        "cost_categories": pl.lit("{}"),
        "source_format": pl.lit(SOURCE_FORMAT),
        "delivery_id": pl.lit(pull_id),
    }
    return df.select([values.get(n, pl.lit(None)).cast(t).alias(n) for n, t in CANONICAL_SCHEMA.items()])


def cost_explorer_client(source: ClientSource, tenant: TenantConfig) -> Any:
    """A Cost Explorer client with the tenant's assumed data-read role. max_attempts=1: botocore would otherwise
    retry LimitExceededException itself, unseen by the request count and the backoff here."""
    from botocore.config import Config

    conn = tenant.connection
    creds = assume_role(source, conn.role_arn, conn.external_id, tenant.id)
    return source.client(
        "ce", region_name=COST_EXPLORER_REGION, config=Config(retries={"max_attempts": 1}), **creds.client_kwargs()
    )


def _utc(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=timezone.utc)


def backfill_from_cost_explorer(
    tenant: TenantConfig | str,
    start: date,
    end: date,
    *,
    client=None,
    lake_uri: str | None = None,
    now: datetime | None = None,
    sleep: Sleep = time.sleep,
) -> CostExplorerBackfill:
    """Write Cost Explorer rows for the days [start, end) into the lake (up to the last complete hour), replacing
    earlier Cost Explorer rows there and skipping every day that already holds CUR rows."""
    tenant = resolve_tenant(tenant)
    lake_uri = lake_uri or get_settings().lake_uri
    now = now or datetime.now(timezone.utc)
    if client is None:
        import boto3

        client = cost_explorer_client(boto3.Session(), tenant)
    pull_id = f"ce-{now:%Y%m%dT%H%M%SZ}"
    log = RequestLog()
    df = ce_rows_to_canonical(
        pull(client, start, end, now, log, sleep), tenant.id, tenant.organization.payer_account_id, pull_id
    )
    # the lake writer requires new rows inside the replaced slice: drop any period Cost Explorer added around it
    df = df.filter((pl.col("usage_start") >= _utc(start)) & (pl.col("usage_start") < _utc(end)))
    currencies = df.group_by("billing_period").agg(pl.col("currency").n_unique().alias("n")).filter(pl.col("n") > 1)
    if currencies.height:
        raise MixedCurrencyError(
            f"Cost Explorer returned several currencies for {currencies['billing_period'][0]}",
            file="GetCostAndUsage",
            column="Unit",
            fix="one tenant bills in one currency; split the payer accounts into tenants",
        )
    sl = Slice(_utc(start), _utc(end), only_source_format=SOURCE_FORMAT)
    with run_workdir("ce") as work:
        cur_days = _days_with_cur(lake_uri, tenant.id, start, end)
        df = df.filter(~pl.col("usage_date").is_in(sorted(cur_days)))
        by_day = {}
        for (day,), part in df.partition_by("usage_date", as_dict=True).items():
            path = work / "staged" / f"{day}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            part.write_parquet(path)
            by_day[day] = [path]
        days = replace_slice(lake_uri, tenant.id, by_day, sl, work / "w")
        lake = lake_totals(fetch_slice_files(lake_uri, tenant.id, sl, work / "r"), sl)
    return CostExplorerBackfill(
        _summary(tenant.id, df, lake, len(days), pull_id), log, start, end, sorted(cur_days), totals_by_day(df)
    )


def _summary(tenant_id: str, df: pl.DataFrame, lake: pl.DataFrame, days_written: int, pull_id: str) -> IngestSummary:
    summary = IngestSummary(tenant_id)
    summary.rows, summary.days_written = df.height, days_written
    summary.hours = df["usage_start"].n_unique()
    for lit, cost, amortized in (
        df.group_by("line_item_type")
        .agg(pl.col("unblended_cost").sum(), pl.col("amortized_cost").sum())
        .sort("line_item_type")
        .iter_rows()
    ):
        summary.cost_by_line_item_type[lit] = float(cost)
        summary.amortized_by_line_item_type[lit] = float(amortized)
    got = totals_by_period(lake)
    summary.unblended_by_day = totals_by_day(lake)
    for bp, n, cost in (
        df.group_by("billing_period").agg(pl.len(), pl.col("unblended_cost").sum()).sort("billing_period").iter_rows()
    ):
        g = got.get(bp, {"rows": 0, "unblended_cost": 0.0})
        summary.periods.append(PeriodTotals(bp, n, int(g["rows"]), float(cost), float(g["unblended_cost"]), False))
    summary.deliveries.append(
        {
            "delivery_id": pull_id,
            "billing_period": None,
            "format": SOURCE_FORMAT,
            "manifest": None,
            "files": 0,
            "is_final": False,
        }
    )
    return summary


def _days_with_cur(lake_uri: str, tenant_id: str, start: date, end: date) -> set[date]:
    """Days of [start, end) whose lake files hold rows of another source than Cost Explorer. Read from each file's
    Parquet footer (source_format min/max per row group): on S3 two small ranged GETs per file, not the whole day."""
    out = set()
    for m in months.current_months(lake_uri, tenant_id):
        for f in m.files:
            if (
                start <= f.usage_date < end
                and f.usage_date not in out
                and not _only_cost_explorer(layout.line_items_file_uri(lake_uri, tenant_id, m.billing_period, f.name))
            ):
                out.add(f.usage_date)
    return out


def _only_cost_explorer(uri: str) -> bool:
    with fs.open_ranged(uri) as fh:
        meta = pq.ParquetFile(fh).metadata
        column = meta.schema.names.index("source_format")
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(column).statistics
            if stats is None or not stats.has_min_max:
                return False  # no statistics: cannot tell, so never overwrite the day
            if (stats.min, stats.max) != (SOURCE_FORMAT, SOURCE_FORMAT):
                return False
    return True
