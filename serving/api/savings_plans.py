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
from serving.models import SavingsPlansResponse, SpProposal
from serving.refs import reference

router = APIRouter(tags=["savings plans"])
log = logging.getLogger("blocks.serving")


@router.get("/api/savings-plans", response_model=SavingsPlansResponse,
            summary="Savings Plans position over the last 30 days and purchase proposals",
            responses=error_docs(400, 401, 403, 503))
async def get_savings_plans(request: Request, scope: TenantScope = Depends(tenant_scope)) -> Response:
    p.reject_unknown(request.query_params.keys(), ())
    body = await run_in_threadpool(_render, scope)
    return Response(body, media_type=JSON)


def _render(scope: TenantScope) -> bytes:
    position = run_sp_position(scope.data)
    proposals, available = _proposals(scope)
    return SavingsPlansResponse(
        **scope.data.scope_fields(),
        position=position, proposals=proposals, proposals_available=available,
        reference=reference("/api/savings-plans", {}),
        **sp_source_fields(scope.data, position),
    ).model_dump_json().encode()


def _proposals(scope: TenantScope) -> tuple[list[SpProposal], bool]:
    try:
        raw = scope.proposals()
    except (ImportError, AttributeError) as exc:  # the state store without proposals: show the position alone
        log.warning("proposals unavailable: %s", exc)
        return [], False
    keep = set(SpProposal.model_fields) | {"existing_hourly_commitment", "window_start", "window_end", "history"}
    return [SpProposal.model_validate({k: v for k, v in d.items() if k in keep}) for d in raw], True
