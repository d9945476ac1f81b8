"""Savings Plans position (coverage and utilization from sp_position_hourly) behind GET /api/savings-plans."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from serving.data.sources import source_fields
from serving.data.store import TenantData
from serving.schemas import SpDailyPosition, SpPlan, SpPosition

WINDOW_DAYS = 30


def run_sp_position(data: TenantData, days: int = WINDOW_DAYS) -> SpPosition:
    """Cached per snapshot: the position only changes when a new mart export arrives."""
    return data.cached(("sp_position", days), lambda: _sp_position(data, days))


def _sp_position(data: TenantData, days: int) -> SpPosition:
    last = data.rows("SELECT max(usage_hour) FROM sp_position_hourly")[0][0]
    if last is None:
        return SpPosition(
            start=None,
            end=None,
            hourly_commitment=0.0,
            coverage_pct=None,
            utilization_pct=None,
            unused_commitment=0.0,
            eligible_on_demand_cost=0.0,
            covered_on_demand_cost=0.0,
            daily=[],
            plans=[],
        )
    since = last - timedelta(days=days) + timedelta(hours=1)
    daily_rows = data.rows(
        "SELECT usage_hour::DATE AS d, avg(commitment), sum(used_commitment), sum(commitment), "
        "sum(covered_on_demand_cost), sum(eligible_on_demand_cost), sum(unused_commitment) "
        "FROM sp_position_hourly WHERE savings_plan_arn = 'TOTAL' AND usage_hour >= ? GROUP BY 1 ORDER BY 1",
        [since],
    )
    plans = data.rows(
        "SELECT savings_plan_arn, arg_max(commitment, usage_hour), 100.0 * sum(used_commitment) / "
        "nullif(sum(commitment), 0) FROM sp_position_hourly WHERE savings_plan_arn <> 'TOTAL' AND usage_hour >= ? "
        "GROUP BY 1 ORDER BY 1",
        [since],
    )
    latest_commitment = data.rows(
        "SELECT commitment FROM sp_position_hourly WHERE savings_plan_arn = 'TOTAL' ORDER BY usage_hour DESC LIMIT 1"
    )[0][0]
    used = sum(r[2] or 0.0 for r in daily_rows)
    committed = sum(r[3] or 0.0 for r in daily_rows)
    covered = sum(r[4] or 0.0 for r in daily_rows)
    eligible = sum(r[5] or 0.0 for r in daily_rows)
    return SpPosition(
        start=since.date().isoformat(),
        end=last.date().isoformat(),
        hourly_commitment=round(latest_commitment or 0.0, 6),
        coverage_pct=_pct(covered, eligible),
        utilization_pct=_pct(used, committed),
        unused_commitment=round(sum(r[6] or 0.0 for r in daily_rows), 6),
        eligible_on_demand_cost=round(eligible, 6),
        covered_on_demand_cost=round(covered, 6),
        daily=[
            SpDailyPosition(
                date=r[0].isoformat(),
                commitment=round(r[1] or 0.0, 6),
                used_commitment=round(r[2] or 0.0, 6),
                coverage_pct=_pct(r[4], r[5]),
                utilization_pct=_pct(r[2], r[3]),
            )
            for r in daily_rows
        ],
        plans=[
            SpPlan(
                savings_plan_arn=r[0],
                hourly_commitment=round(r[1] or 0.0, 6),
                utilization_pct=None if r[2] is None else round(r[2], 2),
            )
            for r in plans
        ],
    )


def sp_source_fields(data: TenantData, position: SpPosition) -> dict[str, Any]:
    """The `sources` and `preliminary` fields over the position's window."""
    if position.start is None or position.end is None:
        return source_fields(data, None, None)
    return source_fields(data, date.fromisoformat(position.start), date.fromisoformat(position.end))


def _pct(part: float | None, whole: float | None) -> float | None:
    if not whole:
        return None
    return round(100.0 * (part or 0.0) / whole, 2)
