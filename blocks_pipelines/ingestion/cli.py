"""`blocks ingest SOURCE --tenant ID`: the same ingestion code Dagster runs, in-process, printing a JSON summary."""

from __future__ import annotations

import json

import click

from blocks_pipelines.ingestion.errors import IngestError


@click.command()
@click.argument("source")
@click.option("--tenant", "tenant_id", required=True, help="Tenant id (assets_config/tenants/<id>.yaml).")
@click.option("--lake", "lake_uri", default=None, help="Lake root (local path or s3://...); default BLOCKS_LAKE_URI.")
@click.option("--format", "fmt", type=click.Choice(["auto", "cur1", "cur2", "focus"]), default="auto",
              show_default=True, help="Source format; auto reads the manifest or the columns.")
def ingest(source: str, tenant_id: str, lake_uri: str | None, fmt: str) -> None:
    """Ingest SOURCE (a data file, a manifest, a folder or an s3:// prefix) into the tenant's lake line items.

    Each billing month found replaces that month in the lake; bad input leaves the lake untouched."""
    from tqdm import tqdm

    from blocks_pipelines.ingestion.api import ingest_deliveries
    from blocks_pipelines.tenants.config import resolve_tenant
    from blocks_pipelines.ingestion.deliveries import deliveries_in_source

    try:
        tenant = resolve_tenant(tenant_id)
        deliveries = deliveries_in_source(source)
        with tqdm(desc="lake days", unit="day", disable=None) as bar:
            summary = ingest_deliveries(tenant, deliveries, lake_uri=lake_uri, fmt=fmt, progress=bar)
    except (IngestError, KeyError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(summary.to_dict(), indent=2, default=str))
    if not summary.matches:
        raise click.ClickException("lake totals differ from the source totals (see periods)")
