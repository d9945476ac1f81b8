"""What the back office sees of a proposal in Dagster: how to decide it, and its live status.

A materialization of `sp_proposals` is a snapshot from when the proposal was made; the decision and the purchase
happen later. So every status change is also written as an observation on `sp_proposals` (by the approval run,
the purchase run and the approval sensor, whichever saw it), and the asset's page shows the proposal as it is now.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dagster as dg

from blocks_pipelines.savings_plans.launchpad import launchpad_path, location_of
from blocks_pipelines.savings_plans.purchase_terms import purchase_terms
from blocks_pipelines.state.models import TERMINAL, Proposal, ProposalStatus, utcnow
from blocks_pipelines.state.store import StateStore

PROPOSALS = "sp_proposals"
RECENT = timedelta(days=7)


def proposals_key(tenant_id: str) -> dg.AssetKey:
    return dg.AssetKey([tenant_id, PROPOSALS])


def approve_command(proposal_id: str) -> str:
    return f"blocks sp approve {proposal_id} --approver NAME [--note TEXT]   (add --reject to reject)"


def approval_run_config(tenant_id: str, proposal: Proposal, decision: str = "approve") -> str:
    """The launchpad config that decides `proposal`, as YAML to paste. The commitment is repeated as a
    confirmation: the run refuses to record a decision whose commitment differs from the proposal's."""
    return (f"ops:\n  {tenant_id}__sp_approvals:\n    config:\n      proposal_id: {proposal.proposal_id}\n"
            f"      decision: {decision}   # or reject\n      approver: \"\"   # your name, required\n"
            f"      confirm_hourly_commitment: {proposal.hourly_commitment:.3f}\n      note: \"\"\n")


def approve_in_ui(tenant_id: str, proposal: Proposal) -> str:
    """Markdown for the asset page. The config is a fenced block, so no part of it can be taken for HTML; the link
    opens the launchpad with that config filled in."""
    config = approval_run_config(tenant_id, proposal)
    location = location_of(tenant_id)
    link = (f"[Open the approval in the launchpad, prefilled]({launchpad_path(location, tenant_id, config)}): "
            "enter your name as approver (or set decision: reject), then Materialize.\n\n"
            "Or: " if location else "")
    return (f"Approving buys {purchase_terms(proposal).summary()}.\n\n{link}"
            f"asset **{tenant_id}/sp_approvals** > Materialize > Open launchpad, paste this config, "
            f"fill in your name, then Materialize:\n\n```yaml\n{config}```\n")


def _history_table(proposal: Proposal) -> str:
    rows = [f"| {h.at:%Y-%m-%d %H:%M} UTC | {h.status.value} | {h.actor} | {(h.reason or '').replace('|', '/')} |"
            for h in proposal.history]
    return "| when | status | by | why |\n| --- | --- | --- | --- |\n" + "\n".join(rows)


def status_metadata(store: StateStore, proposal: Proposal) -> dict[str, Any]:
    decision = store.get_decision(proposal.proposal_id)
    purchase = store.get_purchase(proposal.proposal_id)
    terms = purchase_terms(proposal)
    md: dict[str, Any] = {
        "proposal_id": proposal.proposal_id,
        "status": proposal.status.value,
        "status_reason": proposal.status_reason or "",
        "status_version": len(proposal.history),  # status changes so far: tells a repeat from a new change
        "status_changed_at": proposal.history[-1].at.isoformat() if proposal.history else "",
        "decided_by": f"{decision.decision} by {decision.approver}" if decision else "not decided",
        "purchase": (f"{purchase.state.value}: {purchase.savings_plan_id or purchase.error or '-'}"
                     f" ({purchase.purchaser or '-'})" if purchase else "not purchased"),
        "what_approval_buys": terms.summary(),
        **{k: v for k, v in terms.metadata().items() if v is not None},
        "history": dg.MetadataValue.md(_history_table(proposal)),
    }
    if proposal.status is ProposalStatus.pending_approval:
        md["approve_in_ui"] = dg.MetadataValue.md(approve_in_ui(proposal.tenant_id, proposal))
        md["approve_with_cli"] = dg.MetadataValue.md(f"```\n{approve_command(proposal.proposal_id)}\n```")
    return md


def status_observation(store: StateStore, proposal: Proposal) -> dg.AssetObservation:
    return dg.AssetObservation(asset_key=proposals_key(proposal.tenant_id),
                               description=f"{proposal.proposal_id} is now {proposal.status.value}",
                               metadata=status_metadata(store, proposal))


def _mark(metadata: dict[str, Any]) -> tuple[str, str]:
    return (str(getattr(metadata.get("status"), "value", metadata.get("status"))),
            str(getattr(metadata.get("status_version"), "value", metadata.get("status_version"))))


def reported_statuses(instance: dg.DagsterInstance, tenant_id: str, limit: int = 100) -> dict[str, tuple[str, str]]:
    """The status each proposal last showed on `sp_proposals` (materialization or observation), newest first."""
    key, records = proposals_key(tenant_id), []
    for fetch in (instance.fetch_observations, instance.fetch_materializations):
        records += fetch(dg.AssetRecordsFilter(asset_key=key), limit=limit, ascending=False).records
    shown: dict[str, tuple[str, str]] = {}
    for r in sorted(records, key=lambda r: r.storage_id, reverse=True):
        event = r.event_log_entry.asset_observation or r.event_log_entry.asset_materialization
        md = dict(event.metadata) if event else {}
        pid = str(getattr(md.get("proposal_id"), "value", md.get("proposal_id") or ""))
        if pid and pid not in shown:
            shown[pid] = _mark(md)
    return shown


def status_changes(store: StateStore, instance: dg.DagsterInstance, tenant_id: str,
                   recent: timedelta = RECENT) -> list[dg.AssetObservation]:
    """Observations for the tenant's proposals whose status moved since `sp_proposals` last showed it: the changes
    no Dagster run reported (CLI decisions, runless approval events, expiry). Proposals closed longer than
    `recent` ago are left alone, so the work stays small however long the history grows."""
    shown, now, out = reported_statuses(instance, tenant_id), utcnow(), []
    for proposal in store.list_proposals(tenant_id):
        if proposal.status is ProposalStatus.analyzing:
            continue
        closed_long_ago = proposal.status in TERMINAL and proposal.history and now - proposal.history[-1].at > recent
        if not closed_long_ago and shown.get(proposal.proposal_id) != (proposal.status.value,
                                                                        str(len(proposal.history))):
            out.append(status_observation(store, proposal))
    return out
