"""The alert record: one shape for spend spikes, new services, coverage and utilization dips and late data, so the
API, Major Tom, the notifiers and the state store handle them alike.

An alert's id is a stable hash of what it is about (tenant, kind, dimensions, first-seen day): re-detecting the same
anomaly on the next tick finds the same record instead of raising a new one.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AlertKind(str, Enum):
    spend_spike = "spend_spike"
    new_service = "new_service"
    coverage_dip = "coverage_dip"
    utilization_dip = "utilization_dip"
    late_data = "late_data"


class Severity(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


SEVERITY_RANK = {s: i for i, s in enumerate(Severity)}


class AlertStatus(str, Enum):
    open = "open"
    acknowledged = "acknowledged"
    resolved = "resolved"


def alert_id(tenant_id: str, kind: AlertKind, dimensions: dict[str, str], first_seen: date) -> str:
    dims = [f"{k}={dimensions[k]}" for k in sorted(dimensions)]
    key = "|".join([tenant_id, kind.value, first_seen.isoformat(), *dims])
    return f"{kind.value}.{first_seen.strftime('%Y%m%d')}.{hashlib.sha256(key.encode()).hexdigest()[:12]}"


class UsageTypeContribution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    usage_type: str
    actual: float
    expected: float
    impact: float = Field(description="actual - expected, $ on the latest anomalous day")


class Detection(BaseModel):
    """What a detector found, before the store decides whether it is new."""

    model_config = ConfigDict(extra="forbid")
    kind: AlertKind
    severity: Severity
    dimensions: dict[str, str] = Field(description="service, usage_account_id, region ... (what the alert is about)")
    first_seen: date = Field(description="first day of the anomalous run of days")
    last_seen: date
    expected: float | None = Field(None, description="the baseline on last_seen ($/day, or % for dips)")
    actual: float | None = Field(None, description="the observed value on last_seen")
    impact_usd: float = Field(0.0, description="$ above expected summed over first_seen..last_seen")
    unit: str = "usd_per_day"
    score: float | None = Field(None, description="robust z-score of last_seen (spikes)")
    top_usage_types: list[UsageTypeContribution] = Field(default_factory=list)
    message: str

    def id_for(self, tenant_id: str) -> str:
        return alert_id(tenant_id, self.kind, self.dimensions, self.first_seen)


class Alert(Detection):
    alert_id: str
    tenant_id: str
    status: AlertStatus = AlertStatus.open
    detected_at: datetime
    updated_at: datetime
    status_by: str | None = None
    status_at: datetime | None = None
    note: str = ""

    def as_notification(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def severity_for_impact(impact_usd: float, min_impact_usd: float) -> Severity:
    """Severity by dollars relative to the tenant's threshold: the same spike matters more to a small bill."""
    floor = max(min_impact_usd, 1.0)
    if impact_usd >= 20 * floor:
        return Severity.critical
    if impact_usd >= 5 * floor:
        return Severity.high
    if impact_usd >= 2 * floor:
        return Severity.medium
    return Severity.low
