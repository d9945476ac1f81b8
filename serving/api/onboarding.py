"""POST /api/ingest/test-connection and POST /api/tenant/setup, wired to blocks_pipelines.connect (admin only)."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from serving.api.deps import TenantScope, tenant_scope
from serving.errors import ApiError, error_docs
from serving.schemas import ConnectionCheckResponse, ConnectionStatusResponse, SetupResponse

router = APIRouter(tags=["onboarding"])


def _connect_function(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ApiError(
            501,
            "not_implemented",
            f"{module}.{name} is not available in this deployment; the onboarding code has not been installed yet",
        ) from None


@router.post(
    "/api/ingest/test-connection",
    response_model=ConnectionCheckResponse,
    summary="Validate the tenant's AWS role, CUR bucket and Athena/Glue access (admin)",
    responses=error_docs(401, 403, 413, 501, 503),
)
async def test_connection(scope: TenantScope = Depends(tenant_scope)) -> ConnectionCheckResponse:
    scope.require_admin()
    run_checks = _connect_function("blocks_pipelines.connect.checks", "run_connection_checks")
    results = await run_in_threadpool(lambda: run_checks(scope.tenant, actor=scope.principal.subject))
    checks = [r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in results]
    return ConnectionCheckResponse(
        tenant_id=scope.tenant_id, ok=all(c.get("status") != "fail" for c in checks), checks=checks
    )


@router.get(
    "/api/connection",
    response_model=ConnectionStatusResponse,
    summary="The AWS connection's status from the latest connection test, with each failing check's fix",
    responses=error_docs(401, 403, 503),
)
async def connection(scope: TenantScope = Depends(tenant_scope)) -> ConnectionStatusResponse:
    doc = await run_in_threadpool(scope.connection_status)
    if not doc:  # never tested: the registry's configured status (pending for a new tenant)
        return ConnectionStatusResponse(
            tenant_id=scope.tenant_id,
            status=scope.tenant.connection.status,
            checked_at=None,
            role_arn=scope.tenant.connection.role_arn,
            checks={},
            failing=[],
        )
    return ConnectionStatusResponse(
        tenant_id=scope.tenant_id, **{k: doc.get(k) for k in ("status", "checked_at", "role_arn", "checks", "failing")}
    )


@router.post(
    "/api/tenant/setup",
    response_model=SetupResponse,
    summary="Kick off the tenant's setup and backfill (admin)",
    responses=error_docs(401, 403, 413, 501, 503),
)
async def tenant_setup(scope: TenantScope = Depends(tenant_scope)) -> SetupResponse:
    scope.require_admin()
    setup = _connect_function("blocks_pipelines.connect.setup", "setup_tenant")
    kwargs: dict[str, Any] = {}
    if "actor" in inspect.signature(setup).parameters:
        kwargs["actor"] = scope.principal.subject
    from blocks_pipelines.tenants.config import TenantConfigError

    try:
        from blocks_pipelines.connect.dagster_api import DagsterApiError
    except ImportError:  # pragma: no cover - shipped together with setup.py
        DagsterApiError = RuntimeError  # noqa: N806
    try:
        result = await run_in_threadpool(lambda: setup(scope.tenant, **kwargs))
    except TenantConfigError as exc:
        raise ApiError(400, "invalid_tenant", str(exc)) from None
    except DagsterApiError as exc:
        raise ApiError(
            503,
            "orchestrator_unavailable",
            f"could not start the backfill: {exc}; check that Dagster is running (BLOCKS_DAGSTER_URL) and retry",
        ) from None
    if hasattr(result, "to_dict"):
        result = result.to_dict()
    elif not isinstance(result, dict):
        result = {"value": str(result)}
    return SetupResponse(tenant_id=scope.tenant_id, result=result)
