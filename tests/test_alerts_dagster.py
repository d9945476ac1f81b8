"""The spend_anomalies asset on an ephemeral Dagster instance: alerts raised once, notifications sent once, a dead
webhook visible in the metadata without failing the run, late data as an ERROR check."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from blocks_pipelines.alerts.defs import build_alert_defs
from blocks_pipelines.lake.layout import mart_uri
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state import get_state_store
from blocks_pipelines.state.alert_models import AlertKind, AlertStatus
from blocks_pipelines.tenants.alert_policy import FileChannel, WebhookChannel
from sp_purchase_helpers import tenant
from tests.alerts_helpers import daily_rows, spend_hourly_from_daily, utc_midnight, write_mart
from tests.test_alerts_notify import _dead_url

T = "acme_corp"
NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
TODAY = NOW.date()
SERIES = {
    ("AmazonEC2", "111111111102"): 800.0,
    ("AmazonRDS", "111111111103"): 300.0,
    ("AmazonS3", "111111111105"): 120.0,
}


def _tenant(channels):
    t = tenant(T)
    return t.model_copy(update={"alerts": t.alerts.model_copy(update={"channels": channels})})


def _materialize(t, instance):
    defs = build_alert_defs(t)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance, raise_on_error=True)
    event = instance.get_latest_materialization_event(dg.AssetKey([T, "spend_anomalies"]))
    meta = {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    return result, meta, checks


@pytest.fixture
def spiky_lake(blocks_env):
    spike_day = TODAY - timedelta(days=2)
    daily = daily_rows(150, TODAY - timedelta(days=1), SERIES, {("AmazonEC2", "111111111102", spike_day): 2400.0})
    write_mart("spend_hourly", T, spend_hourly_from_daily(daily, T, through=NOW - timedelta(hours=8)))
    return spike_day


def test_a_spike_is_raised_once_and_a_dead_webhook_does_not_fail_the_run(spiky_lake, tmp_path):
    t = _tenant(
        [
            FileChannel(type="file", path=str(tmp_path / "{tenant}.jsonl")),
            WebhookChannel(type="webhook", url=_dead_url()),
        ]
    )
    instance = dg.DagsterInstance.ephemeral()
    result, meta, checks = _materialize(t, instance)
    assert result.success
    assert (meta["raised"], meta["open_this_week"]) == (1, 1)
    assert (meta["notifications_sent"], meta["notifications_failed"]) == (1, 1)
    assert meta["failed_channels"][0].startswith("webhook:") and "ConnectError" in meta["failures"][0]["error"]
    assert "AmazonEC2" in meta["this_week"]
    warn = checks["no_open_spend_anomalies"]
    assert not warn.passed and warn.severity is dg.AssetCheckSeverity.WARN
    assert checks["cur_data_on_time"].passed

    [alert] = get_state_store().list_alerts(T)
    assert (alert.kind, alert.first_seen, alert.dimensions["service"]) == (
        AlertKind.spend_spike,
        spiky_lake,
        "AmazonEC2",
    )
    assert alert.impact_usd == pytest.approx(2400.0, rel=0.05)
    lines = (tmp_path / f"{T}.jsonl").read_text().splitlines()
    assert [json.loads(x)["alert"]["alert_id"] for x in lines] == [alert.alert_id]
    mart = pl.read_parquet(mart_uri(get_settings().lake_uri, "spend_anomalies", T))
    assert mart.filter(pl.col("alert_id") == alert.alert_id).height == 1

    # the next tick: nothing new raised, nothing sent twice; the dead channel waits before its retry
    result, meta, _ = _materialize(t, instance)
    assert result.success and meta["raised"] == 0 and meta["notifications_sent"] == 0
    assert meta["notifications_skipped"] == 2
    assert len((tmp_path / f"{T}.jsonl").read_text().splitlines()) == 1


def test_late_data_fails_the_error_check_and_resolves_when_data_arrives(blocks_env, tmp_path):
    t = _tenant([FileChannel(type="file", path=str(tmp_path / "{tenant}.jsonl"))])
    daily = daily_rows(120, TODAY - timedelta(days=1), SERIES)
    write_mart("spend_hourly", T, spend_hourly_from_daily(daily, T, through=utc_midnight(TODAY - timedelta(days=3))))
    instance = dg.DagsterInstance.ephemeral()
    result, meta, checks = _materialize(t, instance)
    assert result.success
    late = checks["cur_data_on_time"]
    assert not late.passed and late.severity is dg.AssetCheckSeverity.ERROR
    assert "behind" in late.metadata["reason"].value
    [alert] = get_state_store().list_alerts(T)
    assert alert.kind is AlertKind.late_data and alert.actual >= 72

    write_mart("spend_hourly", T, spend_hourly_from_daily(daily, T, through=NOW - timedelta(hours=6)))
    result, meta, checks = _materialize(t, instance)
    assert checks["cur_data_on_time"].passed and meta["resolved"] == 1
    stored = get_state_store().get_alert(T, alert.alert_id)
    assert stored.status is AlertStatus.resolved and stored.status_by == "detector"
    assert "data arrived" in stored.note


def test_no_marts_yet_is_not_an_error(blocks_env, tmp_path):
    t = _tenant([FileChannel(type="file", path=str(tmp_path / "x.jsonl"))])
    result, meta, checks = _materialize(t, dg.DagsterInstance.ephemeral())
    assert result.success and meta["anomalies_in_history"] == 0
    assert Path(mart_uri(get_settings().lake_uri, "spend_anomalies", T)).exists()


def test_only_recent_open_alerts_are_offered_to_the_channels(blocks_env):
    from blocks_pipelines.alerts.defs import notifiable
    from tests.test_alerts_notify import _detection

    store = get_state_store()
    recent = store.record_alert(
        T,
        _detection("AmazonEC2").model_copy(
            update={"first_seen": TODAY - timedelta(days=2), "last_seen": TODAY - timedelta(days=1)}
        ),
    )[0]
    old = store.record_alert(
        T,
        _detection("AmazonRDS").model_copy(
            update={"first_seen": TODAY - timedelta(days=40), "last_seen": TODAY - timedelta(days=39)}
        ),
    )[0]
    offered = notifiable(store.list_alerts(T, [AlertStatus.open]), TODAY)
    assert [a.alert_id for a in offered] == [recent.alert_id] and old.alert_id != recent.alert_id


def test_a_utilization_dip_is_raised_like_a_spend_anomaly(blocks_env, tmp_path):
    from tests.test_alerts_position import position

    t = _tenant([FileChannel(type="file", path=str(tmp_path / "{tenant}.jsonl"))])
    daily = daily_rows(120, TODAY - timedelta(days=1), SERIES)
    write_mart("spend_hourly", T, spend_hourly_from_daily(daily, T, through=NOW - timedelta(hours=6)))
    dip_from = TODAY - timedelta(days=2)
    pos = position(
        30,
        lambda d: 80.0,
        lambda d: 50.0 if d >= dip_from else 98.0,
        commitment_per_hour=5.0,
        end=TODAY - timedelta(days=1),
    )
    write_mart("sp_position_hourly", T, pos.with_columns(pl.lit(T).alias("tenant_id")))
    result, meta, checks = _materialize(t, dg.DagsterInstance.ephemeral())
    [alert] = get_state_store().list_alerts(T)
    assert (alert.kind, alert.first_seen, alert.actual) == (AlertKind.utilization_dip, dip_from, 50.0)
    assert not checks["no_open_spend_anomalies"].passed and meta["notifications_sent"] == 1
