"""`blocks tenants list|validate|add|setup`: the tenant registry from the command line."""

from __future__ import annotations

import json
import secrets
from datetime import date
from pathlib import Path

import click
from pydantic import TypeAdapter, ValidationError

from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants import billing_accounts as ba
from blocks_pipelines.tenants.config import (
    AccountId,
    TenantConfig,
    TenantConfigError,
    describe_validation_error,
    dump_tenant,
    load_registry,
    load_tenant_file,
    tenant_files,
)


def _tenants_dir(config_dir: str | None) -> Path:
    return Path(config_dir) / "tenants" if config_dir else get_settings().tenants_dir


config_option = click.option(
    "--config-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Assets config folder holding tenants/ (default: $BLOCKS_ASSETS_CONFIG or ./assets_config).",
)


@click.group()
def tenants() -> None:
    """Manage the tenant registry (one YAML per tenant in assets_config/tenants/)."""


@tenants.command("list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_tenants(config_dir: str | None, as_json: bool) -> None:
    """List registered tenants."""
    try:
        registry = load_registry(_tenants_dir(config_dir))
    except TenantConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([t.model_dump(mode="json") for t in registry], indent=2))
        return
    click.echo(f"{'id':20} {'format':6} {'billing':14} {'history':10} {'accounts':>8}  name")
    for t in registry:
        click.echo(
            f"{t.id:20} {t.cur_source.format.value:6} {t.billing_mode.value:14} {t.history_start.isoformat():10} "
            f"{len(t.all_account_ids()):>8}  {t.name}"
        )


@tenants.command("validate")
@config_option
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
def validate(config_dir: str | None, files: tuple[str, ...]) -> None:
    """Validate tenant files (all of the registry when FILES is empty); exit 1 on the first bad registry."""
    paths = [Path(f) for f in files] or tenant_files(_tenants_dir(config_dir))
    bad = 0
    for path in paths:
        try:
            t = load_tenant_file(path)
            click.echo(f"ok    {path} ({t.id})")
        except TenantConfigError as exc:
            bad += 1
            click.echo(f"FAIL  {exc}", err=True)
    if bad:
        raise click.ClickException(f"{bad} of {len(paths)} tenant file(s) invalid")
    if not files:  # registry-level rules (unique ids) only apply to the whole folder
        try:
            load_registry(_tenants_dir(config_dir))
        except TenantConfigError as exc:
            raise click.ClickException(str(exc)) from exc


def new_tenant(
    tenant_id: str,
    name: str,
    payer: str,
    fmt: str,
    source_uri: str | None,
    report_name: str | None,
    history_start: date,
    max_hourly_commitment: float,
    role_arn: str | None = None,
    billing_accounts: dict[str, list[str]] | None = None,
) -> TenantConfig:
    """A tenant with safe defaults: data-read scope only, connection pending, a fresh unguessable ExternalId.
    billing_accounts: other providers' accounts by provider (azure, gcp, oci, other), whose FOCUS it ingests."""
    other = {p: ids for p, ids in (billing_accounts or {}).items() if ids}
    return TenantConfig.model_validate(
        {
            **({"billing_accounts": other} if other else {}),
            "id": tenant_id,
            "name": name,
            "billing_mode": "blocks_vendor",
            "organization": {
                "payer_account_id": payer,
                "organizational_units": ["Root"],
                "linked_accounts": [{"account_id": payer, "name": "management", "ou_path": "Root"}],
            },
            "connection": {
                "role_arn": role_arn or f"arn:aws:iam::{payer}:role/BlocksDataRead",
                "external_id": f"blocks-{tenant_id}-{secrets.token_hex(8)}",
                "scopes": ["data_read"],
                "status": "pending",
            },
            "cur_source": {
                "uri": source_uri or f"sources/{tenant_id}",
                "format": fmt,
                "report_name": report_name or f"{tenant_id.replace('_', '-')}-{fmt}",
            },
            "history_start": history_start.isoformat(),
            "guardrails": {"max_hourly_commitment": max_hourly_commitment},
        }
    )


def _account_id(value: str) -> str:
    try:
        return TypeAdapter(AccountId).validate_python(value)  # the tenant file's own rule
    except ValidationError:
        raise click.BadParameter(f"an AWS account id is 12 digits, got {value!r} ({len(value)} characters)") from None


def _billing_account_options(command):
    """--azure-billing-account, --gcp-billing-account, --oci-tenancy, --other-billing-account (each repeatable)."""
    helps = {
        "azure": "Azure billing account: /providers/Microsoft.Billing/billingAccounts/<id>, its GUID name or an EA "
        "enrollment number.",
        "gcp": "Google Cloud billing account, XXXXXX-XXXXXX-XXXXXX.",
        "oci": "OCI tenancy OCID, ocid1.tenancy.oc1..<unique id>.",
        "other": "Billing account id at another FOCUS provider (as its export writes BillingAccountId).",
    }
    for provider in reversed(("azure", "gcp", "oci", "other")):
        command = click.option(ba.CLI_FLAGS[provider], provider, multiple=True, help=helps[provider] + " Repeatable.")(
            command
        )
    return command


@tenants.command("add")
@config_option
@click.option("--id", "tenant_id", required=True, help="Tenant id: lowercase letters, digits and _.")
@click.option("--name", required=True, help="Display name.")
@click.option(
    "--payer",
    required=True,
    callback=lambda ctx, param, v: _account_id(v),
    help="12-digit payer (management) account id.",
)
@click.option("--format", "fmt", type=click.Choice(["cur1", "cur2", "focus"]), default="cur2", show_default=True)
@click.option("--source-uri", default=None, help="s3://bucket/prefix or a local folder (default: sources/<id>).")
@click.option("--report-name", default=None, help="CUR report / Data Exports export name.")
@click.option("--history-start", type=click.DateTime(["%Y-%m-%d"]), required=True, help="First day to backfill.")
@click.option("--max-hourly-commitment", type=float, default=10.0, show_default=True, help="SP cap in $/h.")
@click.option("--role-arn", default=None, help="Data-read role ARN (default: <payer>:role/BlocksDataRead).")
@click.option("--force", is_flag=True, help="Overwrite an existing tenant file.")
@_billing_account_options
def add(
    config_dir,
    tenant_id,
    name,
    payer,
    fmt,
    source_uri,
    report_name,
    history_start,
    max_hourly_commitment,
    role_arn,
    force,
    azure,
    gcp,
    oci,
    other,
) -> None:
    """Register a new tenant (writes assets_config/tenants/<id>.yaml after validating it).

    A multi-cloud tenant also lists its Azure, Google Cloud or OCI billing accounts: their FOCUS exports are then
    ingested beside the AWS CUR, and rows billed to any other account are refused."""
    directory = _tenants_dir(config_dir)
    path = directory / f"{tenant_id}.yaml"
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite")
    try:
        tenant = new_tenant(
            tenant_id,
            name,
            payer,
            fmt,
            source_uri,
            report_name,
            history_start.date(),
            max_hourly_commitment,
            role_arn,
            {"azure": list(azure), "gcp": list(gcp), "oci": list(oci), "other": list(other)},
        )
    except ValidationError as exc:
        raise click.ClickException(f"{path}: " + "; ".join(describe_validation_error(exc))) from exc
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_tenant(tenant))
    click.echo(f"wrote {path}")


def with_billing_accounts(tenant: TenantConfig, new: dict[str, list[str]]) -> tuple[TenantConfig, list[str]]:
    """The tenant with new billing accounts added to its lists (ids it already has are skipped, in any spelling);
    also returns the ids added."""
    current = tenant.billing_accounts.model_dump() if tenant.billing_accounts else {}
    added = []
    for provider, ids in new.items():
        listed = list(current.get(provider, []))
        for i in ids:
            if not ba.matches(provider, listed, i):
                listed.append(i)
                added.append(i)
        current[provider] = listed
    doc = tenant.model_dump(mode="json", exclude_none=True)
    doc["billing_accounts"] = {p: ids for p, ids in current.items() if ids}
    return TenantConfig.model_validate(doc), added


@tenants.command("add-account")
@config_option
@click.argument("tenant_id")
@_billing_account_options
def add_account(config_dir, tenant_id, azure, gcp, oci, other) -> None:
    """Register more billing accounts (Azure, Google Cloud, OCI...) for an existing tenant: its FOCUS exports from
    those accounts are then accepted. Rewrites assets_config/tenants/<id>.yaml after validating it (as `tenants add`
    writes it: comments in the file are not kept)."""
    new = {"azure": list(azure), "gcp": list(gcp), "oci": list(oci), "other": list(other)}
    if not any(new.values()):
        raise click.UsageError(
            "give at least one account, e.g. --azure-billing-account /providers/Microsoft.Billing/billingAccounts/<id>"
        )
    path = _tenants_dir(config_dir) / f"{tenant_id}.yaml"
    if not path.exists():
        raise click.ClickException(f"{path} does not exist: register the tenant first (blocks tenants add)")
    try:
        tenant, added = with_billing_accounts(load_tenant_file(path), new)
    except TenantConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    except ValidationError as exc:
        raise click.ClickException(f"{path}: " + "; ".join(describe_validation_error(exc))) from exc
    path.write_text(dump_tenant(tenant))
    click.echo(f"wrote {path}: added {', '.join(added)}" if added else f"{path}: every account was already listed")


def _attach_setup() -> None:
    """`blocks tenants setup` lives with the onboarding code (connect domain)."""
    try:
        from blocks_pipelines.connect.cli import tenants_setup
    except ImportError:
        return
    tenants.add_command(tenants_setup, "setup")


_attach_setup()
