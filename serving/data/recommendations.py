"""Recommendations from the mart, with the user's status changes (state store) merged in at read time."""

from __future__ import annotations

import hashlib
import json

from serving.data.store import TenantData
from serving.refs import reference
from serving.schemas import Recommendation, RecommendationsResponse

STATUSES = ("open", "accepted", "dismissed", "done", "snoozed")  # the state store's RECOMMENDATION_STATUSES


def version_of(recommendation_id: str, status: str) -> str:
    """An ETag-like version: changes exactly when the status does, so If-Match detects a concurrent edit."""
    return hashlib.sha256(f"{recommendation_id}|{status}".encode()).hexdigest()[:16]


def load_recommendations(data: TenantData, statuses: dict[str, str]) -> list[Recommendation]:
    rows = data.cached(
        ("recommendation_rows",),
        lambda: data.dicts("SELECT * FROM recommendations ORDER BY expected_monthly_savings DESC, recommendation_id"),
    )
    out = []
    for r in rows:
        status = statuses.get(r["recommendation_id"]) or r["status"] or "open"
        out.append(
            Recommendation(
                recommendation_id=r["recommendation_id"],
                category=r["category"],
                rec_type=r["rec_type"],
                resource_id=r["resource_id"],
                usage_account_id=r["usage_account_id"],
                region=r["region"],
                service=r["service"],
                title=r["title"],
                rationale=r["rationale"] or "",
                expected_monthly_savings=round(r["expected_monthly_savings"] or 0.0, 2),
                steps=_steps(r["steps"]),
                status=status,
                version=version_of(r["recommendation_id"], status),
                generated_at=r["generated_at"].isoformat() if r["generated_at"] else None,
            )
        )
    return out


def run_recommendations(
    data: TenantData, statuses: dict[str, str], status: str | None = None, category: str | None = None
) -> RecommendationsResponse:
    items = [
        r
        for r in load_recommendations(data, statuses)
        if (status is None or r.status == status) and (category is None or r.category == category)
    ]
    return RecommendationsResponse(
        **data.scope_fields(),
        items=items,
        total_expected_monthly_savings=round(sum(r.expected_monthly_savings for r in items), 2),
        reference=reference("/api/recommendations", {"status": status, "category": category}),
    )


def _steps(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        steps = json.loads(raw)
    except ValueError:
        return [raw]
    return [str(s) for s in steps] if isinstance(steps, list) else [str(steps)]
