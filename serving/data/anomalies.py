"""The anomalies query (GET /api/anomalies and Major Tom read it alike): filters over the tenant's alerts. Pure."""

from __future__ import annotations

from blocks_pipelines.state.alert_models import SEVERITY_RANK, Alert, AlertKind, AlertStatus, Severity
from serving.data import params as p

FILTERS = ("status", "kind", "min_severity", "since", "service", "account")
DEFAULT_STATUSES = ("open", "acknowledged")


def filter_alerts(alerts: list[Alert], raw: dict[str, list[str]]) -> tuple[list[Alert], dict[str, int]]:
    """The query's filters over the tenant's alerts (pure). Default status: open and acknowledged."""
    statuses = p.one_of_each("status", raw.get("status", []), [s.value for s in AlertStatus])
    kinds = p.one_of_each("kind", raw.get("kind", []), [k.value for k in AlertKind])
    floor = p.choose("min_severity", p.single(raw, "min_severity"), [s.value for s in Severity], "low")
    since_raw = p.single(raw, "since")
    since = p.parse_date("since", since_raw) if since_raw else None
    services = p.matching("service", raw.get("service", []), p.SERVICE_RE, "an AWS service code, e.g. AmazonEC2")
    accounts = p.matching("account", raw.get("account", []), p.ACCOUNT_RE, "a 12-digit account id")
    wanted = set(statuses or DEFAULT_STATUSES)
    kept = [
        a
        for a in alerts
        if (not kinds or a.kind.value in kinds)
        and SEVERITY_RANK[a.severity] >= SEVERITY_RANK[Severity(floor)]
        and (since is None or a.last_seen >= since)
        and (not services or a.dimensions.get("service") in services)
        and (not accounts or a.dimensions.get("usage_account_id") in accounts)
    ]
    counts = {s.value: sum(a.status is s for a in kept) for s in AlertStatus}
    return [a for a in kept if a.status.value in wanted], counts
