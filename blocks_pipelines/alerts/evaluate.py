"""One tick of a tenant's alerting: read its marts, run the detectors, store the alerts, publish spend_anomalies.

The spend_anomalies mart holds every spend anomaly in the tenant's history (what the analysts and the demo look at);
only anomalies still going in the last ALERT_WINDOW_DAYS become alerts, so a first run over two years of history
does not page anyone about last year.
"""

from __future__ import annotations

import io
import json
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from blocks_pipelines.alerts.delivery import detect_late_data
from blocks_pipelines.alerts.position import detect_coverage_dips, detect_utilization_dips
from blocks_pipelines.alerts.spend import SpendParams, detect_new_services, detect_spend_spikes, usage_daily
from blocks_pipelines.lake import fs
from blocks_pipelines.lake.layout import mart_uri
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state.alert_models import Alert, AlertKind, AlertStatus, Detection
from blocks_pipelines.state.records import utcnow
from blocks_pipelines.tenants.config import TenantConfig

ANOMALIES_MART = "spend_anomalies"
SPEND_MART, POSITION_MART = "spend_hourly", "sp_position_hourly"
ALERT_WINDOW_DAYS = 7
ANOMALY_COLUMNS = {
    "tenant_id": pl.Utf8,
    "alert_id": pl.Utf8,
    "kind": pl.Utf8,
    "severity": pl.Utf8,
    "service": pl.Utf8,
    "usage_account_id": pl.Utf8,
    "region": pl.Utf8,
    "first_seen": pl.Date,
    "last_seen": pl.Date,
    "days": pl.Int32,
    "expected": pl.Float64,
    "actual": pl.Float64,
    "impact_usd": pl.Float64,
    "score": pl.Float64,
    "top_usage_types": pl.Utf8,
    "message": pl.Utf8,
}


@dataclass
class Evaluation:
    as_of: date | None  # last complete day judged
    data_through: datetime | None
    history: list[Detection] = field(default_factory=list)  # every spend anomaly (the mart)
    current: list[Detection] = field(default_factory=list)  # what this tick raises or updates
    raised: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    mart_uri: str | None = None

    def open_of(self, *kinds: AlertKind) -> list[Detection]:
        return [d for d in self.current if d.kind in kinds]


def scan_mart(mart: str, tenant_id: str) -> pl.LazyFrame | None:
    """A mart as a lazy frame: a local file is scanned (only the columns a detector uses are read); an S3 object
    is fetched through the lake's boto3 client (endpoint override) first."""
    uri = mart_uri(get_settings().lake_uri, mart, tenant_id)
    if not fs.exists(uri):
        return None
    return pl.read_parquet(io.BytesIO(fs.read_bytes(uri))).lazy() if fs.is_s3(uri) else pl.scan_parquet(uri)


def coverage_of(spend_hourly: pl.LazyFrame | pl.DataFrame) -> tuple[date | None, datetime | None]:
    """(last complete UTC day, end of the last hour with data). A day whose last hour has not arrived is partial:
    judging it would compare half a day with whole ones."""
    last_hour = spend_hourly.lazy().select(pl.col("usage_hour").max()).collect().item()
    if last_hour is None:
        return None, None
    if last_hour.tzinfo is None:
        last_hour = last_hour.replace(tzinfo=timezone.utc)
    through = last_hour + timedelta(hours=1)
    as_of = last_hour.date() if last_hour.hour == 23 else last_hour.date() - timedelta(days=1)
    return as_of, through


def detect(
    tenant: TenantConfig, spend_hourly: pl.LazyFrame | pl.DataFrame | None, position: pl.DataFrame | None, now: datetime
) -> Evaluation:
    """Every detector over the tenant's marts; pure (no store, no lake)."""
    policy = tenant.alerts
    params = SpendParams(sensitivity=policy.sensitivity, min_impact_usd=policy.min_impact_usd)
    as_of, through = coverage_of(spend_hourly) if spend_hourly is not None else (None, None)
    out = Evaluation(as_of=as_of, data_through=through)
    expected_since = datetime.combine(tenant.history_start, datetime.min.time(), timezone.utc)
    if tenant.created_at is not None:
        expected_since = max(expected_since, tenant.created_at.astimezone(timezone.utc))
    late = detect_late_data(through, now, expected_since)
    if late is not None:
        out.current.append(late)
    if as_of is None:
        return out
    since = as_of - timedelta(days=ALERT_WINDOW_DAYS - 1)
    daily = usage_daily(spend_hourly)
    out.history = detect_spend_spikes(daily, as_of, params) + detect_new_services(
        daily, as_of, params, since=tenant.history_start
    )
    out.current += [
        d for d in out.history if d.last_seen >= since and (d.kind is AlertKind.spend_spike or d.first_seen >= since)
    ]
    if position is not None and not position.is_empty():
        out.current += detect_coverage_dips(position, as_of, policy.coverage_dip_points, policy.min_impact_usd, since)
        out.current += detect_utilization_dips(
            position, as_of, policy.utilization_floor_pct, policy.min_impact_usd, since
        )
    return out


def anomalies_frame(tenant_id: str, detections: list[Detection]) -> pl.DataFrame:
    rows = [
        {
            "tenant_id": tenant_id,
            "alert_id": d.id_for(tenant_id),
            "kind": d.kind.value,
            "severity": d.severity.value,
            "service": d.dimensions.get("service"),
            "usage_account_id": d.dimensions.get("usage_account_id"),
            "region": d.dimensions.get("region"),
            "first_seen": d.first_seen,
            "last_seen": d.last_seen,
            "days": (d.last_seen - d.first_seen).days + 1,
            "expected": d.expected,
            "actual": d.actual,
            "impact_usd": d.impact_usd,
            "score": d.score,
            "top_usage_types": json.dumps([c.model_dump() for c in d.top_usage_types]),
            "message": d.message,
        }
        for d in detections
    ]
    return pl.DataFrame(rows, schema=ANOMALY_COLUMNS).sort("first_seen", "impact_usd", descending=[True, True])


def publish_anomalies(tenant_id: str, detections: list[Detection]) -> str:
    """Write the spend_anomalies mart aside, then swap it in (put_file is atomic)."""
    uri = mart_uri(get_settings().lake_uri, ANOMALIES_MART, tenant_id)
    with tempfile.TemporaryDirectory(prefix="blocks-anomalies-") as tmp:
        local = Path(tmp) / "data.parquet"
        anomalies_frame(tenant_id, detections).write_parquet(local, compression="zstd")
        fs.put_file(local, uri)
    return uri


def record(store, tenant_id: str, evaluation: Evaluation, now: datetime) -> None:
    """Store this tick's detections; close late-data episodes that are over (the data arrived)."""
    for detection in evaluation.current:
        alert, created = store.record_alert(tenant_id, detection, now)
        (evaluation.raised if created else evaluation.updated).append(alert)
    current_late = {d.id_for(tenant_id) for d in evaluation.open_of(AlertKind.late_data)}
    for alert in store.list_alerts(tenant_id, [AlertStatus.open, AlertStatus.acknowledged]):
        if alert.kind is AlertKind.late_data and alert.alert_id not in current_late:
            store.set_alert_status(
                tenant_id,
                alert.alert_id,
                AlertStatus.resolved,
                "detector",
                note=f"data arrived: through {evaluation.data_through:%Y-%m-%d %H:%M} UTC"
                if evaluation.data_through
                else "superseded",
            )
            evaluation.resolved.append(alert.alert_id)


def evaluate_tenant(tenant: TenantConfig, store, now: datetime | None = None) -> Evaluation:
    now = now or utcnow()
    position = scan_mart(POSITION_MART, tenant.id)
    evaluation = detect(
        tenant, scan_mart(SPEND_MART, tenant.id), position.collect() if position is not None else None, now
    )
    evaluation.mart_uri = publish_anomalies(tenant.id, evaluation.history)
    record(store, tenant.id, evaluation, now)
    return evaluation
