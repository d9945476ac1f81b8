"""Savings Plans the generated CUR applies: the tenant's existing Compute SP plus any bought later.

The existing plan is sized from the tenant's own usage (a reference week at history_start) so coverage starts
around 55% and drifts down as usage grows: partial coverage the Savings Plans analyzer can improve on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from blocks_pipelines.sample_data.rand import stream_seed

EXISTING_PLAN_COVERAGE = 0.55
EXISTING_PLAN_RATE_RATIO = 0.72


@dataclass(frozen=True)
class SavingsPlanSpec:
    """A Compute Savings Plan, no upfront: `hourly_commitment` $/h at SP rates from `start` for `term_years`.
    SP rate = public on-demand rate x rate_ratio."""

    arn: str
    hourly_commitment: float
    start: datetime
    rate_ratio: float = 0.72
    term_years: int = 1

    def __post_init__(self) -> None:
        if self.hourly_commitment <= 0:
            raise ValueError(f"Savings Plan {self.arn}: hourly_commitment must be > 0 (got {self.hourly_commitment})")
        if not 0 < self.rate_ratio < 1:
            raise ValueError(f"Savings Plan {self.arn}: rate_ratio must be in (0, 1) (got {self.rate_ratio})")
        if self.start.tzinfo is None:
            object.__setattr__(self, "start", self.start.replace(tzinfo=timezone.utc))

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=365 * self.term_years)

    @property
    def purchase_term(self) -> str:
        return f"{self.term_years}yr"


def plan_uuid(*key: object) -> str:
    return str(uuid.UUID(int=stream_seed(*key, "a") << 64 | stream_seed(*key, "b"), version=4))


def existing_plan(
    payer_account_id: str, anchor: datetime, eligible_on_demand_per_hour: float, *, seed: int, tenant_id: str
) -> SavingsPlanSpec | None:
    commitment = round(EXISTING_PLAN_COVERAGE * eligible_on_demand_per_hour * EXISTING_PLAN_RATE_RATIO, 3)
    if commitment <= 0:
        return None
    start = (anchor - timedelta(days=90)).replace(hour=0, minute=0, second=0, microsecond=0)
    arn = f"arn:aws:savingsplans::{payer_account_id}:savingsplan/{plan_uuid(seed, tenant_id, 'existing-sp')}"
    return SavingsPlanSpec(arn, commitment, start, EXISTING_PLAN_RATE_RATIO)
