import click

from blocks_pipelines.ingestion.schema import CANONICAL_COLUMNS, schema_markdown


@click.command()
@click.option("--markdown", is_flag=True, help="Print docs/canonical_schema.md instead of a compact listing.")
def schema(markdown: bool) -> None:
    """Show the canonical line-item schema every CUR format is normalized to."""
    if markdown:
        click.echo(schema_markdown(), nl=False)
        return
    for c in CANONICAL_COLUMNS:
        click.echo(f"{c.name:32} {str(c.dtype):28} {'required' if c.required else ''}")
