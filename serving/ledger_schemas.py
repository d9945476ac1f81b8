"""Response schemas of GET /api/savings-ledger: the customer's view and the back office's."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from serving.schemas import Reference, _Scoped


class LedgerMonth(BaseModel):
    """What the customer sees: the promise and what they were billed against it."""

    billing_period: str = Field(examples=["2026-10"])
    period_start: str = Field(examples=["2026-10-01"])
    period_end: str = Field(examples=["2026-10-31"])
    data_through: str = Field(examples=["2026-10-17"], description="last day of the month with data")
    is_month_to_date: bool = Field(description="the month still has days to come: figures are month to date")
    on_demand_equivalent: float = Field(
        description="the month's usage at public on-demand prices (tax, credits and refunds excluded)"
    )
    promised_savings_pct: float = Field(examples=[20.0])
    promised_savings: float
    customer_cost: float = Field(description="what the customer pays under the guarantee")
    realized_savings: float = Field(description="on_demand_equivalent - customer_cost")
    realized_savings_pct: float | None = Field(description="100 x realized_savings / on_demand_equivalent")
    guarantee_met: bool = Field(description="realized_savings_pct >= promised_savings_pct (within a cent)")


class LedgerMonthBackOffice(LedgerMonth):
    """The back office adds what the guarantee costs or earns Blocks and how good the plans were."""

    blocks_cost: float = Field(description="what Blocks pays AWS, amortized after its Savings Plans")
    blocks_savings: float = Field(description="on_demand_equivalent - blocks_cost")
    realized_esr_pct: float | None = Field(
        description="effective savings rate (FinOps Foundation): 100 x blocks_savings / on_demand_equivalent"
    )
    margin: float = Field(description="customer_cost - blocks_cost; negative = what keeping the promise cost")
    shortfall: float = Field(description="max(0, -margin)")
    sp_coverage_pct: float | None
    sp_utilization_pct: float | None
    sp_savings: float = Field(description="covered usage at on-demand prices - commitment paid")
    hindsight_hourly_commitment: float = Field(description="the flat $/h commitment that would have saved most")
    hindsight_sp_savings: float
    hindsight_regret: float = Field(description="max(0, hindsight_sp_savings - sp_savings)")


class SavingsLedgerResponse(_Scoped):
    view: Literal["customer", "backoffice"] = Field(
        description="backoffice (token role `backoffice`) adds Blocks' cost, ESR, margin and hindsight fields"
    )
    current: LedgerMonthBackOffice | LedgerMonth | None = Field(description="the newest month (often month to date)")
    months: list[LedgerMonthBackOffice | LedgerMonth] = Field(description="billing months, oldest first")
    totals: LedgerMonthBackOffice | LedgerMonth | None = Field(
        description="the months summed (billing_period 'total'); percentages recomputed from the sums"
    )
    reference: Reference
