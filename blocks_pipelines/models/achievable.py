"""What the Savings Plans analyzer's latest live proposal would save, for savings_projection.achievable_cost."""

from __future__ import annotations

from blocks_pipelines.state import ProposalStatus, StateStore

DAYS_PER_MONTH = 365.25 / 12
# A proposal still on its way to (or already) saving money; rejected, expired and blocked ones do not count.
LIVE = (ProposalStatus.pending_approval, ProposalStatus.approved, ProposalStatus.purchased, ProposalStatus.monitoring)


def achievable_daily_savings(store: StateStore, tenant_id: str) -> float | None:
    """$/day from the newest live proposal's expected_monthly_savings; None when there is none."""
    # a renewal replaces savings already counted and a rollback removes a plan: only new commitments add savings
    proposals = [
        p
        for p in store.list_proposals(tenant_id, statuses=LIVE)
        if "expected_monthly_savings" in p.expected and not p.expected.get("action")
    ]
    if not proposals:
        return None
    latest = max(proposals, key=lambda p: p.created_at)
    return float(latest.expected["expected_monthly_savings"]) / DAYS_PER_MONTH
