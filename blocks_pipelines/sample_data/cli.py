"""`blocks cur ...`: generate sample Cost & Usage Reports for a tenant of the registry."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import click

from blocks_pipelines.sample_data.formats import FORMATS
from blocks_pipelines.sample_data.generator import generate_tenant_cur
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfigError, load_registry, resolve_source_uri

DEFAULT_FORMAT = {"cur1": "cur1-csv", "cur2": "cur2", "focus": "focus"}


@click.group()
def cur() -> None:
    """Sample Cost & Usage Reports (legacy CUR, CUR 2.0, FOCUS) for demo tenants and tests."""


def _parse_end(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected an ISO time such as 2026-11-25T16:00:00Z") from None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt


@cur.command("generate")
@click.option("--tenant", "tenant_id", required=True, help="Tenant id from the registry (assets_config/tenants).")
@click.option("--months", default=3, show_default=True, type=click.IntRange(min=1), help="Billing periods to write.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format. Default: from the tenant's cur_source.format (cur1 -> cur1-csv).",
)
@click.option(
    "--out",
    "out_uri",
    default=None,
    help="Local folder or s3://bucket/prefix. Default: the tenant's cur_source uri (relative to BLOCKS_HOME).",
)
@click.option("--seed", default=42, show_default=True, type=int, help="Same seed and arguments -> identical files.")
@click.option(
    "--start",
    default=None,
    metavar="YYYY-MM",
    help="First billing period. Default: the N months ending with the current one.",
)
@click.option(
    "--end",
    "end",
    default=None,
    metavar="ISO-TIME",
    help="Usage stops at this UTC time (default: now); the period holding it has no invoice id yet.",
)
@click.option(
    "--restatement",
    is_flag=True,
    help="Write a new delivery of the last period only, with a late credit/refund and changed usage.",
)
@click.option(
    "--scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Multiply the number of resources (1.0 = about 150k-200k rows per tenant-month).",
)
@click.option(
    "--rows-per-file",
    default=500_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Split a delivery into files of at most this many rows.",
)
@click.option(
    "--config-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding tenants/*.yaml. Default: BLOCKS_ASSETS_CONFIG.",
)
def generate(
    tenant_id: str,
    months: int,
    fmt: str | None,
    out_uri: str | None,
    seed: int,
    start: str | None,
    end: str | None,
    restatement: bool,
    scale: float,
    rows_per_file: int,
    config_dir: Path | None,
) -> None:
    """Generate hourly CUR for one tenant and print a JSON summary (files, rows, unblended cost per month)."""
    settings = get_settings()
    tenants_dir = (config_dir / "tenants") if config_dir else settings.tenants_dir
    try:
        tenants = {t.id: t for t in load_registry(tenants_dir)}
    except TenantConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    tenant = tenants.get(tenant_id)
    if tenant is None:
        known = ", ".join(sorted(tenants)) or "none"
        raise click.ClickException(f"tenant {tenant_id!r} is not in {tenants_dir} (known: {known})")
    fmt = fmt or DEFAULT_FORMAT[tenant.cur_source.format.value]
    out_uri = out_uri or resolve_source_uri(tenant.cur_source, settings.home)
    try:
        summary = generate_tenant_cur(
            tenant,
            fmt=fmt,
            out_uri=out_uri,
            months=months,
            seed=seed,
            start=start,
            end=_parse_end(end),
            restatement=restatement,
            scale=scale,
            rows_per_file=rows_per_file,
            progress=True,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(summary.to_dict(), indent=2))
