"""`blocks sp ...`: Savings Plans commands. Other modules add their commands to the `sp` group."""

from __future__ import annotations

import click


@click.group()
def sp() -> None:
    """Savings Plans: backtest the analyzer, review proposals, record approvals."""


@sp.command("backtest")
@click.option(
    "--months",
    type=click.IntRange(2, 60),
    default=24,
    show_default=True,
    help="Monthly purchase decisions per scenario (1-year plans).",
)
@click.option(
    "--seed",
    "seeds",
    type=int,
    multiple=True,
    default=(0, 1, 2),
    show_default=True,
    help="Scenario seed; repeat for several scenarios per family.",
)
@click.option(
    "--families",
    default=None,
    help="Comma-separated scenario families (default: all; see savings_plans.backtest.scenarios.FAMILIES), e.g. "
    "steady,quarterly,churn.",
)
@click.option("--detail", is_flag=True, help="Also print one line per scenario.")
def backtest(months: int, seeds: tuple[int, ...], families: str | None, detail: bool) -> None:
    """Replay the monthly ladder, AWS's lookback method and a one-shot purchase on synthetic usage with the
    future hidden, and print net savings as a fraction of the hindsight-best monthly purchases."""
    from tqdm import tqdm

    from blocks_pipelines.savings_plans.backtest.evaluate import format_table, run_backtest
    from blocks_pipelines.savings_plans.backtest.scenarios import FAMILIES

    chosen = FAMILIES if not families else tuple(f.strip() for f in families.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FAMILIES]
    if unknown:
        raise click.BadParameter(f"unknown {unknown}; choose from {', '.join(FAMILIES)}", param_hint="--families")
    with tqdm(total=len(chosen) * len(seeds), desc="scenarios", unit="scenario") as bar:
        results = run_backtest(chosen, seeds, months, progress=lambda _: bar.update())
    if detail:
        for r in results:
            fractions = "  ".join(f"{p} {r.fraction(p):.3f}" for p in r.values)
            click.echo(f"{r.family:<14} seed {r.seed:<3} {fractions}  ({r.description})")
    click.echo(format_table(results))


def _attach_approval_commands() -> None:
    from blocks_pipelines.savings_plans.approval.cli import approve, proposals
    from blocks_pipelines.savings_plans.lifecycle.rollback_cli import cancel_queued

    sp.add_command(proposals)
    sp.add_command(approve)
    sp.add_command(cancel_queued)


_attach_approval_commands()
