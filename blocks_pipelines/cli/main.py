"""The `blocks` command line. Each domain owns its commands in its own module; this file only assembles them,
lazily, so `blocks --help` stays fast and one domain's imports never slow another's commands."""

from __future__ import annotations

import importlib

import click

COMMANDS: dict[str, str] = {
    "tenants": "blocks_pipelines.cli.tenants:tenants",
    "cur": "blocks_pipelines.sample_data.cli:cur",
    "ingest": "blocks_pipelines.ingestion.cli:ingest",
    "schema": "blocks_pipelines.cli.schema:schema",
    "materialize": "blocks_pipelines.cli.materialize:materialize",
    "demo": "blocks_pipelines.cli.demo:demo",
    "sp": "blocks_pipelines.savings_plans.cli:sp",
    "serve": "serving.cli:serve",
    "dev-token": "serving.cli:dev_token",
    "connect": "blocks_pipelines.connect.cli:connect",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:  # a domain not installed yet must not break the others
            reason = str(exc)  # `exc` is unbound once the except block ends
            return click.Command(name, help=f"(unavailable: {reason})", callback=lambda: _unavailable(name, reason))


def _unavailable(name: str, reason: str) -> None:
    raise click.ClickException(f"'blocks {name}' is unavailable: {reason}")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Blocks data platform: tenants, sample CUR, ingestion, dbt models, Savings Plans, serving."""


if __name__ == "__main__":
    main()
