"""Baseline vs projected spend per period (the savings_projection mart), behind GET /api/projection."""

from __future__ import annotations

from serving.data.periods import days_in
from serving.data.sources import source_fields
from serving.data.store import TenantData
from serving.refs import reference
from serving.schemas import ProjectionResponse, ProjectionRow

HISTORY = 12


def run_projection(data: TenantData, period: str) -> ProjectionResponse:
    """Cached per snapshot (the projection mart only changes with a new export)."""
    return data.cached(("projection_model", period), lambda: _projection(data, period))


def _projection(data: TenantData, period: str) -> ProjectionResponse:
    rows = data.dicts(
        "SELECT period_type, period_start, period_end, baseline_cost, projected_cost, savings, delta_pct, "
        "achievable_cost FROM savings_projection WHERE period_type = ? ORDER BY period_start DESC LIMIT ?",
        [period, HISTORY],
    )
    with_data = _days_with_data(data, rows)
    history = [_row(r, with_data) for r in reversed(rows)]
    return ProjectionResponse(
        **data.scope_fields(),
        period=period,
        current=history[-1] if history else None,
        history=history,
        reference=reference("/api/projection", {"period": period}),
        **source_fields(
            data,
            min((r["period_start"] for r in rows), default=None),
            max((r["period_end"] for r in rows), default=None),
        ),
    )


def _days_with_data(data: TenantData, rows: list[dict]) -> dict[tuple, int]:
    """Days with spend in each period: the mart's period_end is the calendar end, the data may stop before it."""
    if not rows:
        return {}
    days = [
        r[0]
        for r in data.rows(
            "SELECT DISTINCT usage_date FROM spend_daily WHERE usage_date BETWEEN ? AND ?",
            [min(r["period_start"] for r in rows), max(r["period_end"] for r in rows)],
        )
    ]
    return {
        (r["period_start"], r["period_end"]): sum(r["period_start"] <= d <= r["period_end"] for d in days) for r in rows
    }


def _row(r: dict, with_data: dict[tuple, int]) -> ProjectionRow:
    calendar_days = days_in(r["period_start"], r["period_end"])
    days = with_data.get((r["period_start"], r["period_end"]))
    return ProjectionRow(
        period_type=r["period_type"],
        period_start=r["period_start"].isoformat(),
        period_end=r["period_end"].isoformat(),
        baseline_cost=round(r["baseline_cost"] or 0.0, 6),
        projected_cost=round(r["projected_cost"] or 0.0, 6),
        savings=round(r["savings"] or 0.0, 6),
        delta_pct=round(r["delta_pct"] or 0.0, 4),
        achievable_cost=None if r["achievable_cost"] is None else round(r["achievable_cost"], 6),
        days_in_period=calendar_days,
        days_with_data=days,
        partial=days is not None and days < calendar_days,
    )
