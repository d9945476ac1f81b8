"""Which source the requested days come from (the data_sources_daily mart): Cost Explorer before a tenant's first
CUR delivery, CUR after. Figures over Cost Explorer days are preliminary: no resources, tags or list prices."""

from __future__ import annotations

from datetime import date
from typing import Any

from serving.data.store import TenantData
from serving.schemas import DataSourceSpan

COST_EXPLORER = "cost_explorer"


def source_fields(data: TenantData, start: date | None, end: date | None) -> dict[str, Any]:
    """The `sources` and `preliminary` fields of a response covering start..end (inclusive)."""
    spans = (
        [] if start is None or end is None else data.cached(("sources", start, end), lambda: _spans(data, start, end))
    )
    return {"sources": spans, "preliminary": any(s.source == COST_EXPLORER for s in spans)}


def _spans(data: TenantData, start: date, end: date) -> list[DataSourceSpan]:
    rows = data.rows(
        f"SELECT CASE WHEN source_format = '{COST_EXPLORER}' THEN '{COST_EXPLORER}' ELSE 'cur' END AS source, "
        "min(usage_date), max(usage_date) FROM data_sources_daily WHERE usage_date BETWEEN ? AND ? "
        "GROUP BY 1 ORDER BY 2, 1",
        [start, end],
    )
    return [DataSourceSpan(source=r[0], first_day=r[1].isoformat(), last_day=r[2].isoformat()) for r in rows]


def is_preliminary(spans: list[DataSourceSpan], first: date, last: date) -> bool:
    """Whether any day of first..last comes from Cost Explorer."""
    return any(
        s.source == COST_EXPLORER
        and date.fromisoformat(s.first_day) <= last
        and first <= date.fromisoformat(s.last_day)
        for s in spans
    )
