"""The Dagster flow per tenant: proposal -> approval event (launchpad or runless) -> sensor -> purchase -> monitoring,
on an ephemeral instance with the real analyzer and the ledger purchaser."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from blocks_pipelines.lake.layout import mart_uri
from blocks_pipelines.resources import PurchaserResource, platform_resources
from blocks_pipelines.savings_plans import defs as sp_defs
from blocks_pipelines.savings_plans.lifecycle.monitoring import Band, MonitoringReport, find_band, monitor
from blocks_pipelines.savings_plans.purchase.ledger import LedgerPurchaser
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state import ProposalStatus, get_state_store
from sp_purchase_helpers import hourly_usage, tenant

T = "acme_corp"
NOW_HOUR = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def write_mart(name: str, frame: pl.DataFrame) -> None:
    path = Path(mart_uri(get_settings().lake_uri, name, T))
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


def position_rows(start: datetime, hours: int, commitment: float, used: float, eligible: float, covered: float):
    ts = pl.datetime_range(start, start + timedelta(hours=hours - 1), "1h", time_zone="UTC", eager=True)
    return pl.DataFrame({"usage_hour": ts}).with_columns(
        pl.lit(T).alias("tenant_id"),
        pl.lit("TOTAL").alias("savings_plan_arn"),
        pl.lit(commitment).alias("commitment"),
        pl.lit(used).alias("used_commitment"),
        pl.lit(commitment - used).alias("unused_commitment"),
        pl.lit(eligible).alias("eligible_on_demand_cost"),
        pl.lit(covered).alias("covered_on_demand_cost"),
        pl.lit(covered / eligible * 100).alias("coverage_pct"),
        pl.lit(used / commitment * 100).alias("utilization_pct"),
    )


@pytest.fixture
def lake(blocks_env):
    usage = hourly_usage(days=60, per_hour=20.0, end=NOW_HOUR - timedelta(hours=NOW_HOUR.hour))
    write_mart(
        "sp_eligible_usage_hourly",
        usage.select(
            pl.lit(T).alias("tenant_id"),
            pl.col("ts_hour").alias("usage_hour"),
            "eligible_on_demand_cost",
            (pl.col("eligible_on_demand_cost") * 0.1).alias("covered_on_demand_cost"),
            (pl.col("eligible_on_demand_cost") * 0.9).alias("uncovered_on_demand_cost"),
            (pl.col("eligible_on_demand_cost") * 0.072).alias("sp_effective_cost"),
            "sp_rate_ratio",
        ),
    )
    plan = position_rows(usage["ts_hour"].min(), usage.height, 1.44, 1.44, 20.0, 2.0).with_columns(
        pl.lit("arn:aws:savingsplans::111111111111:savingsplan/old").alias("savings_plan_arn")
    )
    total = position_rows(usage["ts_hour"].min(), usage.height, 1.44, 1.44, 20.0, 2.0)
    write_mart("sp_position_hourly", pl.concat([plan, total]))
    return usage


@pytest.fixture
def buys(monkeypatch):
    calls: list[str] = []

    class Counting(LedgerPurchaser):
        def buy(self, order):
            calls.append(order.proposal_id)
            return super().buy(order)

    # the purchaser is a resource: count what sp_purchases is handed, as a deployment could hand it another buyer
    monkeypatch.setattr(PurchaserResource, "for_tenant", lambda self, t, store: Counting(t, store, feedback=None))
    return calls


def run(defs, instance, key_names, run_config=None, tags=None):
    job = defs.resolve_implicit_global_asset_job_def()
    return job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey([T, k]) for k in key_names],
        run_config=run_config or {},
        tags=tags or {},
        raise_on_error=True,
    )


def latest_metadata(instance, name):
    event = instance.get_latest_materialization_event(dg.AssetKey([T, name]))
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def tick(defs, instance, cursor=None):
    sensor = sp_defs.approval_sensor([T])  # the code location's, here with the one tenant
    return sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs, resources=platform_resources())
    )


def launch(defs, instance, request):
    return run(
        defs,
        instance,
        [k.path[1] for k in request.asset_selection],
        request.run_config,
        {**request.tags, "dagster/run_key": request.run_key},
    )


def test_proposal_approval_sensor_purchase_monitoring(lake, buys):
    instance, defs, store = dg.DagsterInstance.ephemeral(), sp_defs.build_sp_defs(tenant()), get_state_store()
    run(defs, instance, ["sp_proposals"])
    md = latest_metadata(instance, "sp_proposals")
    pid = md["proposal_id"]
    assert md["status"] == "PendingApproval" and f"blocks sp approve {pid}" in md["approve_with_cli"]
    # the tenant cap minus the plan already held
    assert 0 < md["hourly_commitment_usd_per_hour"] <= 40.0 - 1.44 + 1e-9
    assert md["existing_hourly_commitment_usd_per_hour"] == pytest.approx(1.44)

    # re-materializing on the same data keeps the one pending proposal
    run(defs, instance, ["sp_proposals"])
    assert latest_metadata(instance, "sp_proposals")["proposal_id"] == pid

    assert tick(defs, instance).run_requests == []  # nothing approved yet
    run(
        defs,
        instance,
        ["sp_approvals"],
        {
            "ops": {
                f"{T}__sp_approvals": {
                    "config": {"proposal_id": pid, "decision": "approve", "approver": "alice", "note": "looks right"}
                }
            }
        },
    )
    # two ticks racing over the same events (no cursor yet) ask for the same run key
    first, second = tick(defs, instance), tick(defs, instance)
    assert [r.run_key for r in first.run_requests] == [pid] == [r.run_key for r in second.run_requests]
    assert store.get_decision(pid).approver == "alice" and store.get_decision(pid).source.startswith("dagster:")

    results = [launch(defs, instance, r) for r in (*first.run_requests, *second.run_requests)]
    assert buys == [pid]
    proposal = store.get_proposal(pid)
    assert proposal.status is ProposalStatus.monitoring
    assert [h.status.value for h in proposal.history] == [
        "Analyzing",
        "PendingApproval",
        "Approved",
        "Purchased",
        "Monitoring",
    ]
    assert [r["outcome"] for r in [latest_metadata(instance, "sp_purchases")["purchases"][pid]]] == [
        "already_purchased"
    ]
    [plan] = store.list_ledger_plans(T)
    assert plan["hourly_commitment"] == proposal.hourly_commitment
    # no CUR hour after the purchase yet: both checks pass and say why
    evaluations = {e.check_name: e for e in results[0].get_asset_check_evaluations()}
    assert evaluations["utilization_within_band"].passed and evaluations["coverage_not_dipping"].passed
    assert "nothing to judge" in evaluations["utilization_within_band"].metadata["reason"].value
    # the bought plan is done: the sensor asks for nothing more
    assert tick(defs, instance, cursor=first.cursor).run_requests == []


def test_runless_rejection_and_bad_events(lake, buys):
    instance, defs, store = dg.DagsterInstance.ephemeral(), sp_defs.build_sp_defs(tenant()), get_state_store()
    run(defs, instance, ["sp_proposals"])
    pid = latest_metadata(instance, "sp_proposals")["proposal_id"]
    key = dg.AssetKey([T, "sp_approvals"])
    instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=key,
            metadata={"proposal_id": "acme_corp.20990101T0000.deadbeef", "decision": "approve", "approver": "mallory"},
        )
    )
    instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=key,
            metadata={"proposal_id": pid, "decision": "reject", "approver": "bob", "note": "wait for the migration"},
        )
    )
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=key, metadata={"proposal_id": pid, "decision": "approve", "approver": "carol"}
        )
    )
    result = tick(defs, instance)
    assert result.run_requests == []
    proposal = store.get_proposal(pid)
    assert (
        proposal.status is ProposalStatus.rejected and proposal.status_reason == "reject by bob: wait for the migration"
    )
    results = {
        e.details["winning_approver"]
        for e in store.list_audit(f"{T}/proposal/{pid}")
        if e.action.startswith("approval.")
    }
    assert results == {"bob"}
    run(defs, instance, ["sp_purchases"], {"ops": {f"{T}__sp_purchases": {"config": {"proposal_id": pid}}}})
    assert buys == []


def test_runless_approval_materialization_launches_purchase(lake, buys):
    instance, defs = dg.DagsterInstance.ephemeral(), sp_defs.build_sp_defs(tenant())
    run(defs, instance, ["sp_proposals"])
    pid = latest_metadata(instance, "sp_proposals")["proposal_id"]
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=dg.AssetKey([T, "sp_approvals"]),
            metadata={"proposal_id": pid, "decision": "approve", "approver": "dana"},
        )
    )
    [request] = tick(defs, instance).run_requests
    assert request.run_key == pid
    launch(defs, instance, request)
    launch(defs, instance, request)  # a retried run
    assert buys == [pid]


def test_monitoring_fails_low_utilization_and_coverage_dip():
    since = datetime(2026, 10, 1, tzinfo=timezone.utc)
    before = position_rows(since - timedelta(days=7), 7 * 24, 2.0, 2.0, 20.0, 8.0)
    after = position_rows(since, 48, 6.0, 3.0, 20.0, 6.0)
    report = monitor(
        pl.concat([before, after]), since, {"utilization_pct": {"expected": 95, "p10": 85.0, "p50": 95.0, "p90": 99.0}}
    )
    assert report.utilization_band == Band(0.85, 0.95, 0.99)
    assert report.coverage_before == pytest.approx(0.4) and report.coverage_after == pytest.approx(0.3)
    ok, reason = report.utilization_ok
    assert not ok and "utilization 50.0% over 48 h is below 85.0%" in reason
    ok, reason = report.coverage_ok
    assert not ok and "dipped below the 7 days before (40.0%)" in reason


def test_monitoring_passes_when_on_band_and_waits_without_data():
    since = datetime(2026, 10, 1, tzinfo=timezone.utc)
    rows = pl.concat(
        [
            position_rows(since - timedelta(days=7), 7 * 24, 2.0, 2.0, 20.0, 8.0),
            position_rows(since, 24, 6.0, 5.9, 20.0, 14.0),
        ]
    )
    report = monitor(
        rows,
        since,
        {
            "coverage_pct": {"p10": 60.0, "p50": 70.0, "p90": 75.0},
            "utilization_pct": {"p10": 90.0, "p50": 97.0, "p90": 100.0},
        },
    )
    assert report.utilization_ok[0] and report.coverage_ok[0]
    empty = MonitoringReport(since, 0, None, None, None, None, None)
    assert empty.utilization_ok == (True, f"no CUR hours since {since.isoformat()} yet: nothing to judge")
    assert find_band({"nested": {"coverage": {"p10": 0.5, "p50": 0.6, "p90": 0.7}}}, "coverage") == Band(0.5, 0.6, 0.7)
