"""GET /api/savings-ledger: the 20% guarantee per billing month, promised against realized."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from serving.api.deps import TenantScope, tenant_scope
from serving.api.negotiation import JSON
from serving.data import params as p
from serving.data.ledger import run_ledger
from serving.errors import error_docs
from serving.ledger_schemas import SavingsLedgerResponse

router = APIRouter(tags=["savings ledger"])


@router.get(
    "/api/savings-ledger",
    response_model=SavingsLedgerResponse,
    summary="The guarantee per billing month: promised vs realized (back office: cost, ESR, margin)",
    description="Months oldest first, the newest month to date. A token with the `backoffice` role also gets "
    "Blocks' amortized cost, the realized effective savings rate, the margin or shortfall "
    "against the promise and the hindsight regret of the Savings Plans position.",
    responses=error_docs(400, 401, 403, 503),
)
async def get_savings_ledger(request: Request, scope: TenantScope = Depends(tenant_scope)) -> Response:
    p.reject_unknown(request.query_params.keys(), ())
    backoffice = scope.principal.is_backoffice
    body = await run_in_threadpool(lambda: run_ledger(scope.data, backoffice).model_dump_json().encode())
    return Response(body, media_type=JSON)
