"""GET /api/spend and GET /api/projection."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from serving.api.deps import TenantScope, tenant_scope
from serving.api.negotiation import CSV, CSV_DOC, JSON, query_lists, to_csv, wants_csv
from serving.data import params as p
from serving.data.projection import run_projection
from serving.data.spend import SPEND_CSV_HEADER, cached_spend, parse_spend_query, spend_csv_rows
from serving.errors import error_docs
from serving.hot_cache import hot_key
from serving.schemas import ProjectionResponse, SpendResponse

router = APIRouter(tags=["spend"])

SPEND_EXAMPLE = {
    "tenant_id": "acme_corp",
    "data_status": "ready",
    "sample": False,
    "query": {
        "start": "2026-10-01",
        "end": "2026-10-02",
        "granularity": "day",
        "group_by": "service",
        "cost_type": "amortized",
        "filters": {},
    },
    "series": [{"period_start": "2026-10-01", "group": "AmazonEC2", "cost": 412.5}],
    "totals": {
        "cost": 412.5,
        "unblended_cost": 450.0,
        "amortized_cost": 412.5,
        "public_on_demand_cost": 520.0,
        "savings": 107.5,
        "by_group": [
            {"group": "AmazonEC2", "cost": 412.5, "share_pct": 100.0, "public_on_demand_cost": 520.0, "savings": 107.5}
        ],
    },
    "reference": {
        "endpoint": "/api/spend",
        "params": {"start": "2026-10-01", "end": "2026-10-02"},
        "ui_link": "/app/dashboard?end=2026-10-02&start=2026-10-01",
    },
    "sources": [
        {"source": "cost_explorer", "first_day": "2026-10-01", "last_day": "2026-10-01"},
        {"source": "cur", "first_day": "2026-10-02", "last_day": "2026-10-02"},
    ],
    "preliminary": True,
}


def _param(name: str, schema: dict, description: str, multi: bool = False) -> dict:
    if multi:
        schema = {"type": "array", "items": schema}
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
        **({"style": "form", "explode": True} if multi else {}),
    }


_STR = {"type": "string"}
# Declared here for the OpenAPI document only: parse_spend_query validates them (one parser for the API and Major
# Tom, and it saves FastAPI's per-parameter work on the hot path).
SPEND_PARAMETERS = [
    _param("start", {"type": "string", "format": "date"}, "first day, YYYY-MM-DD (default: 30 days before end)"),
    _param("end", {"type": "string", "format": "date"}, "last day, inclusive (default: the latest day with data)"),
    _param("granularity", {"type": "string", "enum": list(p.GRANULARITIES), "default": "day"}, "series step"),
    _param("group_by", _STR, "account | ou | service | region | charge_class | tag:<key>"),
    _param("account", {"type": "string", "pattern": r"^\d{12}$"}, "12-digit account ids", multi=True),
    _param("ou", _STR, "OU paths like Root/Engineering; an OU includes its sub-OUs", multi=True),
    _param("service", _STR, "service codes, e.g. AmazonEC2", multi=True),
    _param("region", _STR, "region codes; 'global' for services without a region", multi=True),
    _param("tag", _STR, "key=value, e.g. user:team=web", multi=True),
    _param("charge_class", {"type": "string", "enum": list(p.CHARGE_CLASSES)}, "charge classes", multi=True),
    _param("cost_type", {"type": "string", "enum": list(p.COST_TYPES), "default": "amortized"}, "cost basis"),
    _param("format", {"type": "string", "enum": ["json", "csv"]}, "csv, or send Accept: text/csv"),
]


@router.get(
    "/api/spend",
    response_model=SpendResponse,
    summary="Spend over time, grouped and filtered",
    responses={
        200: {
            "content": CSV_DOC,
            "description": "series and totals (JSON) or the series (CSV)",
            "model": SpendResponse,
        },
        **error_docs(400, 401, 403, 503),
    },
    openapi_extra={
        "parameters": SPEND_PARAMETERS,
        "responses": {"200": {"content": {"application/json": {"example": SPEND_EXAMPLE}}}},
    },
)
async def get_spend(request: Request, scope: TenantScope = Depends(tenant_scope)) -> Response:
    raw = query_lists(request)
    q = parse_spend_query(raw, scope.data.last_date, extra_allowed=("format",))
    as_csv = wants_csv(request, raw)
    key = ("spend", q, as_csv)
    body = scope.data.peek(key)
    if body is None:
        body = await run_in_threadpool(scope.data.cached, key, lambda: _render_spend(scope, q, as_csv))
    media_type = CSV if as_csv else JSON
    remember(request, scope, body, media_type)
    return Response(body, media_type=media_type)


def remember(request: Request, scope: TenantScope, body: bytes, media_type: str) -> None:
    """Serve the same request from the hot cache next time (see serving.hot_cache)."""
    accept = request.headers.get("accept", "").encode() or None
    key = hot_key(request.scope["path"], request.scope["query_string"], accept)
    scope.data.put(key, (body, media_type.encode()))


def _render_spend(scope: TenantScope, q, as_csv: bool) -> bytes:
    result = cached_spend(scope.data, q)
    if as_csv:
        return to_csv(SPEND_CSV_HEADER, spend_csv_rows(result, q))
    return result.model_dump_json().encode()


@router.get(
    "/api/projection",
    response_model=ProjectionResponse,
    summary="Baseline vs projected spend",
    responses=error_docs(400, 401, 403, 503),
)
async def get_projection(
    request: Request,
    scope: TenantScope = Depends(tenant_scope),
    period: Literal["day", "week", "month", "ytd"] = Query("month"),
) -> Response:
    p.reject_unknown(request.query_params.keys(), ("period",))
    key = ("projection", period)
    body = scope.data.peek(key)
    if body is None:
        body = await run_in_threadpool(
            scope.data.cached, key, lambda: run_projection(scope.data, period).model_dump_json().encode()
        )
    remember(request, scope, body, JSON)
    return Response(body, media_type=JSON)
