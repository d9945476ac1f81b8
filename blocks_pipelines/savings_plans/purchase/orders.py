"""What a purchaser is asked to buy and what it hands back: the seam between the purchase workflow and the two
ways of buying (the AWS API in production, the local ledger in demos and tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

HOURS_PER_YEAR = 8760


@dataclass(frozen=True)
class PurchaseOrder:
    proposal_id: str  # also the idempotency token: one proposal, one plan
    tenant_id: str
    hourly_commitment: float
    term_years: Literal[1, 3]
    payment_option: Literal["no_upfront", "partial_upfront", "all_upfront"]
    rate_ratio: float  # SP rate / on-demand rate observed in the analysis window
    tags: dict[str, str] = field(default_factory=dict)
    purchase_time: datetime | None = None  # a queued plan starting then (a renewal); None starts it now

    @property
    def commitment_str(self) -> str:
        """The API takes the commitment as a decimal string; three decimals is the $/h precision AWS accepts."""
        return f"{self.hourly_commitment:.3f}"

    @property
    def upfront_payment(self) -> str | None:
        share = {"no_upfront": 0.0, "partial_upfront": 0.5, "all_upfront": 1.0}[self.payment_option]
        if share == 0.0:
            return None
        return f"{self.hourly_commitment * HOURS_PER_YEAR * self.term_years * share:.2f}"


@dataclass(frozen=True)
class Receipt:
    savings_plan_id: str
    savings_plan_arn: str | None
    start: datetime
    purchaser: Literal["aws", "ledger"]
    details: dict[str, Any] = field(default_factory=dict)


class Purchaser(Protocol):
    name: str

    def buy(self, order: PurchaseOrder) -> Receipt: ...
