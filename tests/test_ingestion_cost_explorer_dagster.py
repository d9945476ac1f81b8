"""Dagster wiring of the Cost Explorer backfill: the per-tenant asset (Cost Explorer stubbed through its resource),
the sensor that requests it until the first CUR lands, and the marts refresh that follows it."""

import json
from datetime import datetime, timedelta, timezone

import dagster as dg
import polars as pl
import pytest
from test_connect_support import create_bucket, deliver_legacy, make_tenant, unique_bucket
from test_ingestion_cost_explorer import _client, _daily, _params

from blocks_pipelines.definitions import build_tenant_defs
from blocks_pipelines.ingestion.cost_explorer_defs import (
    REFRESH_EVERY,
    cost_explorer_asset,
    cost_explorer_location_sensor,
)
from blocks_pipelines.ingestion.defs import RANGE_END_TAG, RANGE_START_TAG, build_ingestion_defs
from blocks_pipelines.ingestion.delivery_sensors import build_ingestion_location_defs
from blocks_pipelines.lake import months
from blocks_pipelines.models.refresh import build_models_refresh_sensor
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs or generated API cases: make test-fast skips them


class StubbedCostExplorer:
    """Stands in for CostExplorerClients: the role assumption replaced by a Stubber-backed client."""

    def __init__(self, client=None):
        self.client = client

    def client_for(self, tenant):
        assert self.client is not None, f"{tenant.id} should not have asked Cost Explorer"
        return self.client


def _resources(client=None):
    return {"cost_explorer": dg.ResourceDefinition.hardcoded_resource(StubbedCostExplorer(client))}


def _key(tenant):
    return dg.AssetKey([tenant.id, "cost_explorer_line_items"])


def _today():
    return datetime.now(timezone.utc).date()


@pytest.fixture
def newco(blocks_env):
    return make_tenant(uri="s3://newco-cur/reports", history_start=_today() - timedelta(days=60))


def test_each_tenant_gets_the_asset_its_sensor_and_the_resource(newco):
    defs = build_ingestion_defs(newco)
    asset = defs.resolve_assets_def(_key(newco))
    assert asset.group_names_by_key[asset.key] == "newco"
    assert asset.partitions_def.get_first_partition_key() == newco.history_start.isoformat()
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    assert asset.node_def.name == "newco__cost_explorer_line_items"
    location = build_ingestion_location_defs([newco])
    merged = dg.Definitions.merge(defs, location)
    assert merged.resolve_sensor_def("cost_explorer_sensor").asset_selection.resolve(merged.resolve_asset_graph()) == {
        asset.key
    }


def test_asset_backfills_a_day_range_through_the_resource(newco):
    first = _today() - timedelta(days=30)  # older than the hourly window: one DAILY request for the range
    days = [first + timedelta(days=i) for i in range(4)]
    client, stub = _client()
    stub.add_response(
        "get_cost_and_usage",
        {"ResultsByTime": _daily(days)},
        _params("DAILY", days[0].isoformat(), days[-1].isoformat()),
    )
    asset = cost_explorer_asset(newco)
    with stub:
        result = dg.materialize(
            [asset],
            resources=_resources(client),
            tags={RANGE_START_TAG: days[0].isoformat(), RANGE_END_TAG: days[2].isoformat()},
        )
        stub.assert_no_pending_responses()
    assert result.success
    mats = result.get_asset_materialization_events()
    assert sorted(m.partition for m in mats) == [d.isoformat() for d in days[:3]]
    md = mats[0].materialization.metadata
    assert md["rows"].value == 6 and md["days_written"].value == 3 and md["requests"].value == 1
    assert md["cost_by_day"].value == {d.isoformat(): 12.0 for d in days[:3]}
    assert md["daily_cost_min"].value == md["daily_cost_max"].value == 12.0
    lake = pl.read_parquet(months.current_files(get_settings().lake_uri, newco.id), hive_partitioning=False)
    assert lake["source_format"].unique().to_list() == ["cost_explorer"]
    assert lake["unblended_cost"].sum() == pytest.approx(36.0)


def test_asset_skips_local_sample_data_tenants_with_a_reason(blocks_env):
    acme = {t.id: t for t in load_registry(get_settings().tenants_dir)}["acme_corp"]
    asset = cost_explorer_asset(acme)
    # a resource that fails if called: skipping must not touch AWS
    result = dg.materialize([asset], resources=_resources(), partition_key=_today().isoformat())
    assert result.success
    md = result.get_asset_materialization_events()[0].materialization.metadata
    assert "local sample data" in md["skipped"].value and md["rows"].value == 0


def _tick(sensor, instance, cursor=None):
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def _aged(cursor, by):
    c = json.loads(cursor)
    for state in c["tenants"].values():
        state["last_request"] = (datetime.fromisoformat(state["last_request"]) - by).isoformat()
    return json.dumps(c)


def test_sensor_backfills_then_refreshes_the_hourly_window_until_cur_arrives(blocks_env, aws_env):
    bucket = unique_bucket()
    create_bucket(aws_env, bucket)
    today = _today()
    tenant = make_tenant(uri=f"s3://{bucket}/reports", history_start=today - timedelta(days=40))
    sensor = cost_explorer_location_sensor([tenant])
    with dg.instance_for_test() as instance:
        first = _tick(sensor, instance)
        (request,) = first.run_requests  # no CUR, nothing pulled: the whole history
        assert request.tags[RANGE_START_TAG] == tenant.history_start.isoformat()
        assert request.tags[RANGE_END_TAG] == today.isoformat()

        soon = _tick(sensor, instance, first.cursor)
        assert not soon.run_requests and "next pull after" in soon.skip_reason.skip_message

        pulled = [tenant.history_start + timedelta(days=i) for i in range(41)]
        never_pulled = pulled.pop(5)  # a day the first run did not write (it failed part way, say)
        for day in pulled:
            instance.report_runless_asset_event(dg.AssetMaterialization(_key(tenant), partition=day.isoformat()))
        (retry,) = _tick(sensor, instance, _aged(first.cursor, REFRESH_EVERY)).run_requests
        assert retry.tags[RANGE_START_TAG] == never_pulled.isoformat()

        instance.report_runless_asset_event(dg.AssetMaterialization(_key(tenant), partition=never_pulled.isoformat()))
        refresh = _tick(sensor, instance, _aged(first.cursor, REFRESH_EVERY))
        (request,) = refresh.run_requests  # all pulled: only the last 14 days, still changing hourly
        assert request.tags[RANGE_START_TAG] == (today - timedelta(days=13)).isoformat()
        assert request.tags[RANGE_END_TAG] == today.isoformat()

        deliver_legacy(aws_env, bucket, "reports/", "newco-hourly", f"{today:%Y-%m}", b"x,1\n")
        done = _tick(sensor, instance, _aged(refresh.cursor, REFRESH_EVERY))
        assert not done.run_requests and "CUR delivered" in done.skip_reason.skip_message
        assert json.loads(done.cursor)["tenants"]["newco"]["cur_delivered"]


def test_sensor_skips_local_sample_data_tenants(blocks_env):
    acme = {t.id: t for t in load_registry(get_settings().tenants_dir)}["acme_corp"]
    newco = make_tenant(uri="s3://newco-cur/reports", history_start=_today() - timedelta(days=60))
    assert not any(s.name == "cost_explorer_sensor" for s in build_ingestion_location_defs([acme]).sensors)
    graph = dg.Definitions.merge(build_tenant_defs(acme), build_tenant_defs(newco)).resolve_asset_graph()
    served = cost_explorer_location_sensor([acme, newco]).asset_selection.resolve(graph)
    assert served == {_key(newco)}  # acme's CUR is local sample data: no AWS account to ask


def test_marts_refresh_follows_days_written_by_cost_explorer(blocks_env):
    globex = {t.id: t for t in load_registry(get_settings().tenants_dir)}["globex"]
    defs = build_tenant_defs(globex)
    sensor = build_models_refresh_sensor([globex])
    with dg.instance_for_test() as instance:
        for day in ("2026-09-03", "2026-09-05"):
            instance.report_runless_asset_event(dg.AssetMaterialization(_key(globex), partition=day))
        instance.report_runless_asset_event(
            dg.AssetMaterialization(dg.AssetKey(["globex", "cur_line_items"]), partition="2026-09-08-04:00")
        )
        result = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        (request,) = result.run_requests
        assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-09-03", "2026-09-08")
        again = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor, definitions=defs))
        assert not again.run_requests


def test_the_location_sensor_pulls_for_due_tenants_only_and_keeps_each_ones_cursor(blocks_env, aws_env):
    """One sensor for the code location: local sample tenants cost nothing and leave no cursor; an S3 tenant without
    CUR gets its pull (targeted at its own asset), then waits REFRESH_EVERY like the per-tenant sensor did."""
    bucket = unique_bucket()
    create_bucket(aws_env, bucket)
    today = _today()
    newco = make_tenant(uri=f"s3://{bucket}/reports", history_start=today - timedelta(days=40))
    local = load_registry(get_settings().tenants_dir)
    sensor = cost_explorer_location_sensor([*local, newco])
    defs = dg.Definitions.merge(*(build_ingestion_defs(t) for t in [*local, newco]))
    with dg.instance_for_test() as instance:
        first = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        (request,) = first.run_requests
        assert request.asset_selection == [_key(newco)]
        assert request.tags[RANGE_START_TAG] == newco.history_start.isoformat()
        assert request.tags["blocks/tenant"] == "newco"  # one run per tenant at a time (run coordinator)
        cursor = json.loads(first.cursor)
        assert set(cursor["tenants"]) == {"newco"} and cursor["after"] is None  # a whole round in one tick
        again = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs))
        assert again.run_requests == []  # pulled: the next one is due after REFRESH_EVERY
