"""The Dagster asset (range runs, metadata, blocking checks) and the code location's delivery polling sensor."""

import json
import os
import shutil
from datetime import timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from blocks_pipelines.ingestion.defs import (
    FINAL_TAG,
    MANIFEST_TAG,
    RANGE_END_TAG,
    RANGE_START_TAG,
    build_ingestion_defs,
)
from blocks_pipelines.ingestion.delivery_sensors import delivery_poll_sensor
from blocks_pipelines.ingestion.ingest import ingest_delivery
from blocks_pipelines.lake import months
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry, resolve_source_uri
from tests.synthetic.cur_frames import cur2_frame, write_export_delivery

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs or generated API cases: make test-fast skips them

ACCOUNTS = ["222222222223", "222222222224"]


@pytest.fixture
def globex(blocks_env):
    return {t.id: t for t in load_registry(get_settings().tenants_dir)}["globex"]


def _deliver(tenant, bp, n, tmp_path, **kw):
    root = resolve_source_uri(tenant.cur_source, get_settings().home)
    return write_export_delivery(
        root, "globex-cur2", [cur2_frame(n, bp, "222222222222", ACCOUNTS, **kw)], bp, tmp_path / f"{bp}-{n}"
    )


def _asset(defs):
    return defs.resolve_assets_def(dg.AssetKey(["globex", "cur_line_items"]))


def test_asset_definition_shape(globex, tmp_path):
    asset = _asset(build_ingestion_defs(globex))
    assert asset.group_names_by_key[asset.key] == "globex"
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    assert asset.partitions_def.get_first_partition_key() == "2026-09-01-00:00"
    assert {c.name for c in asset.check_specs} == {
        "unblended_matches_source",
        "no_duplicated_line_items",
        "schema_as_documented",
        "billed_cost_matches_source_per_invoice",
    }
    assert all(c.blocking for c in asset.check_specs)
    # a tenant whose CUR stops arriving shows as late after 26 h and failed after 36 h (AWS delivers daily at least)
    freshness = next(iter(asset.specs)).freshness_policy
    assert (freshness.warn_window.to_timedelta(), freshness.fail_window.to_timedelta()) == (
        timedelta(hours=26),
        timedelta(hours=36),
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(Path(__file__).parents[1] / "dagster.yaml", home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))  # the repository's instance config enables them
    assert instance.get_settings("freshness") == {"enabled": True}
    instance.dispose()


def test_materialize_a_range_reports_metadata_and_passes_checks(globex, tmp_path):
    # a single run over a range (the sensor's month runs are the same with 744 hours; 72 keep the test fast)
    frame_rows = 1200
    _deliver(globex, "2026-10", frame_rows, tmp_path)
    defs = build_ingestion_defs(globex)
    result = dg.materialize(
        [_asset(defs)], tags={RANGE_START_TAG: "2026-10-01-00:00", RANGE_END_TAG: "2026-10-03-23:00"}
    )
    assert result.success
    mats = result.get_asset_materialization_events()
    assert len(mats) == 72  # one event per hourly partition of the single run
    md = mats[0].materialization.metadata
    assert md["hours"].value == 72
    assert md["rows"].value == sum(1 for i in range(frame_rows) if i % 744 < 72)
    lake = pl.read_parquet(months.current_files(get_settings().lake_uri, "globex"), hive_partitioning=False)
    assert md["cost_by_line_item_type"].value["Usage"] == pytest.approx(
        lake.filter(pl.col("line_item_type") == "Usage")["unblended_cost"].sum(), abs=1e-5
    )
    assert set(md) == {"rows", "hours", "hour_range", "cost_by_line_item_type", "delivery_ids", "replaced_hours"}
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {
        "unblended_matches_source",
        "no_duplicated_line_items",
        "schema_as_documented",
        "billed_cost_matches_source_per_invoice",
    }
    assert all(c.passed for c in checks)
    # the run's detail is written once, on the totals check, not on each of the 72 materializations
    [totals] = [c for c in checks if c.check_name == "unblended_matches_source"]
    detail = totals.metadata
    assert detail["source_vs_lake"].value["2026-10"]["lake_unblended"] == pytest.approx(lake["unblended_cost"].sum())
    assert sum(detail["unblended_by_day"].value.values()) == pytest.approx(lake["unblended_cost"].sum(), abs=1e-5)
    assert detail["days_written"].value == 3


def test_materialize_a_few_hours_replaces_only_them(globex, tmp_path):
    first = _deliver(globex, "2026-10", 1488, tmp_path)
    ingest_delivery(globex, str(next(get_settings().home.rglob("*-Manifest.json"))))
    second = _deliver(globex, "2026-10", 1488, tmp_path, offset=3)
    result = dg.materialize([_asset(build_ingestion_defs(globex))], partition_key="2026-10-05-07:00")
    assert result.success
    lake = pl.read_parquet(months.current_files(get_settings().lake_uri, "globex"), hive_partitioning=False)
    hour = lake.filter(pl.col("usage_start") == pl.datetime(2026, 10, 5, 7, time_zone="UTC"))
    assert hour.height == 2 and hour["delivery_id"].unique().to_list() == [second]
    assert lake.height == 1488
    assert lake.filter(pl.col("delivery_id") == second).height == 2
    assert lake.filter(pl.col("delivery_id") == first).height == 1486


def test_sensor_launches_each_new_delivery_once_and_keeps_its_cursor(globex, tmp_path):
    oct_id = _deliver(globex, "2026-10", 100, tmp_path, invoice_id="INV-10")
    nov_id = _deliver(globex, "2026-11", 100, tmp_path)
    defs = build_ingestion_defs(globex)
    sensor = delivery_poll_sensor([globex])
    instance = dg.DagsterInstance.ephemeral()

    result = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    by_key = {r.run_key: r for r in result.run_requests}
    assert set(by_key) == {oct_id, nov_id}
    october = by_key[oct_id]
    assert october.asset_selection == [dg.AssetKey(["globex", "cur_line_items"])]  # the location's sensor: one tenant
    assert october.tags[RANGE_START_TAG] == "2026-10-01-00:00"
    assert october.tags[RANGE_END_TAG] == "2026-10-31-23:00"
    assert october.tags[FINAL_TAG] == "true" and by_key[nov_id].tags[FINAL_TAG] == "false"
    assert october.tags[MANIFEST_TAG].endswith("BILLING_PERIOD=2026-10/globex-cur2-Manifest.json")
    cursor = json.loads(result.cursor)["tenants"]["globex"]
    assert cursor["final"] == {"2026-10": True, "2026-11": False}

    # a restart (new context, same stored cursor) launches nothing until a new delivery lands
    again = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor, definitions=defs))
    assert again.run_requests == []
    restated = _deliver(globex, "2026-11", 120, tmp_path)
    third = sensor(dg.build_sensor_context(instance=instance, cursor=again.cursor, definitions=defs))
    assert [r.run_key for r in third.run_requests] == [restated]


def test_sensor_run_ingests_the_delivery_it_names(globex, tmp_path):
    _deliver(globex, "2026-10", 300, tmp_path)
    defs = build_ingestion_defs(globex)
    sensor = delivery_poll_sensor([globex])
    instance = dg.DagsterInstance.ephemeral()
    [request] = sensor(dg.build_sensor_context(instance=instance, definitions=defs)).run_requests
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == ("2026-10-01-00:00", "2026-10-31-23:00")
    # run the named delivery over its first day (the whole month is the same code, 31 times the partitions)
    tags = {**request.tags, RANGE_END_TAG: "2026-10-01-23:00"}
    result = dg.materialize([_asset(defs)], tags=tags)
    assert result.success
    md = result.get_asset_materialization_events()[0].materialization.metadata
    assert md["delivery_ids"].value == request.run_key
    [totals] = [c for c in result.get_asset_check_evaluations() if c.check_name == "unblended_matches_source"]
    assert totals.metadata["deliveries"].value[0]["delivery_id"] == request.run_key
    # where the run's time went, for a data engineer comparing runs in the UI
    assert set(totals.metadata["seconds_by_stage"].value) == {"read_normalize_split", "validate", "publish", "verify"}


def test_sensor_skips_a_delivery_already_ingested_by_another_path(globex, tmp_path):
    """`blocks materialize` ingests with the same tags; a sensor starting afterwards must not ingest it again."""
    oct_id = _deliver(globex, "2026-10", 50, tmp_path)
    defs = build_ingestion_defs(globex)
    sensor = delivery_poll_sensor([globex])
    instance = dg.DagsterInstance.ephemeral()
    [request] = sensor(dg.build_sensor_context(instance=instance, definitions=defs)).run_requests
    tags = {**request.tags, RANGE_END_TAG: "2026-10-01-01:00"}
    assert dg.materialize([_asset(defs)], tags=tags, instance=instance).success

    fresh = sensor(dg.build_sensor_context(instance=instance, definitions=defs))  # no cursor: a new daemon
    assert fresh.run_requests == []
    assert json.loads(fresh.cursor)["tenants"]["globex"]["deliveries"] == {"2026-10": oct_id}


def test_a_month_run_keeps_line_items_dated_outside_the_month(globex, tmp_path):
    """A month's delivery is that month's bill: a row it dates in the previous month is kept, and the blocking
    checks (source vs lake, duplicates) count it, instead of the run's hours silently dropping it."""
    frame = cur2_frame(300, "2026-10", "222222222222", ACCOUNTS)
    late = frame.head(1).with_columns(
        pl.col("line_item_usage_start_date").dt.offset_by("-2h"),  # 2026-09-30 22:00, billed in October
        pl.col("line_item_unblended_cost").alias("line_item_unblended_cost") * 0 + 7.25,
    )
    root = resolve_source_uri(globex.cur_source, get_settings().home)
    write_export_delivery(root, "globex-cur2", [pl.concat([frame, late])], "2026-10", tmp_path / "d")
    defs = build_ingestion_defs(globex)
    result = dg.materialize(
        [_asset(defs)], tags={RANGE_START_TAG: "2026-10-01-00:00", RANGE_END_TAG: "2026-10-31-23:00"}
    )
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {
        "unblended_matches_source": True,
        "no_duplicated_line_items": True,
        "schema_as_documented": True,
        "billed_cost_matches_source_per_invoice": True,
    }
    md = result.get_asset_materialization_events()[0].materialization.metadata
    [totals] = [c for c in result.get_asset_check_evaluations() if c.check_name == "unblended_matches_source"]
    assert md["rows"].value == 301 and totals.metadata["unblended_by_day"].value["2026-09-30"] == pytest.approx(7.25)
    lake = pl.read_parquet(months.current_files(get_settings().lake_uri, "globex"), hive_partitioning=False)
    assert lake.height == 301 and lake["unblended_cost"].sum() == pytest.approx(
        frame["line_item_unblended_cost"].sum() + 7.25
    )
    # a partial range still replaces exactly its hours (the row outside them is not touched, nor re-added)
    again = dg.materialize(
        [_asset(defs)], tags={RANGE_START_TAG: "2026-10-02-00:00", RANGE_END_TAG: "2026-10-02-23:00"}
    )
    assert again.success
    after = pl.read_parquet(months.current_files(get_settings().lake_uri, "globex"), hive_partitioning=False)
    assert after.height == 301


def test_a_month_run_plans_its_range_in_one_event(globex, tmp_path, monkeypatch):
    """With the environment `blocks demo` / `blocks materialize` / the Makefile give Dagster, creating a range run
    writes one planned event for the range, not one per hour; every hour is still materialized."""
    from blocks_pipelines.cli.demo import DAGSTER_RUN_ENV, prepare_dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for name in DAGSTER_RUN_ENV:  # set then deleted: restored to what it was after the test
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    prepare_dagster_home()
    assert {n: os.environ.get(n) for n in DAGSTER_RUN_ENV} == DAGSTER_RUN_ENV
    _deliver(globex, "2026-10", 400, tmp_path)
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [_asset(build_ingestion_defs(globex))],
            instance=instance,
            tags={RANGE_START_TAG: "2026-10-01-00:00", RANGE_END_TAG: "2026-10-02-23:00"},
        )
        assert result.success
        planned = instance.get_records_for_run(
            result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ).records
        assert len(planned) == 1
        assert len(planned[0].event_log_entry.dagster_event.event_specific_data.partitions_subset) == 48
        key = dg.AssetKey(["globex", "cur_line_items"])
        assert len(instance.get_materialized_partitions(key)) == 48


def test_a_final_month_run_checks_billed_cost_per_invoice(globex, tmp_path):
    """Once AWS has invoiced a month (bill/InvoiceId filled), the blocking invoice check compares each invoice."""
    root = resolve_source_uri(globex.cur_source, get_settings().home)
    frame = pl.concat(
        [
            cur2_frame(200, "2026-10", "222222222222", ACCOUNTS, invoice_id="EUINIE26-1"),
            cur2_frame(100, "2026-10", "222222222222", ACCOUNTS, invoice_id="EUINIE26-2", offset=200),
        ]
    )
    write_export_delivery(root, "globex-cur2", [frame], "2026-10", tmp_path / "d")
    result = dg.materialize(
        [_asset(build_ingestion_defs(globex))],
        tags={RANGE_START_TAG: "2026-10-01-00:00", RANGE_END_TAG: "2026-10-31-23:00"},
    )
    assert result.success
    [check] = [
        c for c in result.get_asset_check_evaluations() if c.check_name == "billed_cost_matches_source_per_invoice"
    ]
    assert check.passed and check.description == "2 invoice(s): billed cost equals the source's"
    detail = check.metadata["invoices"].value
    expected = frame.group_by("bill_invoice_id").agg(pl.col("line_item_unblended_cost").sum(), pl.len())
    for invoice, billed, rows in expected.iter_rows():
        assert detail[f"2026-10 {invoice}"]["lake_billed"] == pytest.approx(billed, abs=1e-6)
        assert detail[f"2026-10 {invoice}"]["source_rows"] == detail[f"2026-10 {invoice}"]["lake_rows"] == rows


def test_the_invoice_check_fails_naming_the_invoice_that_differs():
    from blocks_pipelines.ingestion.defs import _invoice_check
    from blocks_pipelines.ingestion.ingest import IngestSummary, InvoiceTotals

    summary = IngestSummary(
        "globex",
        invoices=[
            InvoiceTotals("2026-10", "INV-1", 3, 3, 10.0, 10.0),
            InvoiceTotals("2026-10", "INV-2", 3, 3, 5.0, 4.99),
        ],
    )
    check = _invoice_check(summary, dg.AssetKey(["globex", "cur_line_items"]))
    assert not check.passed and check.description == "billed cost differs for 2026-10 INV-2"
    assert not summary.matches
    assert _invoice_check(IngestSummary("globex"), dg.AssetKey(["globex", "cur_line_items"])).passed
