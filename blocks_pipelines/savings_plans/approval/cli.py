"""`blocks sp proposals` and `blocks sp approve`: the back office's command-line side of the approval gate.
Added to the `sp` group in savings_plans/cli.py. A CLI decision lands in the same store the Dagster sensor reads, so
the sensor launches the purchase whichever way the decision was made."""

from __future__ import annotations

import click

from blocks_pipelines.savings_plans.proposals import decide
from blocks_pipelines.savings_plans.purchase.terms import purchase_terms
from blocks_pipelines.state import NotFoundError, ProposalStatus, get_state_store


@click.command("proposals")
@click.option("--tenant", "tenant_id", required=True, help="Tenant id, e.g. acme_corp.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in ProposalStatus]),
    help="Only proposals in this status (repeatable). Default: all.",
)
def proposals(tenant_id: str, statuses: tuple[str, ...]) -> None:
    """List a tenant's Savings Plans proposals, newest last, with the command that approves a pending one."""
    store = get_state_store()
    found = store.list_proposals(tenant_id, [ProposalStatus(s) for s in statuses] if statuses else None)
    if not found:
        click.echo(f"no proposals for {tenant_id}" + (f" in {', '.join(statuses)}" if statuses else ""))
        return
    for p in found:
        purchase = store.get_purchase(p.proposal_id)
        click.echo(
            f"{p.proposal_id}  {p.status.value:<15} ${p.hourly_commitment:,.3f}/h  "
            f"{p.term_years}y {p.payment_option}  created {p.created_at:%Y-%m-%d %H:%M} "
            f"expires {p.expires_at:%Y-%m-%d %H:%M}"
        )
        if p.status_reason:
            click.echo(f"    reason: {p.status_reason}")
        if purchase and purchase.savings_plan_id:
            click.echo(f"    plan: {purchase.savings_plan_id} ({purchase.purchaser})")
        if p.status is ProposalStatus.pending_approval:
            click.echo(f"    approve: blocks sp approve {p.proposal_id} --approver NAME")


@click.command("approve")
@click.argument("proposal_id")
@click.option("--approver", required=True, help="Who decides (recorded in the audit log).")
@click.option("--reject", is_flag=True, help="Reject the proposal instead of approving it.")
@click.option("--note", default="", help="Why; shown with the proposal and kept in the audit log.")
def approve(proposal_id: str, approver: str, reject: bool, note: str) -> None:
    """Approve (or --reject) a pending proposal. The first decision wins; the approval sensor then buys it once."""
    try:
        outcome = decide(
            get_state_store(), proposal_id, "reject" if reject else "approve", approver, note, source="cli"
        )
    except (ValueError, NotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{proposal_id}: {outcome.message}")
    if not outcome.recorded:
        raise SystemExit(1)
    terms = purchase_terms(outcome.proposal).summary()
    click.echo(f"Blocks will buy {terms}." if not reject else f"Nothing will be bought (the proposal was {terms}).")
