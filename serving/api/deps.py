"""Authentication and tenant scoping, in one place.

`tenant_scope` is the only way a route reaches data: it verifies the bearer token, looks the token's tenant up in
the registry, and hands back a TenantScope whose mart accessor and state-store methods are bound to that tenant.
No route takes a tenant id from the request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from blocks_pipelines.tenants.config import TenantConfig
from serving.auth.principal import AuthError, Forbidden, Principal
from serving.data.store import TenantData

bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A Cognito ID or access token (production) or a `blocks dev-token` (development)",
)


async def current_principal(
    request: Request, creds: HTTPAuthorizationCredentials | None = Security(bearer)
) -> Principal:
    if creds is None or not creds.credentials:
        raise AuthError("missing bearer token: send 'Authorization: Bearer <jwt>'")
    return request.app.state.verifier.verify(creds.credentials)


@dataclass(frozen=True)
class TenantScope:
    principal: Principal
    tenant: TenantConfig
    data: TenantData
    _state: Any  # blocks_pipelines.state.StateStore (lazily created by the app)

    @property
    def tenant_id(self) -> str:
        return self.principal.tenant_id

    def require_admin(self) -> None:
        if not self.principal.is_admin:
            raise Forbidden("this action needs the admin role")

    def recommendation_statuses(self) -> dict[str, str]:
        return self._state().get_recommendation_statuses(self.tenant_id)

    def set_recommendation_status(self, recommendation_id: str, status: str, expected: str | None) -> None:
        """A compare-and-swap: ConflictError when the stored status is no longer `expected` (None: none stored)."""
        self._state().set_recommendation_status(
            self.tenant_id, recommendation_id, status, self.principal.subject, expected=expected
        )

    def alerts(self) -> list:
        """The tenant's alerts (spend anomalies, dips, late data), latest first."""
        return self._state().list_alerts(self.tenant_id)

    def alert(self, alert_id: str):
        return self._state().get_alert(self.tenant_id, alert_id)

    def set_alert_status(self, alert_id: str, status, note: str, expected=None):
        """Audited under the token's subject; with `expected`, a compare-and-swap on the stored status."""
        return self._state().set_alert_status(
            self.tenant_id, alert_id, status, self.principal.subject, note, expected=expected
        )

    def connection_status(self) -> dict[str, Any] | None:
        """The latest connection test's outcome, None before the first."""
        return self._state().get_connection(self.tenant_id)

    def proposals(self) -> list[dict[str, Any]]:
        return [p.model_dump(mode="json") for p in self._state().list_proposals(self.tenant_id)]

    def audit(self, action: str, target: str, result: str, details: dict[str, Any]) -> None:
        self._state().append_audit(self.principal.subject, action, f"{self.tenant_id}/{target}", result, details)


def resolve_scope(app_state: Any, principal: Principal) -> TenantScope:
    """The one function that turns a verified principal into tenant-bound data access (may load a snapshot)."""
    tenant = app_state.tenants.get(principal.tenant_id)
    if tenant is None:
        raise Forbidden(f"tenant {principal.tenant_id!r} is not registered on this deployment")
    return TenantScope(principal, tenant, app_state.marts.tenant(principal.tenant_id), app_state.state_store)


async def tenant_scope(request: Request, principal: Principal = Depends(current_principal)) -> TenantScope:
    app_state = request.app.state
    if app_state.marts.needs_load(principal.tenant_id):
        return await run_in_threadpool(resolve_scope, app_state, principal)
    return resolve_scope(app_state, principal)
