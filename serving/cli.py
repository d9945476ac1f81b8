"""`blocks serve` and `blocks dev-token`."""

from __future__ import annotations

import click

from blocks_pipelines.settings import get_settings


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="interface to bind (keep loopback in dev)")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="uvicorn worker processes")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="one line per request (behind a load balancer that logs requests, turn it off)",
)
def serve(host: str, port: int, workers: int, log_level: str, access_log: bool) -> None:
    """Run the Blocks API (FastAPI + Major Tom) with uvicorn.

    Reads marts from BLOCKS_LAKE_URI. Without BLOCKS_COGNITO_* settings it accepts tokens from
    `blocks dev-token`; with BLOCKS_ENV=production it requires Cognito."""
    import uvicorn

    from serving.config import ConfigError, load_config

    try:
        load_config(get_settings())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    uvicorn.run(
        "serving.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
    )


@click.command("dev-token")
@click.option("--tenant", "tenant_id", required=True, help="tenant id the token is scoped to")
@click.option("--role", type=click.Choice(["viewer", "admin", "backoffice"]), default="viewer", show_default=True)
@click.option("--ttl", type=click.IntRange(1, 7 * 24 * 3600), default=3600, show_default=True, help="lifetime, s")
@click.option("--subject", default=None, help="the token's sub (default dev-<tenant>)")
def dev_token(tenant_id: str, role: str, ttl: int, subject: str | None) -> None:
    """Print a development bearer token the local `blocks serve` accepts (RS256, key in $BLOCKS_HOME/dev_jwt/)."""
    from blocks_pipelines.tenants.config import load_registry
    from serving.auth.dev_issuer import DevIssuer

    settings = get_settings()
    if settings.is_production:
        raise click.ClickException("dev tokens are disabled when BLOCKS_ENV=production; sign in through Cognito")
    known = {t.id for t in load_registry(settings.tenants_dir)}
    if tenant_id not in known:
        raise click.ClickException(
            f"unknown tenant {tenant_id!r}; registered: {', '.join(sorted(known)) or 'none'} "
            f"(see {settings.tenants_dir})"
        )
    roles = {"admin": ["viewer", "admin"], "backoffice": ["viewer", "backoffice"]}.get(role, ["viewer"])
    click.echo(DevIssuer(settings.home).issue(tenant_id, roles, ttl, subject))
