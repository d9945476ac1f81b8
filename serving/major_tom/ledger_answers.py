"""Major Tom on the 20% guarantee: promised against realized for the customer; for the back office also what the
guarantee cost or earned Blocks and what the Savings Plans left on the table. Every figure cites
GET /api/savings-ledger, which returns it under the same field."""

from __future__ import annotations

from collections.abc import Iterator

from serving.data.ledger import run_ledger
from serving.ledger_schemas import LedgerMonthBackOffice
from serving.major_tom.grounding import GroundedAnswer


def guarantee(scope, out: GroundedAnswer) -> Iterator[str]:
    principal = getattr(scope, "principal", None)
    backoffice = bool(principal is not None and principal.is_backoffice)
    ledger = run_ledger(scope.data, backoffice)
    n = out.cite(ledger.reference)
    c = ledger.current
    if c is None:
        yield (
            f"There is no billing month in your savings ledger yet [{n}]: it fills in with the first Cost and "
            "Usage Report delivery."
        )
        return
    when = f"{c.billing_period}, month to date through {c.data_through}" if c.is_month_to_date else c.billing_period
    yield (
        f"In {when} [{n}], your usage was worth {out.money(c.on_demand_equivalent, n, 'current.on_demand_equivalent')}"
        f" at on-demand prices. Blocks promised {out.pct(c.promised_savings_pct, n, 'current.promised_savings_pct')}"
        f" off, {out.money(c.promised_savings, n, 'current.promised_savings')}, so you pay "
        f"{out.money(c.customer_cost, n, 'current.customer_cost')}."
    )
    if c.realized_savings_pct is not None:
        met = "the guarantee is met" if c.guarantee_met else "short of the guarantee"
        yield (
            f"Realized: you saved {out.money(c.realized_savings, n, 'current.realized_savings')}, "
            f"{out.pct(c.realized_savings_pct, n, 'current.realized_savings_pct')} of on-demand: {met}."
        )
    t = ledger.totals
    if t is not None and len(ledger.months) > 1:
        yield (
            f"Over the {len(ledger.months)} months from {ledger.months[0].billing_period} [{n}] you saved "
            f"{out.money(t.realized_savings, n, 'totals.realized_savings')} against "
            f"{out.money(t.on_demand_equivalent, n, 'totals.on_demand_equivalent')} at on-demand prices."
        )
    if isinstance(c, LedgerMonthBackOffice):
        yield from _back_office(out, n, c)


def _back_office(out: GroundedAnswer, n: int, c: LedgerMonthBackOffice) -> Iterator[str]:
    if c.realized_esr_pct is not None:
        verdict = "earned Blocks" if c.margin >= 0 else "cost Blocks"
        yield (
            f"Back office: Blocks paid AWS {out.money(c.blocks_cost, n, 'current.blocks_cost')} after its Savings "
            f"Plans, an effective savings rate of {out.pct(c.realized_esr_pct, n, 'current.realized_esr_pct')}, so "
            f"the guarantee {verdict} "
            f"{out.money(abs(c.margin), n, 'current.margin' if c.margin >= 0 else 'current.shortfall')}"
            " this month."
        )
    if c.sp_coverage_pct is not None:
        util = (
            f" at {out.pct(c.sp_utilization_pct, n, 'current.sp_utilization_pct')} utilization"
            if c.sp_utilization_pct is not None
            else ""
        )
        yield (
            f"Savings Plans covered {out.pct(c.sp_coverage_pct, n, 'current.sp_coverage_pct')} of eligible "
            f"compute{util} and saved {out.money(c.sp_savings, n, 'current.sp_savings')}."
        )
    if c.hindsight_regret > 0:
        yield (
            f"In hindsight a flat {out.money(c.hindsight_hourly_commitment, n, 'current.hindsight_hourly_commitment')}"
            f" an hour would have saved {out.money(c.hindsight_sp_savings, n, 'current.hindsight_sp_savings')}: "
            f"{out.money(c.hindsight_regret, n, 'current.hindsight_regret')} left on the table (the analyzer "
            "ladders monthly, so one month's hindsight is an upper bound, not a target)."
        )
