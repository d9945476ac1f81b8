"""`blocks materialize`: the pipeline in-process, recorded in the Dagster instance ($DAGSTER_HOME)."""

from __future__ import annotations

import click

from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfigError, load_registry


@click.command()
@click.option("--tenant", "tenant_ids", multiple=True, help="Tenant id (repeatable; default: every tenant).")
@click.option(
    "--select",
    default=None,
    help="Dagster asset selection, e.g. 'key:\"globex/spend_hourly\"+' (default: the whole pipeline: "
    "every delivery, dbt models over the history, rollups and SP proposals).",
)
def materialize(tenant_ids: tuple[str, ...], select: str | None) -> None:
    """Run the pipeline in-process, without a daemon, as a data engineer's CI would. Exit 1 if any run failed."""
    from blocks_pipelines.cli.demo import prepare_dagster_home
    from blocks_pipelines.in_process import materialize_all

    try:
        registry = load_registry(get_settings().tenants_dir)
    except TenantConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    unknown = set(tenant_ids) - {t.id for t in registry}
    if unknown:
        raise click.ClickException(f"unknown tenant(s) {sorted(unknown)}; see `blocks tenants list`")
    chosen = [t for t in registry if not tenant_ids or t.id in tenant_ids]
    prepare_dagster_home()
    report = materialize_all(chosen, select=select, echo=click.echo)
    click.echo(report)
    if "FAILED" in report.splitlines()[0]:
        raise SystemExit(1)
