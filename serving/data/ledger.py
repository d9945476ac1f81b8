"""The guarantee's ledger per billing month (the savings_ledger mart), behind GET /api/savings-ledger.

The customer's view shows what was promised and what they were billed; Blocks' own cost, the realized ESR and the
margin are back-office fields, because the ESR together with the on-demand equivalent gives Blocks' margin away.
"""

from __future__ import annotations

from typing import Any

from serving.data.store import TenantData
from serving.ledger_schemas import LedgerMonth, LedgerMonthBackOffice, SavingsLedgerResponse
from serving.refs import reference

HISTORY_MONTHS = 12
CENT = 0.005
_SUMMED = (
    "on_demand_equivalent",
    "customer_cost",
    "promised_savings",
    "blocks_cost",
    "margin",
    "sp_savings",
    "sp_eligible_on_demand",
    "sp_covered_on_demand",
    "sp_commitment_cost",
    "hindsight_sp_savings",
    "hindsight_regret",
)


def run_ledger(data: TenantData, backoffice: bool) -> SavingsLedgerResponse:
    """Cached per snapshot and view (the mart only changes with a new export)."""
    return data.cached(("savings_ledger", backoffice), lambda: _ledger(data, backoffice))


def _ledger(data: TenantData, backoffice: bool) -> SavingsLedgerResponse:
    rows = (
        data.dicts("SELECT * FROM savings_ledger ORDER BY period_start DESC LIMIT ?", [HISTORY_MONTHS])
        if data.has("savings_ledger")
        else []
    )
    rows.reverse()
    months = [_month(r, backoffice) for r in rows]
    return SavingsLedgerResponse(
        **data.scope_fields(),
        view="backoffice" if backoffice else "customer",
        current=months[-1] if months else None,
        months=months,
        totals=_month(_total(rows), backoffice) if rows else None,
        reference=reference("/api/savings-ledger", {}),
    )


def _total(rows: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {k: sum(r[k] or 0.0 for r in rows) for k in _SUMMED}
    total.update(
        billing_period="total",
        period_start=rows[0]["period_start"],
        period_end=rows[-1]["period_end"],
        data_through=rows[-1]["data_through"],
        is_month_to_date=rows[-1]["is_month_to_date"],
        promised_savings_pct=rows[-1]["promised_savings_pct"],
        hindsight_hourly_commitment=rows[-1]["hindsight_hourly_commitment"] or 0.0,
    )
    od = total["on_demand_equivalent"]
    total["realized_esr_pct"] = 100 * (od - total["blocks_cost"]) / od if od else None
    total["shortfall"] = max(0.0, -total["margin"])
    committed, eligible = total["sp_commitment_cost"], total["sp_eligible_on_demand"]
    used = sum((r["sp_utilization_pct"] or 0.0) * (r["sp_commitment_cost"] or 0.0) / 100 for r in rows)
    total["sp_coverage_pct"] = 100 * total["sp_covered_on_demand"] / eligible if eligible else None
    total["sp_utilization_pct"] = 100 * used / committed if committed else None
    return total


def _money(value: float | None) -> float:
    return round(value or 0.0, 2)


def _pct(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _month(r: dict[str, Any], backoffice: bool) -> LedgerMonth:
    od = r["on_demand_equivalent"] or 0.0
    realized = od - (r["customer_cost"] or 0.0)
    realized_pct = 100 * realized / od if od else None
    fields: dict[str, Any] = dict(
        billing_period=r["billing_period"],
        period_start=r["period_start"].isoformat(),
        period_end=r["period_end"].isoformat(),
        data_through=r["data_through"].isoformat(),
        is_month_to_date=bool(r["is_month_to_date"]),
        on_demand_equivalent=_money(od),
        promised_savings_pct=round(r["promised_savings_pct"] or 0.0, 2),
        promised_savings=_money(r["promised_savings"]),
        customer_cost=_money(r["customer_cost"]),
        realized_savings=_money(realized),
        realized_savings_pct=_pct(realized_pct),
        guarantee_met=realized + CENT >= (r["promised_savings"] or 0.0),
    )
    if not backoffice:
        return LedgerMonth(**fields)
    return LedgerMonthBackOffice(
        **fields,
        blocks_cost=_money(r["blocks_cost"]),
        blocks_savings=_money(od - (r["blocks_cost"] or 0.0)),
        realized_esr_pct=_pct(r["realized_esr_pct"]),
        margin=_money(r["margin"]),
        shortfall=_money(r["shortfall"]),
        sp_coverage_pct=_pct(r["sp_coverage_pct"]),
        sp_utilization_pct=_pct(r["sp_utilization_pct"]),
        sp_savings=_money(r["sp_savings"]),
        hindsight_hourly_commitment=round(r["hindsight_hourly_commitment"] or 0, 3),
        hindsight_sp_savings=_money(r["hindsight_sp_savings"]),
        hindsight_regret=_money(r["hindsight_regret"]),
    )
