"""GET /api/anomalies (filters, status) and PATCH /api/anomalies/{alert_id} (acknowledge, resolve, reopen).

The alerts live in the state store (stored once by the spend_anomalies asset); the tenant comes from the token only,
so another tenant's alert id is a 404, never a 403 that would confirm it exists.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from blocks_pipelines.state import ConflictError, NotFoundError
from blocks_pipelines.state.alert_models import Alert, AlertStatus
from serving.api.deps import TenantScope, tenant_scope
from serving.api.negotiation import JSON, query_lists
from serving.data import params as p
from serving.data.anomalies import FILTERS, filter_alerts
from serving.errors import ApiError, error_docs
from serving.refs import reference
from serving.schemas import Reference, _Scoped

router = APIRouter(tags=["anomalies"])
MAX_ITEMS = 500


class Anomaly(Alert):
    version: str = Field(description="send as If-Match on PATCH to fail with 412 instead of overwriting a change")


class AnomaliesResponse(_Scoped):
    items: list[Anomaly]
    total_impact_usd: float = Field(description="sum of impact_usd over the items")
    counts: dict[str, int] = Field(description="items per status, before the status filter")
    reference: Reference


class AnomalyItemResponse(_Scoped):
    item: Anomaly


class AnomalyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["acknowledged", "resolved", "open"] = Field(examples=["acknowledged"])
    note: str = Field("", max_length=1000, examples=["expected: the Black Friday load test"])


def version_of(alert: Alert) -> str:
    key = f"{alert.alert_id}|{alert.status.value}|{alert.status_at.isoformat() if alert.status_at else ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _item(alert: Alert) -> Anomaly:
    return Anomaly(**alert.model_dump(), version=version_of(alert))


@router.get(
    "/api/anomalies",
    response_model=AnomaliesResponse,
    summary="Spend anomalies, Savings Plans dips and late data: latest first",
    description="Filters (each optional, repeatable where a list makes sense): status (default open and "
    "acknowledged), kind, min_severity, since (last seen on or after, YYYY-MM-DD), service, "
    "account.",
    responses=error_docs(400, 401, 403, 503),
)
async def list_anomalies(
    request: Request,
    scope: TenantScope = Depends(tenant_scope),
    # declared for the OpenAPI document; parsed (and every error named) by serving.data.anomalies.filter_alerts
    status: list[str] = Query([], description="open | acknowledged | resolved (default: open and acknowledged)"),
    kind: list[str] = Query([], description="spend_spike | new_service | coverage_dip | utilization_dip | late_data"),
    min_severity: Literal["low", "medium", "high", "critical"] | None = Query(None),
    since: str | None = Query(None, description="last seen on or after (YYYY-MM-DD)", examples=["2026-11-01"]),
    service: list[str] = Query([], description="AWS service code, e.g. AmazonEC2"),
    account: list[str] = Query([], description="12-digit account id"),
) -> Response:
    raw = query_lists(request)
    p.reject_unknown(raw, FILTERS)
    alerts, counts = filter_alerts(await run_in_threadpool(scope.alerts), raw)
    items = [_item(a) for a in alerts[:MAX_ITEMS]]
    body = AnomaliesResponse(
        **scope.data.scope_fields(),
        items=items,
        counts=counts,
        total_impact_usd=round(sum(a.impact_usd for a in items), 2),
        reference=reference("/api/anomalies", {k: v for k, v in raw.items() if k in FILTERS}),
    )
    return Response(body.model_dump_json().encode(), media_type=JSON)


@router.patch(
    "/api/anomalies/{alert_id}",
    response_model=AnomalyItemResponse,
    summary="Acknowledge, resolve or reopen an anomaly",
    description="Idempotent: repeating the same status and note returns the item unchanged. Send the item's "
    "`version` as If-Match to fail with 412 instead of overwriting a change made meanwhile. An "
    "acknowledged or resolved anomaly is not notified again.",
    responses={
        200: {"headers": {"ETag": {"schema": {"type": "string"}, "description": "the new version"}}},
        **error_docs(400, 401, 403, 404, 409, 412, 413, 503),
    },
)
async def update_anomaly(
    scope: TenantScope = Depends(tenant_scope),
    alert_id: str = Path(max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$"),
    update: AnomalyUpdate = Body(...),
    if_match: str | None = Header(None, max_length=256, description="the version you last saw"),
) -> Response:
    item = await run_in_threadpool(_update, scope, alert_id, update, if_match)
    body = AnomalyItemResponse(**scope.data.scope_fields(), item=item)
    return Response(body.model_dump_json().encode(), media_type=JSON, headers={"ETag": f'"{item.version}"'})


def _update(scope: TenantScope, alert_id: str, update: AnomalyUpdate, if_match: str | None) -> Anomaly:
    try:
        current = scope.alert(alert_id)
        seen = if_match.strip().removeprefix("W/").strip('"') if if_match is not None else None
        if seen is not None and seen not in (version_of(current), "*"):
            raise ApiError(
                412,
                "version_mismatch",
                f"anomaly {alert_id} changed since version {seen}; current "
                f"version is {version_of(current)} (status "
                f"{current.status.value}): reload and retry",
                "If-Match",
            )
        updated = scope.set_alert_status(
            alert_id, AlertStatus(update.status), update.note, expected=current.status if seen is not None else None
        )
    except NotFoundError:
        raise ApiError(
            404, "not_found", f"anomaly {alert_id!r} does not exist for this tenant; list them with GET /api/anomalies"
        ) from None
    except ConflictError as exc:
        if if_match is not None:
            raise ApiError(412, "version_mismatch", f"{exc}", "If-Match") from None
        raise ApiError(409, "conflict", f"{exc}") from None
    return _item(updated)
