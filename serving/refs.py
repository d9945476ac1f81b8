"""References: every figure the API or Major Tom shows can be traced to an API call and a UI view."""

from __future__ import annotations

from urllib.parse import urlencode

from serving.schemas import Reference

UI_VIEWS = {
    "/api/spend": "/app/dashboard",
    "/api/projection": "/app/dashboard",
    "/api/recommendations": "/app/recommendations",
    "/api/savings-plans": "/app/savings-plans",
    "/api/connection": "/app/onboarding",
    "/api/savings-ledger": "/app/savings-ledger",
    "/api/anomalies": "/app/anomalies",
}


def reference(endpoint: str, params: dict[str, str | list[str] | None]) -> Reference:
    clean = {k: v for k, v in params.items() if v not in (None, [], "")}
    query = urlencode(sorted(clean.items()), doseq=True)
    ui = UI_VIEWS[endpoint]
    return Reference(endpoint=endpoint, params=clean, ui_link=f"{ui}?{query}" if query else ui)
