"""`blocks connect ...` (template, test, error-catalog) and `blocks tenants setup` (attached by the lead's CLI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml

from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig, TenantConfigError, load_registry


def _tenant(tenant_id: str) -> TenantConfig:
    try:
        tenants = {t.id: t for t in load_registry(get_settings().tenants_dir)}
    except TenantConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if tenant_id not in tenants:
        raise click.ClickException(
            f"no tenant {tenant_id!r} in {get_settings().tenants_dir} (known: {', '.join(sorted(tenants)) or 'none'}); "
            "create it with `blocks tenants setup --file tenant.yaml`"
        )
    return tenants[tenant_id]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def connect() -> None:
    """Connect a customer's AWS account: CloudFormation stack, connection test, error catalog."""


@connect.command("template")
@click.option("--tenant", "tenant_id", required=True, help="Tenant id from assets_config/tenants.")
@click.option("--with-cur-export", is_flag=True, help="Also create a CUR 2.0 export and its bucket (us-east-1).")
@click.option("--with-purchase-role", is_flag=True, help="Also create the separate Savings Plans purchase role.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the YAML here (default: stdout).")
@click.option("--template-url", help="Where the template will be hosted, for the quick-create link.")
def template_cmd(
    tenant_id: str, with_cur_export: bool, with_purchase_role: bool, out: Path | None, template_url: str | None
) -> None:
    """CloudFormation template for a tenant, its quick-create link and a readable policy preview.

    The YAML goes to --out (or stdout); the link and preview go to stderr so the YAML can be piped."""
    from blocks_pipelines.connect.template import (
        build_template,
        default_template_url,
        policy_preview,
        quick_create_url,
        render_yaml,
    )

    tenant = _tenant(tenant_id)
    flags = {"with_cur_export": with_cur_export, "with_purchase_role": with_purchase_role}
    text = render_yaml(build_template(tenant, **flags))
    if out:
        out.write_text(text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)
    url = quick_create_url(tenant, template_url or default_template_url(tenant), **flags)
    click.echo(f"\nQuick-create link (host the template at the templateURL first):\n{url}\n", err=True)
    click.echo(policy_preview(tenant, **flags), err=True)


@connect.command("test")
@click.option("--tenant", "tenant_id", required=True, help="Tenant id from assets_config/tenants.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def test_cmd(tenant_id: str, as_json: bool) -> None:
    """Assume the tenant's role and check CUR, Glue/Athena and Cost Explorer access; exit 1 if a check fails."""
    from blocks_pipelines.connect.checks import run_connection_checks

    results = run_connection_checks(_tenant(tenant_id), actor="cli")
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        marks = {"pass": "PASS", "fail": "FAIL", "skip": "skip"}
        for r in results:
            click.echo(f"{marks[r.status]:4}  {r.name:17} {r.message}")
            if r.status == "fail":
                click.echo(f"      {r.error_code}: {r.remediation}")
    if any(r.status == "fail" for r in results):
        sys.exit(1)


@connect.command("error-catalog")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the Markdown here.")
@click.option("--check", "check_only", is_flag=True, help="Exit 1 if --out differs from the catalog in code.")
def error_catalog_cmd(out: Path | None, check_only: bool) -> None:
    """Render the connect-flow error catalog (docs/error_catalog.md) from blocks_pipelines/connect/errors.py."""
    from blocks_pipelines.connect.errors import render_markdown

    text = render_markdown()
    if check_only:
        if out is None or not out.exists() or out.read_text() != text:
            raise click.ClickException(f"{out} is stale: run `blocks connect error-catalog --out {out}`")
        return
    if out:
        out.write_text(text)
    else:
        click.echo(text, nl=False)


@click.command("setup")
@click.option(
    "--file",
    "tenant_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A tenant YAML (same fields as assets_config/tenants/*.yaml) to register.",
)
@click.option("--tenant", "tenant_id", help="An already registered tenant: reload Dagster and resume its backfill.")
@click.option(
    "--dagster-url",
    envvar="BLOCKS_DAGSTER_URL",
    default="http://127.0.0.1:3000",
    show_default=True,
    help="Dagster webserver (env BLOCKS_DAGSTER_URL).",
)
@click.option("--location", default="blocks", show_default=True, help="Dagster code location to reload.")
def tenants_setup(tenant_file: Path | None, tenant_id: str | None, dagster_url: str, location: str) -> None:
    """Register a tenant, reload Dagster and launch its history backfill (one backfill per billing month).

    Running it again launches nothing new."""
    from tqdm import tqdm

    from blocks_pipelines.connect.dagster_api import DagsterApiError, DagsterGateway, client_from_url
    from blocks_pipelines.connect.setup import SetupProgress, coerce_tenant, setup_tenant

    if bool(tenant_file) == bool(tenant_id):
        raise click.UsageError("give exactly one of --file or --tenant")
    try:
        if tenant_file:
            raw = yaml.safe_load(tenant_file.read_text())
            if not isinstance(raw, dict):
                raise click.ClickException(f"{tenant_file}: expected a mapping of tenant fields at the top level")
            tenant = coerce_tenant(raw, str(tenant_file))
        else:
            tenant = _tenant(tenant_id or "")
    except TenantConfigError as exc:
        raise click.ClickException(str(exc)) from exc

    bar = None

    def progress(p: SetupProgress) -> None:
        nonlocal bar
        if p.stage != "backfill":
            click.echo(p.message)
            return
        if bar is None:
            bar = tqdm(total=p.total, desc=f"backfill {tenant.id}", unit="month")
        bar.set_postfix_str(p.message)
        bar.update(1)

    gateway = DagsterGateway(client_from_url(dagster_url), location)
    try:
        report = setup_tenant(tenant, dagster=gateway, actor="cli", on_progress=progress)
    except (DagsterApiError, TenantConfigError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        if bar is not None:
            bar.close()
    click.echo(
        f"{tenant.id}: registry {report.registry}, {report.months} month(s): "
        f"{len(report.launched)} backfill(s) launched, {len(report.already_launched)} already launched"
    )
