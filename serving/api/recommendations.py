"""GET /api/recommendations and PATCH /api/recommendations/{id} (status, optimistic-concurrency friendly)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from blocks_pipelines.state import ConflictError
from serving.api.deps import TenantScope, tenant_scope
from serving.api.negotiation import CSV, CSV_DOC, JSON, query_lists, to_csv, wants_csv
from serving.data import params as p
from serving.data.recommendations import load_recommendations, run_recommendations, version_of
from serving.errors import ApiError, error_docs
from serving.schemas import RecommendationItemResponse, RecommendationsResponse, StatusUpdate

router = APIRouter(tags=["recommendations"])
Status = Literal["open", "accepted", "dismissed", "done", "snoozed"]
Category = Literal["rightsizing", "modernization", "commitment_posture", "idle"]
# A write without If-Match that loses a compare-and-swap rereads and applies again (last writer wins, but never
# from a stale read); a handful of rounds settles any race between API processes.
_UPDATE_ROUNDS = 5


@router.get(
    "/api/recommendations",
    response_model=RecommendationsResponse,
    summary="Recommendations, largest expected saving first",
    responses={
        200: {"content": CSV_DOC, "model": RecommendationsResponse, "description": "JSON or CSV"},
        **error_docs(400, 401, 403, 503),
    },
)
async def list_recommendations(
    request: Request,
    scope: TenantScope = Depends(tenant_scope),
    status: Status | None = Query(None),
    category: Category | None = Query(None),
    format: Literal["json", "csv"] | None = Query(None, description="csv, or send Accept: text/csv"),
) -> Response:
    raw = query_lists(request)
    p.reject_unknown(raw, ("status", "category", "format"))
    as_csv = wants_csv(request, raw)
    result = await run_in_threadpool(
        lambda: run_recommendations(scope.data, scope.recommendation_statuses(), status, category)
    )
    if as_csv:
        body = to_csv(
            [
                "recommendation_id",
                "category",
                "title",
                "service",
                "usage_account_id",
                "region",
                "expected_monthly_savings",
                "status",
                "sample",
            ],
            (
                (
                    r.recommendation_id,
                    r.category,
                    r.title,
                    r.service,
                    r.usage_account_id,
                    r.region,
                    r.expected_monthly_savings,
                    r.status,
                    result.sample,
                )
                for r in result.items
            ),
        )
        return Response(body, media_type=CSV)
    return Response(result.model_dump_json().encode(), media_type=JSON)


@router.patch(
    "/api/recommendations/{recommendation_id}",
    response_model=RecommendationItemResponse,
    summary="Change a recommendation's status (admin)",
    description="Idempotent: repeating the same status returns the item unchanged. Send the item's `version` as "
    "If-Match to fail with 412 instead of overwriting a change made meanwhile.",
    responses={
        200: {"headers": {"ETag": {"schema": {"type": "string"}, "description": "the new version"}}},
        **error_docs(400, 401, 403, 404, 409, 412, 413, 503),
    },
)
async def update_recommendation(
    scope: TenantScope = Depends(tenant_scope),
    recommendation_id: str = Path(max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$"),
    update: StatusUpdate = Body(...),
    if_match: str | None = Header(None, max_length=256, description="the version you last saw"),
) -> Response:
    scope.require_admin()
    item = await run_in_threadpool(_update, scope, recommendation_id, update.status, if_match)
    body = RecommendationItemResponse(**scope.data.scope_fields(), item=item)
    return Response(body.model_dump_json().encode(), media_type=JSON, headers={"ETag": f'"{item.version}"'})


def _update(scope: TenantScope, recommendation_id: str, status: str, if_match: str | None):
    for _ in range(_UPDATE_ROUNDS):
        try:
            return _check_and_set(scope, recommendation_id, status, if_match)
        except ConflictError:
            if if_match is not None:
                raise _version_mismatch(recommendation_id, if_match, "another change landed first") from None
    raise ApiError(409, "conflict", f"recommendation {recommendation_id} kept changing while being written; retry")


def _version_mismatch(recommendation_id: str, if_match: str, current: str) -> ApiError:
    return ApiError(
        412,
        "version_mismatch",
        f"recommendation {recommendation_id} changed since version {if_match}; {current}: reload and retry",
        "If-Match",
    )


def _check_and_set(scope: TenantScope, recommendation_id: str, status: str, if_match: str | None):
    """Check If-Match against the status read now, then write only if the stored status is still that one
    (a compare-and-swap in the state store, atomic across API processes)."""
    stored = scope.recommendation_statuses()
    item = next((r for r in load_recommendations(scope.data, stored) if r.recommendation_id == recommendation_id), None)
    if item is None:
        raise ApiError(
            404,
            "not_found",
            f"recommendation {recommendation_id!r} does not exist for this tenant; "
            "list them with GET /api/recommendations",
        )
    if if_match is not None and if_match.strip().removeprefix("W/").strip('"') not in (item.version, "*"):
        raise _version_mismatch(
            recommendation_id, if_match, f"current version is {item.version} (status {item.status!r})"
        )
    if item.status == status:
        return item
    scope.set_recommendation_status(recommendation_id, status, expected=stored.get(recommendation_id))
    return item.model_copy(update={"status": status, "version": version_of(recommendation_id, status)})
