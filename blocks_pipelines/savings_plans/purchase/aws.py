"""Buying a Compute Savings Plan with boto3, under the tenant's purchase role.

The role is assumed with the tenant's ExternalId (confused-deputy protection) and every assumption, successful or
not, goes to the audit log. CreateSavingsPlan carries clientToken = proposal id, so even a call repeated after a
crash cannot buy a second plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from blocks_pipelines.savings_plans.purchase.orders import PurchaseOrder, Receipt
from blocks_pipelines.state.store import StateStore
from blocks_pipelines.tenants.config import TenantConfig

SAVINGS_PLANS_REGION = "us-east-1"  # the savingsplans API has one global endpoint
PAYMENT_OPTION = {"no_upfront": "No Upfront", "partial_upfront": "Partial Upfront", "all_upfront": "All Upfront"}
SECONDS_PER_YEAR = 31_536_000
ACTOR = "sp_purchaser"

ClientFactory = Callable[[dict[str, str]], Any]


class PurchaseError(RuntimeError):
    """The purchase could not be made; the message says which call failed and why."""


def default_savingsplans_client(credentials: dict[str, str]) -> Any:
    return boto3.client(
        "savingsplans",
        region_name=SAVINGS_PLANS_REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def role_session_name(proposal_id: str) -> str:
    # STS allows 64 characters of [\w+=,.@-]; a digest keeps long tenant ids within that
    return f"blocks-sp-{hashlib.sha256(proposal_id.encode()).hexdigest()[:16]}"


def plan_arn(role_arn: str, savings_plan_id: str) -> str:
    account = role_arn.split(":")[4]
    return f"arn:aws:savingsplans::{account}:savingsplan/{savings_plan_id}"


class AwsPurchaser:
    name = "aws"

    def __init__(
        self,
        tenant: TenantConfig,
        store: StateStore,
        *,
        sts_client: Any | None = None,
        savingsplans_client_factory: ClientFactory = default_savingsplans_client,
    ):
        conn = tenant.connection
        if "purchase" not in conn.scopes or not conn.purchase_role_arn:
            raise PurchaseError(
                f"tenant {tenant.id}: connection has no 'purchase' scope / purchase_role_arn; add "
                f"them to assets_config/tenants/{tenant.id}.yaml once the customer granted the role"
            )
        self.tenant = tenant
        self.store = store
        self.sts = sts_client or boto3.client("sts")
        self.client_factory = savingsplans_client_factory

    def assume_purchase_role(self, proposal_id: str) -> dict[str, str]:
        conn = self.tenant.connection
        target = f"{self.tenant.id}/role/purchase"
        details = {
            "role_arn": conn.purchase_role_arn,
            "proposal_id": proposal_id,
            "session_name": role_session_name(proposal_id),
        }
        try:
            out = self.sts.assume_role(
                RoleArn=conn.purchase_role_arn,
                RoleSessionName=details["session_name"],
                ExternalId=conn.external_id,
                DurationSeconds=900,
            )
        except (ClientError, BotoCoreError) as exc:
            self.store.append_audit(ACTOR, "sts:AssumeRole", target, "failed", {**details, "error": str(exc)})
            raise PurchaseError(
                f"could not assume {conn.purchase_role_arn} with the tenant's ExternalId: {exc}; "
                "check the role's trust policy"
            ) from exc
        self.store.append_audit(
            ACTOR, "sts:AssumeRole", target, "ok", {**details, "assumed_role_arn": out["AssumedRoleUser"]["Arn"]}
        )
        return out["Credentials"]

    def find_offering(self, client: Any, order: PurchaseOrder) -> str:
        wanted = {
            "planTypes": ["Compute"],
            "durations": [order.term_years * SECONDS_PER_YEAR],
            "paymentOptions": [PAYMENT_OPTION[order.payment_option]],
            "currencies": ["USD"],
        }
        kwargs: dict[str, Any] = dict(wanted)
        while True:
            page = client.describe_savings_plans_offerings(**kwargs)
            for offer in page.get("searchResults", []):
                if (
                    offer.get("planType") == "Compute"
                    and offer.get("currency") == "USD"
                    and offer.get("durationSeconds") == order.term_years * SECONDS_PER_YEAR
                    and offer.get("paymentOption") == PAYMENT_OPTION[order.payment_option]
                ):
                    return offer["offeringId"]
            if not page.get("nextToken"):
                break
            kwargs = {**wanted, "nextToken": page["nextToken"]}
        raise PurchaseError(
            f"no Compute Savings Plan offering for {order.term_years} year(s), "
            f"{PAYMENT_OPTION[order.payment_option]}, USD; check guardrails.term_years / payment_option"
        )

    def _undo_call(self, action: str, savings_plan_id: str, client_token: str, call: Callable[[Any], Any]) -> None:
        target = f"{self.tenant.id}/savingsplan/{savings_plan_id}"
        client = self.client_factory(self.assume_purchase_role(client_token))
        try:
            call(client)
        except PurchaseError as exc:
            self.store.append_audit(ACTOR, f"savingsplans:{action}", target, "refused", {"error": str(exc)})
            raise
        except (ClientError, BotoCoreError) as exc:
            self.store.append_audit(ACTOR, f"savingsplans:{action}", target, "failed", {"error": str(exc)})
            raise PurchaseError(f"savingsplans {action} failed for plan {savings_plan_id}: {exc}") from exc
        self.store.append_audit(ACTOR, f"savingsplans:{action}", target, "ok", {"proposal_id": client_token})

    @staticmethod
    def _plan_state(client: Any, savings_plan_id: str) -> dict[str, Any]:
        plans = client.describe_savings_plans(savingsPlanIds=[savings_plan_id]).get("savingsPlans", [])
        if not plans:
            raise PurchaseError(f"DescribeSavingsPlans does not know plan {savings_plan_id}")
        return plans[0]

    def return_plan(self, savings_plan_id: str, client_token: str) -> dict[str, Any]:
        """ReturnSavingsPlan, after DescribeSavingsPlans confirms AWS still takes it back (state active and
        returnableUntil ahead: AWS's own deadline, which also encodes its commitment limit). clientToken = the
        return proposal, so a repeated call returns nothing twice."""
        found: dict[str, Any] = {}

        def call(client: Any) -> None:
            found.update(self._plan_state(client, savings_plan_id))
            plan = found
            until = plan.get("returnableUntil")
            deadline = datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None
            if plan.get("state") != "active" or deadline is None or deadline <= datetime.now(timezone.utc):
                raise PurchaseError(
                    f"plan {savings_plan_id} is not returnable: state {plan.get('state')}, "
                    f"returnableUntil {until}; it runs its term"
                )
            client.return_savings_plan(savingsPlanId=savings_plan_id, clientToken=client_token)

        self._undo_call("ReturnSavingsPlan", savings_plan_id, client_token, call)
        return {"call": "ReturnSavingsPlan", "returnable_until": found.get("returnableUntil")}

    def delete_queued(self, savings_plan_id: str, client_token: str) -> dict[str, Any]:
        def call(client: Any) -> None:
            state = self._plan_state(client, savings_plan_id).get("state")
            if state != "queued":
                raise PurchaseError(
                    f"plan {savings_plan_id} is {state}, not queued: only a queued plan can be "
                    "deleted (a started one can be returned within its window)"
                )
            client.delete_queued_savings_plan(savingsPlanId=savings_plan_id)

        self._undo_call("DeleteQueuedSavingsPlan", savings_plan_id, client_token, call)
        return {"call": "DeleteQueuedSavingsPlan"}

    def buy(self, order: PurchaseOrder) -> Receipt:
        credentials = self.assume_purchase_role(order.proposal_id)
        client = self.client_factory(credentials)
        try:
            offering_id = self.find_offering(client, order)
            request: dict[str, Any] = {
                "savingsPlanOfferingId": offering_id,
                "commitment": order.commitment_str,
                "clientToken": order.proposal_id,
                "tags": {"blocks:tenant": order.tenant_id, "blocks:proposal": order.proposal_id, **order.tags},
            }
            if order.upfront_payment is not None:
                request["upfrontPaymentAmount"] = order.upfront_payment
            if order.purchase_time is not None:  # queued: starts when the plan it renews ends
                request["purchaseTime"] = order.purchase_time
            out = client.create_savings_plan(**request)
        except (ClientError, BotoCoreError) as exc:
            raise PurchaseError(f"savingsplans call failed for proposal {order.proposal_id}: {exc}") from exc
        plan_id = out["savingsPlanId"]
        return Receipt(
            savings_plan_id=plan_id,
            savings_plan_arn=plan_arn(self.tenant.connection.purchase_role_arn, plan_id),
            start=order.purchase_time or datetime.now(timezone.utc),
            purchaser="aws",
            details={"offering_id": offering_id, "commitment": order.commitment_str},
        )
