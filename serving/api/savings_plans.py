"""GET /api/savings-plans: the position (coverage, utilization) and the purchase proposals."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from serving.api.deps import TenantScope, tenant_scope
from serving.api.negotiation import JSON
from serving.data import params as p
from serving.data.savings_plans import run_sp_position, sp_source_fields
from serving.errors import error_docs
from serving.refs import reference
from serving.schemas import SavingsPlansResponse, SpProposal

router = APIRouter(tags=["savings plans"])
HOURS_PER_YEAR = 8760  # AWS bills a Savings Plan's commitment every hour of a 365-day year
log = logging.getLogger("blocks.serving")


@router.get(
    "/api/savings-plans",
    response_model=SavingsPlansResponse,
    summary="Savings Plans position over the last 30 days and purchase proposals",
    responses=error_docs(400, 401, 403, 503),
)
async def get_savings_plans(request: Request, scope: TenantScope = Depends(tenant_scope)) -> Response:
    p.reject_unknown(request.query_params.keys(), ())
    body = await run_in_threadpool(_render, scope)
    return Response(body, media_type=JSON)


def _render(scope: TenantScope) -> bytes:
    position = run_sp_position(scope.data)
    proposals, available = _proposals(scope)
    return (
        SavingsPlansResponse(
            **scope.data.scope_fields(),
            position=position,
            proposals=proposals,
            proposals_available=available,
            reference=reference("/api/savings-plans", {}),
            **sp_source_fields(scope.data, position),
        )
        .model_dump_json()
        .encode()
    )


def _proposals(scope: TenantScope) -> tuple[list[SpProposal], bool]:
    try:
        raw = scope.proposals()
    except (ImportError, AttributeError) as exc:  # the state store without proposals: show the position alone
        log.warning("proposals unavailable: %s", exc)
        return [], False
    keep = set(SpProposal.model_fields) | {"existing_hourly_commitment", "window_start", "window_end", "history"}
    return [
        SpProposal.model_validate({**{k: v for k, v in d.items() if k in keep}, **_unit_fields(d)}) for d in raw
    ], True


def _unit_fields(d: dict) -> dict[str, float | None]:
    """The figures a reader compares, with their unit in the name (the analyzer's `expected` mixes term and month)."""
    expected = d.get("expected") or {}

    def money(name: str) -> float | None:
        return None if expected.get(name) is None else round(float(expected[name]), 2)

    return {
        "total_commitment_usd": round(float(d["hourly_commitment"]) * HOURS_PER_YEAR * int(d["term_years"]), 2),
        "expected_savings_usd_per_month": money("expected_monthly_savings"),
        "expected_savings_usd_over_term": money("expected_savings"),
    }
