"""What approving a proposal buys, in the words and units a back-office person signs off on: the hourly commitment
($/h), the term, the payment option, the total committed over the term and the upfront part, and the expected
savings per month and over the term. One source for the approve hint, the approval run and the CLI prompt, so
the figure a person confirms is the figure that is bought. Pure: no store, no Dagster."""

from __future__ import annotations

from dataclasses import dataclass

from blocks_pipelines.savings_plans.purchase.orders import HOURS_PER_YEAR
from blocks_pipelines.state.records import Proposal

UPFRONT_SHARE = {"no_upfront": 0.0, "partial_upfront": 0.5, "all_upfront": 1.0}
PAYMENT_LABEL = {"no_upfront": "No Upfront", "partial_upfront": "Partial Upfront", "all_upfront": "All Upfront"}


@dataclass(frozen=True)
class PurchaseTerms:
    proposal_id: str
    hourly_commitment: float  # $/h, at Savings Plans rates
    term_years: int
    payment_option: str
    expected_monthly_savings: float | None  # $/month against on-demand; None when the analysis did not say
    expected_term_savings: float | None  # $ over the whole term

    @property
    def term_hours(self) -> int:
        return HOURS_PER_YEAR * self.term_years

    @property
    def total_commitment(self) -> float:
        """$ committed over the whole term: AWS bills the hourly commitment every hour, used or not."""
        return round(self.hourly_commitment * self.term_hours, 2)

    @property
    def upfront_payment(self) -> float:
        return round(self.total_commitment * UPFRONT_SHARE[self.payment_option], 2)

    @property
    def monthly_payment(self) -> float:
        """$ billed per month after the upfront part (the rest of the commitment spread over the term's months)."""
        return round((self.total_commitment - self.upfront_payment) / (12 * self.term_years), 2)

    def summary(self) -> str:
        """One sentence: what will be bought and what it is expected to save."""
        savings = (
            "expected savings not stated by the analysis"
            if self.expected_monthly_savings is None
            else f"expected savings ${self.expected_monthly_savings:,.2f}/month"
            + (f" (${self.expected_term_savings:,.2f} over the term)" if self.expected_term_savings is not None else "")
        )
        upfront = f", ${self.upfront_payment:,.2f} of it upfront" if self.upfront_payment else ""
        return (
            f"a Compute Savings Plan of ${self.hourly_commitment:,.3f}/hour for {self.term_years} "
            f"year{'s' if self.term_years > 1 else ''}, {PAYMENT_LABEL[self.payment_option]}: "
            f"${self.total_commitment:,.2f} committed over the term{upfront}; {savings}"
        )

    def metadata(self) -> dict[str, float | int | str | None]:
        """Flat, unit-suffixed fields for Dagster metadata and JSON (`_usd`, `_usd_per_hour`, `_usd_per_month`)."""
        return {
            "hourly_commitment_usd_per_hour": self.hourly_commitment,
            "term_years": self.term_years,
            "payment_option": self.payment_option,
            "total_commitment_usd": self.total_commitment,
            "upfront_payment_usd": self.upfront_payment,
            "monthly_payment_usd_per_month": self.monthly_payment,
            "expected_savings_usd_per_month": self.expected_monthly_savings,
            "expected_savings_usd_over_term": self.expected_term_savings,
        }


def _number(expected: dict, name: str) -> float | None:
    value = expected.get(name)
    return None if value is None else round(float(value), 2)


def purchase_terms(proposal: Proposal) -> PurchaseTerms:
    return PurchaseTerms(
        proposal_id=proposal.proposal_id,
        hourly_commitment=proposal.hourly_commitment,
        term_years=proposal.term_years,
        payment_option=proposal.payment_option,
        expected_monthly_savings=_number(proposal.expected, "expected_monthly_savings"),
        expected_term_savings=_number(proposal.expected, "expected_savings"),
    )
