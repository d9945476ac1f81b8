"""The approval packet: what a back-office person reads in Dagster before approving a Savings Plans proposal.

One Markdown page in the sp_proposals metadata: the commitment, term and payment, when it starts, which rates
priced it, the expected savings with the coverage and utilization bands, the savings curve (a PNG inlined as a
data URI, since Dagster renders Markdown images), what it does to the tenant's savings ledger, and what happens
in the return window if the plan proves oversized.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import polars as pl

from blocks_pipelines.savings_plans.approval.curve_png import savings_curve_png
from blocks_pipelines.savings_plans.lifecycle.rollback import RETURNS_PER_YEAR, return_deadline
from blocks_pipelines.state.records import Proposal

LEDGER_MART = "savings_ledger"
HOURS_PER_MONTH = 730.0


def _band(expected: dict[str, Any], key: str) -> str:
    band = expected.get(key)
    if not isinstance(band, dict):
        return "n/a"
    return (
        f"{band.get('expected', 0):.1f}% expected (daily P10 {band.get('p10', 0):.1f}%, "
        f"P50 {band.get('p50', 0):.1f}%, P90 {band.get('p90', 0):.1f}%)"
    )


def ledger_effect(ledger: pl.DataFrame | None, monthly_savings: float) -> str:
    """The newest full month of the savings ledger (month to date, scaled, when there is none) plus this plan."""
    if ledger is None or ledger.is_empty():
        return (
            f"No savings ledger yet for this tenant; the plan adds about ${monthly_savings:,.0f}/month to "
            "Blocks' realized savings (the customer's price is fixed by the 20% guarantee)."
        )
    rows = ledger.sort("period_start")
    full = rows.filter(~pl.col("is_month_to_date"))
    row = (full if full.height else rows).row(-1, named=True)
    scale = 1.0
    if row["is_month_to_date"] and row.get("days_with_data"):
        scale = 30.0 / float(row["days_with_data"])
    od = float(row["on_demand_equivalent"] or 0.0) * scale
    esr = float(row["realized_esr_pct"] or 0.0)
    margin = float(row["margin"] or 0.0) * scale
    if od <= 0:
        return (
            f"{row['billing_period']}: no on-demand-equivalent spend recorded; the plan adds "
            f"~${monthly_savings:,.0f}/month."
        )
    delta = 100.0 * monthly_savings / od
    basis = "month to date, scaled to 30 days" if row["is_month_to_date"] else "last full month"
    return (
        f"{row['billing_period']} ({basis}): realized ESR {esr:.1f}% against the "
        f"{row['promised_savings_pct']:.0f}% promised, margin ${margin:,.0f}. This plan adds "
        f"~${monthly_savings:,.0f}/month of savings: ESR "
        f"{esr:.1f}% -> {esr + delta:.1f}%, margin ${margin:,.0f} -> ${margin + monthly_savings:,.0f} a month "
        f"at that month's ${od:,.0f} on-demand equivalent."
    )


def return_window_note(proposal: Proposal, now: datetime, returns_used: int) -> str:
    starts_at = proposal.expected.get("starts_at")
    start = datetime.fromisoformat(starts_at) if starts_at else now
    p10 = (proposal.expected.get("utilization_pct") or {}).get("p10")
    watch = (
        (
            f"Blocks compares utilization with its P10 ({p10:.1f}%) from the first CUR hours; below it, a return "
            "proposal comes to this same gate. "
        )
        if p10 is not None
        else ""
    )
    queued = (
        (
            f"Until it starts ({start:%Y-%m-%d %H:%M} UTC) the queued plan can be cancelled at no cost "
            "(`blocks sp cancel-queued`). "
        )
        if starts_at
        else ""
    )
    return (
        f"{queued}{watch}If bought {'then' if starts_at else 'now'}, AWS accepts a return until "
        f"{return_deadline(start):%Y-%m-%d %H:%M} UTC (7 days after the start, never past its calendar month; "
        f"{returns_used} of {RETURNS_PER_YEAR} returns used this year), refunding any upfront payment. After "
        "that the commitment runs its full term."
    )


def curve_points(expected: dict[str, Any]) -> list[tuple[float, float]]:
    return sorted((float(p["hourly_commitment"]), float(p["expected_savings"])) for p in expected.get("curve", []))


def packet_markdown(
    proposal: Proposal, ledger: pl.DataFrame | None, now: datetime, returns_used: int = 0, cap: float | None = None
) -> str:
    e = proposal.expected
    term_hours = 8760 * proposal.term_years
    savings = float(e.get("expected_savings", 0.0))
    monthly = float(e.get("expected_monthly_savings", savings * HOURS_PER_MONTH / term_hours))
    upfront = {"no_upfront": 0.0, "partial_upfront": 0.5, "all_upfront": 1.0}[proposal.payment_option]
    upfront_note = f" (${proposal.hourly_commitment * term_hours * upfront:,.0f} upfront)" if upfront else ""
    total = proposal.existing_hourly_commitment + proposal.hourly_commitment
    starts = (
        (
            f"queued: starts {e['starts_at'][:16].replace('T', ' ')} UTC, as the "
            f"${e.get('renews_hourly_commitment', 0):,.3f}/h plan it renews ends"
        )
        if e.get("starts_at")
        else "now"
    )
    rows = [
        (
            "Commitment",
            f"**${proposal.hourly_commitment:,.3f}/h** Compute Savings Plan (held now "
            f"${proposal.existing_hourly_commitment:,.3f}/h, total ${total:,.3f}/h"
            + (f" of the ${cap:,.3f}/h cap)" if cap is not None else ")"),
        ),
        ("Term / payment", f"{proposal.term_years} year(s), {proposal.payment_option.replace('_', ' ')}{upfront_note}"),
        ("Starts", starts),
        (
            "Rates",
            str(e.get("rate_source") or "typical discount table")
            + f" (SP rate {float(e.get('sp_rate_ratio', 0)):.3f} x on-demand)",
        ),
        (
            "Expected savings",
            f"${savings:,.0f} over the term, ${monthly:,.0f}/month, "
            f"{float(e.get('expected_savings_pct', 0)):.1f}% of eligible on-demand",
        ),
        ("Coverage, next 30 days", _band(e, "coverage_pct")),
        ("Utilization, next 30 days", _band(e, "utilization_pct")),
        ("Ledger effect", ledger_effect(ledger, monthly)),
        ("Return window", return_window_note(proposal, now, returns_used)),
    ]
    lines = [f"### Approval packet: `{proposal.proposal_id}`", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    points = curve_points(e)
    if points:
        png = base64.b64encode(savings_curve_png(points, proposal.hourly_commitment)).decode()
        lines += [
            "",
            f"![savings curve](data:image/png;base64,{png})",
            "",
            f"Expected savings over the term ($, vertical) against the hourly commitment ($/h at SP rates, "
            f"horizontal, 0-{points[-1][0]:,.1f}); the red dot is this proposal. The curve is flat near its "
            "top: commitment past the dot adds risk faster than savings.",
        ]
    lines += ["", "**Why:** " + (proposal.rationale or "-")]
    return "\n".join(lines)


def packet_for(store: Any, tenant_id: str, proposal: Proposal, now: datetime, cap: float | None) -> str:
    """The packet with the tenant's ledger and this year's returns read from where they live."""
    from blocks_pipelines.savings_plans.inputs import read_mart
    from blocks_pipelines.savings_plans.lifecycle.rollback import returns_this_year

    return packet_markdown(
        proposal, read_mart(LEDGER_MART, tenant_id), now, returns_this_year(store, tenant_id, now), cap
    )
