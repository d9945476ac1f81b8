"""The local purchaser (BLOCKS_ENV=local): records the plan in the state store instead of buying it, then feeds it
back into the tenant's sample CUR so the demo shows coverage rising after an approval.

Plan ids derive from the proposal id, like AWS's clientToken: recording the same proposal twice keeps one plan.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from blocks_pipelines.sample_data.redelivery import regenerate_demo_cur
from blocks_pipelines.savings_plans.purchase.orders import PurchaseOrder, Receipt
from blocks_pipelines.state.store import StateStore
from blocks_pipelines.tenants.config import TenantConfig

Feedback = Callable[[TenantConfig, list[dict[str, Any]]], str]


class LedgerPurchaser:
    name = "ledger"

    def __init__(self, tenant: TenantConfig, store: StateStore, feedback: Feedback | None = regenerate_demo_cur):
        self.tenant = tenant
        self.store = store
        self.feedback = feedback

    def return_plan(self, savings_plan_id: str, client_token: str) -> dict[str, Any]:
        """Locally a return is recorded, not called; held_commitments stops counting the plan."""
        self.store.append_audit(
            "sp_ledger",
            "ledger.return_plan",
            f"{self.tenant.id}/proposal/{client_token}",
            "recorded",
            {"savings_plan_id": savings_plan_id},
        )
        return {"call": "ledger"}

    def delete_queued(self, savings_plan_id: str, client_token: str) -> dict[str, Any]:
        self.store.append_audit(
            "sp_ledger",
            "ledger.delete_queued_plan",
            f"{self.tenant.id}/proposal/{client_token}",
            "recorded",
            {"savings_plan_id": savings_plan_id},
        )
        return {"call": "ledger"}

    def buy(self, order: PurchaseOrder) -> Receipt:
        plan_id = "ledger-" + hashlib.sha256(order.proposal_id.encode()).hexdigest()[:24]
        arn = (
            f"arn:aws:savingsplans::{self.tenant.organization.payer_account_id}:savingsplan/"
            f"{uuid.uuid5(uuid.NAMESPACE_URL, order.proposal_id)}"
        )
        start = order.purchase_time or datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
        plan = {
            "savings_plan_id": plan_id,
            "savings_plan_arn": arn,
            "proposal_id": order.proposal_id,
            "hourly_commitment": order.hourly_commitment,
            "term_years": order.term_years,
            "payment_option": order.payment_option,
            "rate_ratio": order.rate_ratio,
            "start": start.isoformat(),
        }
        created = self.store.record_ledger_plan(self.tenant.id, plan)
        stored = next(p for p in self.store.list_ledger_plans(self.tenant.id) if p["savings_plan_id"] == plan_id)
        feedback = self.feedback(self.tenant, self.store.list_ledger_plans(self.tenant.id)) if self.feedback else "off"
        self.store.append_audit(
            "sp_ledger",
            "ledger.record_plan",
            f"{self.tenant.id}/proposal/{order.proposal_id}",
            "recorded" if created else "already_recorded",
            {"savings_plan_id": plan_id, "feedback": feedback},
        )
        return Receipt(
            savings_plan_id=plan_id,
            savings_plan_arn=arn,
            start=datetime.fromisoformat(stored["start"]),
            purchaser="ledger",
            details={"feedback": feedback},
        )
