"""`blocks sp cancel-queued`: ask to cancel a queued plan. It creates a proposal; the approval gate decides."""

from __future__ import annotations

import click

from blocks_pipelines.state import NotFoundError, get_state_store
from blocks_pipelines.tenants.config import resolve_tenant


@click.command("cancel-queued")
@click.argument("purchase_proposal_id")
@click.option("--requested-by", required=True, help="Who asks (recorded with the proposal and in the audit log).")
def cancel_queued(purchase_proposal_id: str, requested_by: str) -> None:
    """Propose to cancel the queued plan bought by PURCHASE_PROPOSAL_ID (DeleteQueuedSavingsPlan once approved)."""
    from blocks_pipelines.savings_plans.lifecycle.rollback import propose_cancel_queued
    from blocks_pipelines.state.records import tenant_of_proposal

    try:
        tenant = resolve_tenant(tenant_of_proposal(purchase_proposal_id))
        proposal = propose_cancel_queued(get_state_store(), tenant, purchase_proposal_id, requested_by)
    except (ValueError, NotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{proposal.proposal_id}: {proposal.status.value}: {proposal.rationale}")
    click.echo(f"    approve: blocks sp approve {proposal.proposal_id} --approver NAME")
