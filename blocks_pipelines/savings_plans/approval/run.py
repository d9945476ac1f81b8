"""The body of `sp_approvals` when it is materialized from the launchpad: a decision that cannot silently fail.

The run checks the decision (an approver named, a proposal of this tenant still awaiting a decision, the confirmed
commitment equal to the proposal's), records it in the state store and fails unless it is the decision on record.
So a green run means the proposal is decided as the run says; a red one says why and how to fix it."""

from __future__ import annotations

import dagster as dg

from blocks_pipelines.savings_plans.approval.view import status_events
from blocks_pipelines.savings_plans.proposals import decide
from blocks_pipelines.savings_plans.purchase.terms import purchase_terms
from blocks_pipelines.state.records import NotFoundError, ProposalStatus, tenant_of_proposal
from blocks_pipelines.state.store import StateStore

CONFIRM_TOLERANCE = 0.0005  # the hint prints the commitment to three decimals, AWS's $/h precision


def _pending_hint(store: StateStore, tenant_id: str) -> str:
    pending = store.list_proposals(tenant_id, [ProposalStatus.pending_approval])
    if not pending:
        return f"{tenant_id} has no proposal awaiting approval (materialize {tenant_id}/sp_proposals to make one)"
    return "proposals awaiting approval: " + ", ".join(p.proposal_id for p in pending)


def check_request(
    store: StateStore, tenant_id: str, proposal_id: str, approver: str, confirm_hourly_commitment: float | None
):
    """The proposal a decision names, or dg.Failure saying what is wrong and what to enter instead."""
    proposal_id = proposal_id.strip()
    if not approver.strip():
        raise dg.Failure(
            "approver is empty: enter your name in the run config (approver: Jane Doe); the decision "
            "is recorded under it in the audit log. Nothing was decided."
        )
    if not proposal_id:
        raise dg.Failure(f"proposal_id is empty; {_pending_hint(store, tenant_id)}. Nothing was decided.")
    try:
        if tenant_of_proposal(proposal_id) != tenant_id:
            raise dg.Failure(
                f"proposal {proposal_id} belongs to tenant {tenant_of_proposal(proposal_id)}, not "
                f"{tenant_id}: decide it from {tenant_of_proposal(proposal_id)}/sp_approvals. "
                "Nothing was decided."
            )
        proposal = store.get_proposal(proposal_id)
    except (ValueError, NotFoundError) as exc:
        raise dg.Failure(
            f"unknown proposal {proposal_id!r} ({exc}); {_pending_hint(store, tenant_id)}. Nothing was decided."
        ) from None
    if (
        confirm_hourly_commitment is not None
        and abs(confirm_hourly_commitment - proposal.hourly_commitment) > CONFIRM_TOLERANCE
    ):
        raise dg.Failure(
            f"confirm_hourly_commitment {confirm_hourly_commitment:.3f} $/h does not match proposal "
            f"{proposal_id} ({proposal.hourly_commitment:.3f} $/h): check you are deciding the "
            "proposal you reviewed. Nothing was decided."
        )
    return proposal


def record_approval(
    context: dg.AssetExecutionContext,
    tenant_id: str,
    store: StateStore,
    proposal_id: str,
    decision: str,
    approver: str,
    note: str,
    confirm_hourly_commitment: float | None,
) -> dg.MaterializeResult:
    proposal = check_request(store, tenant_id, proposal_id, approver, confirm_hourly_commitment)
    try:
        outcome = decide(
            store,
            proposal.proposal_id,
            decision,
            approver,
            note,  # type: ignore[arg-type]
            source=f"dagster:run:{context.run_id}",
        )
    except ValueError as exc:
        raise dg.Failure(f"{exc}. Nothing was decided.") from None
    on_record = outcome.decision
    same = on_record is not None and on_record.decision == decision and on_record.approver == approver.strip()
    if not outcome.recorded and not same:
        raise dg.Failure(
            f"{proposal.proposal_id}: {outcome.message}. This run's decision ({decision} by "
            f"{approver.strip()}) was not recorded."
        )
    terms = purchase_terms(outcome.proposal)
    if decision == "approve":
        confirmation = f"Approved by {approver.strip()}: Blocks will buy {terms.summary()}."
    else:
        confirmation = f"Rejected by {approver.strip()}: nothing will be bought (the proposal was {terms.summary()})."
    if not outcome.recorded:
        confirmation += " (Already recorded by an earlier run; nothing changed.)"
    context.log.info(confirmation)
    for event in status_events(store, outcome.proposal):
        context.log_event(event)
    return dg.MaterializeResult(
        metadata={
            "proposal_id": proposal.proposal_id,
            "decision": decision,
            "approver": approver.strip(),
            "note": note,
            "confirmation": confirmation,
            "proposal_status": outcome.proposal.status.value,
            **{k: v for k, v in terms.metadata().items() if v is not None},
        }
    )
