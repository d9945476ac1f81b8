"""`blocks ingest SOURCE --tenant ID` and `blocks ingest --from-cost-explorer --tenant ID`: the same ingestion code
Dagster runs, in-process, printing a JSON summary."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

from blocks_pipelines.ingestion.errors import IngestError

DAY = click.DateTime(formats=["%Y-%m-%d"])


@click.command()
@click.argument("source", required=False)
@click.option("--tenant", "tenant_id", required=True, help="Tenant id (assets_config/tenants/<id>.yaml).")
@click.option("--lake", "lake_uri", default=None, help="Lake root (local path or s3://...); default BLOCKS_LAKE_URI.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "cur1", "cur2", "focus"]),
    default="auto",
    show_default=True,
    help="Source format; auto reads the manifest or the columns.",
)
@click.option(
    "--partial-month",
    is_flag=True,
    help="Let files without a manifest that cover only part of a billing month replace that whole month "
    "(the summary's partial_months lists them).",
)
@click.option(
    "--from-cost-explorer",
    "from_ce",
    is_flag=True,
    help="Instead of SOURCE: pull the tenant's spend from Cost Explorer through its role, for days without "
    "CUR (hourly for the last 14 days, daily before).",
)
@click.option(
    "--start",
    type=DAY,
    default=None,
    help="With --from-cost-explorer: first day; default the tenant's history_start, bounded by the 13 "
    "months Cost Explorer keeps.",
)
@click.option(
    "--end",
    type=DAY,
    default=None,
    help="With --from-cost-explorer: day after the last one; default through the last complete hour.",
)
def ingest(
    source: str | None,
    tenant_id: str,
    lake_uri: str | None,
    fmt: str,
    partial_month: bool,
    from_ce: bool,
    start: datetime | None,
    end: datetime | None,
) -> None:
    """Ingest SOURCE (a data file, a manifest, a folder or an s3:// prefix) into the tenant's lake line items.

    Each billing month found replaces that month in the lake; bad input leaves the lake untouched. With
    --from-cost-explorer, Cost Explorer rows replace earlier Cost Explorer rows and never touch days holding CUR."""
    if bool(source) == from_ce:
        raise click.UsageError("give either SOURCE or --from-cost-explorer")
    if not from_ce and (start or end):
        raise click.UsageError("--start and --end go with --from-cost-explorer")
    if from_ce:
        summary = _from_cost_explorer(tenant_id, lake_uri, start, end)
    else:
        summary = _from_source(source, tenant_id, lake_uri, fmt, partial_month)
    click.echo(json.dumps(summary, indent=2, default=str))
    if not summary["matches"]:
        differ = [
            f"{i['billing_period']} invoice {i['invoice_id']}" for i in summary.get("invoices", []) if not i["matches"]
        ]
        raise click.ClickException(
            "lake totals differ from the source totals (see "
            + (f"invoices: {', '.join(differ[:5])})" if differ else "periods)")
        )


def _from_source(source: str, tenant_id: str, lake_uri: str | None, fmt: str, partial_month: bool) -> dict:
    from tqdm import tqdm

    from blocks_pipelines.ingestion.deliveries import deliveries_in_source
    from blocks_pipelines.ingestion.ingest import ingest_deliveries
    from blocks_pipelines.tenants.config import resolve_tenant

    try:
        tenant = resolve_tenant(tenant_id)
        deliveries = deliveries_in_source(source)
        with tqdm(desc="lake days", unit="day", disable=None) as bar:
            return ingest_deliveries(
                tenant, deliveries, lake_uri=lake_uri, fmt=fmt, progress=bar, partial_month=partial_month
            ).to_dict()
    except (IngestError, KeyError) as exc:
        raise click.ClickException(str(exc)) from exc


def _from_cost_explorer(tenant_id: str, lake_uri: str | None, start: datetime | None, end: datetime | None) -> dict:
    from botocore.exceptions import BotoCoreError, ClientError

    from blocks_pipelines.connect.aws import error_message
    from blocks_pipelines.ingestion.cost_explorer import (
        CostExplorerThrottled,
        backfill_bounds,
        backfill_from_cost_explorer,
        skip_reason,
    )
    from blocks_pipelines.tenants.config import resolve_tenant

    try:
        tenant = resolve_tenant(tenant_id)
    except KeyError as exc:
        raise click.ClickException(str(exc)) from exc
    reason = skip_reason(tenant)
    if reason:
        raise click.ClickException(reason)
    now = datetime.now(timezone.utc)
    first, stop = backfill_bounds(tenant, start and start.date(), end and end.date(), now)
    if first >= stop:
        raise click.ClickException(
            f"nothing to pull: {first} is not before {stop} (history_start "
            f"{tenant.history_start}, Cost Explorer keeps 13 months before the current one)"
        )
    try:
        return backfill_from_cost_explorer(tenant, first, stop, lake_uri=lake_uri, now=now).to_dict()
    except ClientError as exc:
        raise click.ClickException(
            f"Cost Explorer through {tenant.connection.role_arn}: {error_message(exc)}. "
            "Run `blocks connect test` for what the role lacks"
        ) from exc
    except (IngestError, CostExplorerThrottled, BotoCoreError) as exc:
        raise click.ClickException(str(exc)) from exc
