"""The refresh sensor turns changed line-item hours into one run over the affected days of the marts."""

import time
from datetime import date

import dagster as dg
import pytest

from blocks_pipelines.definitions import build_tenant_defs
from blocks_pipelines.models.refresh import affected_days, build_models_refresh_sensor
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry
from blocks_pipelines.tenants.partitions import RANGE_END_TAG, RANGE_START_TAG

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs or generated API cases: make test-fast skips them


def test_affected_days_spans_hourly_keys():
    assert affected_days(["2026-09-03-23:00", "2026-09-01-05:00", "2026-09-02-00:00"]) == ("2026-09-01", "2026-09-03")
    assert affected_days([]) is None


def test_sensor_launches_one_run_over_changed_days_then_waits(blocks_env):
    tenant = next(t for t in load_registry(get_settings().tenants_dir) if t.id == "globex")
    defs = build_tenant_defs(tenant)
    sensor = build_models_refresh_sensor([tenant])
    line_items = dg.AssetKey(["globex", "cur_line_items"])
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, definitions=defs)
        assert not sensor(ctx).run_requests  # nothing ingested yet: nothing to rebuild

        for hour in ("2026-09-02-22:00", "2026-09-03-01:00", "2026-09-05-13:00"):
            instance.report_runless_asset_event(dg.AssetMaterialization(line_items, partition=hour))
        result = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        (request,) = result.run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "2026-09-02"
        assert request.tags["dagster/asset_partition_range_end"] == "2026-09-05"

        again = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor, definitions=defs))
        assert not again.run_requests  # the cursor moved past what was handled

        selected = sensor.asset_selection.resolve(defs.resolve_asset_graph())
        names = {k.path[1] for k in selected}
        assert {"spend_hourly", "sp_position_hourly", "savings_projection", "recommendations", "sp_monitoring"} <= names
        assert not names & {"sp_proposals", "sp_approvals", "sp_purchases", "cur_line_items", "sp_proposal_status"}
        assert set(request.asset_selection) == selected  # the code location's sensor names the tenant's assets
        # what the daemon does with the request: a job subset of executable assets (it raised on sp_proposal_status)
        job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection=set(request.asset_selection))
        assert set(job.asset_layer.executable_asset_keys) >= selected
    assert date.fromisoformat(request.tags["dagster/asset_partition_range_end"]) >= tenant.history_start


def test_sensor_ignores_line_items_that_a_mart_build_already_followed(blocks_env):
    tenant = next(t for t in load_registry(get_settings().tenants_dir) if t.id == "globex")
    defs = build_tenant_defs(tenant)
    sensor = build_models_refresh_sensor([tenant])
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(dg.AssetKey(["globex", "cur_line_items"]), partition="2026-09-02-22:00")
        )
        instance.report_runless_asset_event(
            dg.AssetMaterialization(dg.AssetKey(["globex", "spend_hourly"]), partition="2026-09-02")
        )
        assert not sensor(dg.build_sensor_context(instance=instance, definitions=defs)).run_requests
        instance.report_runless_asset_event(
            dg.AssetMaterialization(dg.AssetKey(["globex", "cur_line_items"]), partition="2026-09-07-01:00")
        )
        (request,) = sensor(dg.build_sensor_context(instance=instance, definitions=defs)).run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "2026-09-07"


def test_days_a_delivery_replaced_outside_its_partitions_are_rebuilt_too(blocks_env):
    """An October run that kept a line item dated 30 September (billed in October) says so in replaced_hours."""
    tenant = next(t for t in load_registry(get_settings().tenants_dir) if t.id == "globex")
    defs = build_tenant_defs(tenant)
    sensor = build_models_refresh_sensor([tenant])
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                dg.AssetKey(["globex", "cur_line_items"]),
                partition="2026-10-01-00:00",
                metadata={
                    "replaced_hours": dg.MetadataValue.json(["2026-09-30T22:00:00+00:00", "2026-11-01T00:00:00+00:00"])
                },
            )
        )
        (request,) = sensor(dg.build_sensor_context(instance=instance, definitions=defs)).run_requests
        assert request.tags["dagster/asset_partition_range_start"] == "2026-09-30"
        assert request.tags["dagster/asset_partition_range_end"] == "2026-10-31"
        # a line item dated before the tenant's history start cannot widen the run past its first partition
        instance.report_runless_asset_event(
            dg.AssetMaterialization(
                dg.AssetKey(["globex", "cur_line_items"]),
                partition="2026-09-01-00:00",
                metadata={
                    "replaced_hours": dg.MetadataValue.json(["2026-08-31T23:00:00+00:00", "2026-09-01T01:00:00+00:00"])
                },
            )
        )
        (request,) = sensor(dg.build_sensor_context(instance=instance, definitions=defs)).run_requests
        assert request.tags["dagster/asset_partition_range_start"] == str(tenant.history_start)


def _materialize_in_run(instance, run_id: str, key: dg.AssetKey, partition: str) -> None:
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry

    event = DagsterEvent(
        DagsterEventType.ASSET_MATERIALIZATION.value,
        job_name="__ASSET_JOB",
        event_specific_data=StepMaterializationData(dg.AssetMaterialization(key, partition=partition)),
    )
    instance.store_event(
        EventLogEntry(
            error_info=None, level="debug", user_message="", run_id=run_id, timestamp=time.time(), dagster_event=event
        )
    )


def test_a_month_run_still_writing_gets_one_marts_run_over_its_whole_range(blocks_env):
    """A tick in the middle of a month run's hourly events must not launch one marts run for the first half and a
    second for the rest: the first launches one over the range the run was asked for, and the run's later line
    items inside it are skipped (the marts run waits for the month run's end: one run per tenant at a time)."""
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    tenant = next(t for t in load_registry(get_settings().tenants_dir) if t.id == "globex")
    defs = build_tenant_defs(tenant)
    sensor = build_models_refresh_sensor([tenant])
    line_items = dg.AssetKey(["globex", "cur_line_items"])
    month = {RANGE_START_TAG: "2026-09-02-00:00", RANGE_END_TAG: "2026-09-05-23:00"}
    with dg.instance_for_test() as instance:
        run = instance.add_run(
            DagsterRun(job_name="__ASSET_JOB", run_id="month-run", status=DagsterRunStatus.STARTED, tags=month)
        )
        for hour in ("2026-09-02-00:00", "2026-09-03-00:00"):
            _materialize_in_run(instance, run.run_id, line_items, hour)
        first = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        (request,) = first.run_requests
        assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-09-02", "2026-09-05")

        for hour in ("2026-09-04-00:00", "2026-09-05-23:00"):  # the rest of the month run's hours
            _materialize_in_run(instance, run.run_id, line_items, hour)
        instance.report_run_failed(run)  # finished, whatever its outcome
        second = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs))
        assert not second.run_requests

        # line items outside what the marts run spans still get their own refresh
        _materialize_in_run(instance, run.run_id, line_items, "2026-09-08-00:00")
        instance.report_runless_asset_event(dg.AssetMaterialization(line_items, partition="2026-09-09-01:00"))
        third = sensor(dg.build_sensor_context(instance=instance, cursor=second.cursor, definitions=defs))
        (request,) = third.run_requests
        assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-09-08", "2026-09-09")


def test_a_run_is_covered_only_while_it_goes_and_within_its_range(blocks_env):
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

    from blocks_pipelines.models.refresh import covering_runs, is_covered
    from blocks_pipelines.tenants.event_feed import AssetEvent

    def event(run_id: str, partition: str) -> AssetEvent:
        return AssetEvent(7, "globex", "cur_line_items", partition, {}, run_id)

    month = {RANGE_START_TAG: "2026-09-01-00:00", RANGE_END_TAG: "2026-09-30-23:00"}
    with dg.instance_for_test() as instance:
        instance.add_run(DagsterRun(job_name="j", run_id="going", status=DagsterRunStatus.STARTED, tags=month))
        instance.add_run(DagsterRun(job_name="j", run_id="done", status=DagsterRunStatus.SUCCESS, tags=month))
        instance.add_run(DagsterRun(job_name="j", run_id="one-hour", status=DagsterRunStatus.STARTED))
        events = [event(r, "2026-09-02-00:00") for r in ("going", "done", "one-hour", "")]
        assert covering_runs(instance, events, {}) == {"going": ("globex", ("2026-09-01", "2026-09-30"))}
        cover = {"going": {"days": ["2026-09-01", "2026-09-30"], "at": 0.0}}
        assert is_covered(event("going", "2026-09-30-23:00"), cover)
        assert not is_covered(event("going", "2026-10-01-00:00"), cover)
        assert not is_covered(event("done", "2026-09-02-00:00"), cover)
