"""What the back office sees of a proposal in Dagster: how to decide it, and its live status.

A materialization of `sp_proposals` is a snapshot from when the proposal was made; the decision and the purchase
happen later. So every status change is also written as an observation on `sp_proposals` (by the approval run,
the purchase run and the approval sensor, whichever saw it), and the asset's page shows the proposal as it is now.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dagster as dg

from blocks_pipelines.savings_plans.purchase.terms import PAYMENT_LABEL, purchase_terms
from blocks_pipelines.state.records import TERMINAL, Proposal, ProposalStatus, utcnow
from blocks_pipelines.state.store import StateStore

PROPOSALS = "sp_proposals"
APPROVALS = "sp_approvals"
STATUS_VIEW = "sp_proposal_status"
RECENT = timedelta(days=7)


def proposals_key(tenant_id: str) -> dg.AssetKey:
    return dg.AssetKey([tenant_id, PROPOSALS])


def approve_command(proposal_id: str) -> str:
    return f"blocks sp approve {proposal_id} --approver NAME [--note TEXT]   (add --reject to reject)"


def approval_run_config(tenant_id: str, proposal: Proposal, decision: str = "approve") -> str:
    """The launchpad config that decides `proposal`, as YAML to paste. The commitment is repeated as a
    confirmation: the run refuses to record a decision whose commitment differs from the proposal's."""
    return (
        f"ops:\n  {tenant_id}__sp_approvals:\n    config:\n      proposal_id: {proposal.proposal_id}\n"
        f'      decision: {decision}   # or reject\n      approver: ""   # your name, required\n'
        f'      confirm_hourly_commitment: {proposal.hourly_commitment:.3f}\n      note: ""\n'
    )


def approvals_page(tenant_id: str) -> str:
    """The sp_approvals asset page, relative to the Dagster UI (works on any host, port or code location). A
    launchpad link prefilled through `playground/setup?config=` was tried: Dagster 1.13 ignores it for the asset job
    (checked with headless Chromium), so the person pastes the config shown beside the link."""
    return f"/assets/{tenant_id}/{APPROVALS}"


def approve_in_ui(tenant_id: str, proposal: Proposal) -> str:
    """Markdown for the asset page. The config is a fenced block, so no part of it can be taken for HTML."""
    return (
        f"Approving buys {purchase_terms(proposal).summary()}.\n\n"
        f"Open [{tenant_id}/sp_approvals]({approvals_page(tenant_id)}), click the arrow beside Materialize, "
        "choose Open launchpad, paste this config (also shown as approve_config), fill in your name (or set "
        f"decision: reject), then Materialize:\n\n```yaml\n{approval_run_config(tenant_id, proposal)}```\n"
    )


def _history_table(proposal: Proposal) -> str:
    rows = [
        f"| {h.at:%Y-%m-%d %H:%M} UTC | {h.status.value} | {h.actor} | {(h.reason or '').replace('|', '/')} |"
        for h in proposal.history
    ]
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
        "purchase": (
            f"{purchase.state.value}: {purchase.savings_plan_id or purchase.error or '-'} ({purchase.purchaser or '-'})"
            if purchase
            else "not purchased"
        ),
        "what_approval_buys": terms.summary(),
        **{k: v for k, v in terms.metadata().items() if v is not None},
        "history": dg.MetadataValue.md(_history_table(proposal)),
    }
    return {**md, **_decide_fields(proposal)}


def _decide_fields(proposal: Proposal) -> dict[str, Any]:
    """How to decide, while the proposal awaits a decision; afterwards the same keys say there is nothing to decide,
    so the asset page, which shows each key's latest value, never keeps an approve hint for a decided proposal."""
    if proposal.status is not ProposalStatus.pending_approval:
        done = f"Nothing to decide: the proposal is {proposal.status.value} ({proposal.status_reason or '-'})."
        return {
            "approve_in_ui": dg.MetadataValue.md(done),
            "approve_with_cli": dg.MetadataValue.md(done),
            "approve_config": dg.MetadataValue.text("-"),
            "approve_at": dg.MetadataValue.text("-"),
        }
    return {
        "approve_in_ui": dg.MetadataValue.md(approve_in_ui(proposal.tenant_id, proposal)),
        "approve_with_cli": dg.MetadataValue.md(f"```\n{approve_command(proposal.proposal_id)}\n```"),
        # plain text, shown as is on the asset page: the config to paste into the sp_approvals launchpad
        "approve_config": dg.MetadataValue.text(approval_run_config(proposal.tenant_id, proposal)),
        "approve_at": dg.MetadataValue.url(approvals_page(proposal.tenant_id)),
    }


def status_observation(store: StateStore, proposal: Proposal) -> dg.AssetObservation:
    return dg.AssetObservation(
        asset_key=proposals_key(proposal.tenant_id),
        description=f"{proposal.proposal_id} is now {proposal.status.value}",
        metadata=status_metadata(store, proposal),
    )


def status_view_key(tenant_id: str) -> dg.AssetKey:
    return dg.AssetKey([tenant_id, STATUS_VIEW])


def status_view_spec(tenant_id: str) -> dg.AssetSpec:
    """`sp_proposal_status`: an asset nothing computes, materialized with every status change, so its page (whose
    Overview shows the latest materialization) is the tenant's proposals as they are now. sp_proposals' Overview
    shows the snapshot from when the proposal was made; its Events tab lists each change as an observation."""
    return dg.AssetSpec(
        key=status_view_key(tenant_id),
        deps=[proposals_key(tenant_id)],
        group_name=tenant_id,
        kinds={"python"},
        description="Live status of the tenant's Savings Plans proposals: materialized by the "
        "approval run, the approval sensor and the purchase run at each change.",
    )


def _proposals_table(store: StateStore, tenant_id: str, recent: timedelta = RECENT) -> str:
    now, rows = utcnow(), []
    for p in reversed(store.list_proposals(tenant_id)):  # newest first
        if p.status in TERMINAL and p.history and now - p.history[-1].at > recent:
            continue
        decision = store.get_decision(p.proposal_id)
        rows.append(
            f"| {p.proposal_id} | {p.status.value} | ${p.hourly_commitment:,.3f}/h, {p.term_years}y "
            f"{PAYMENT_LABEL[p.payment_option]} | "
            f"{f'{decision.decision} by {decision.approver}' if decision else '-'} |"
        )
    return (
        "| proposal | status | commitment | decided |\n| --- | --- | --- | --- |\n" + "\n".join(rows)
        if rows
        else "no proposal open or closed in the last 7 days"
    )


def status_view(store: StateStore, proposal: Proposal) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(
        asset_key=status_view_key(proposal.tenant_id),
        description=f"{proposal.proposal_id} is now {proposal.status.value}",
        metadata={
            **status_metadata(store, proposal),
            "proposals": dg.MetadataValue.md(_proposals_table(store, proposal.tenant_id)),
        },
    )


def status_events(store: StateStore, proposal: Proposal) -> list[dg.AssetObservation | dg.AssetMaterialization]:
    """What a status change writes to Dagster: an observation on sp_proposals, the live view's materialization."""
    return [status_observation(store, proposal), status_view(store, proposal)]


def _mark(metadata: dict[str, Any]) -> tuple[str, str]:
    return (
        str(getattr(metadata.get("status"), "value", metadata.get("status"))),
        str(getattr(metadata.get("status_version"), "value", metadata.get("status_version"))),
    )


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


def status_changes(
    store: StateStore,
    instance: dg.DagsterInstance,
    tenant_id: str,
    proposals: list[Proposal] | None = None,
    recent: timedelta = RECENT,
) -> list[dg.AssetObservation | dg.AssetMaterialization]:
    """Observations for the tenant's proposals (`proposals`: its list, when the caller has it) whose status moved
    since `sp_proposals` last showed it: the changes no Dagster run reported (CLI decisions, runless approval events,
    expiry). Proposals closed longer than `recent` ago are left alone, so the work stays small however long the
    history grows, and a tenant with none left to check costs no event-log read."""
    now = utcnow()
    live = [
        p
        for p in (store.list_proposals(tenant_id) if proposals is None else proposals)
        if p.status is not ProposalStatus.analyzing
        and not (p.status in TERMINAL and p.history and now - p.history[-1].at > recent)
    ]
    if not live:
        return []
    shown, out = reported_statuses(instance, tenant_id), []
    for proposal in live:
        if shown.get(proposal.proposal_id) != (proposal.status.value, str(len(proposal.history))):
            out += status_events(store, proposal)
    return out
