"""Dagster definitions for the dbt models: per-tenant keys and groups, hourly partitions, checks, a real run."""

from __future__ import annotations

from datetime import date

import dagster as dg
import polars as pl
import pytest

from blocks_pipelines.lake.layout import mart_uri
from blocks_pipelines.models.defs import build_model_defs
from blocks_pipelines.models.project import HOURLY_MARTS, MARTS
from blocks_pipelines.tenants.partitions import tenant_daily_partitions
from models_helpers import hand_fixture, install_tenant, make_tenant
from tests.synthetic.line_items import write_line_items

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs or generated API cases: make test-fast skips them

MODELS = {*MARTS, "stg_cur_line_items", "stg_accounts", "int_line_items_enriched", "previous_generation_families"}


def _split(defs: dg.Definitions) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    hourly = next(a for a in defs.assets if a.partitions_def is not None)
    rollups = next(a for a in defs.assets if a.partitions_def is None)
    return hourly, rollups


def test_keys_groups_and_source_are_per_tenant(blocks_env):
    tenant = make_tenant("testco")
    hourly, rollups = _split(build_model_defs(tenant))
    keys = hourly.keys | rollups.keys
    assert keys == {dg.AssetKey(["testco", m]) for m in MODELS}
    assert {s.group_name for s in [*hourly.specs, *rollups.specs]} == {"testco"}
    stg = next(s for s in hourly.specs if s.key == dg.AssetKey(["testco", "stg_cur_line_items"]))
    assert {d.asset_key for d in stg.deps} == {dg.AssetKey(["testco", "cur_line_items"])}
    assert {k.path[1] for k in hourly.keys} >= set(HOURLY_MARTS)


def test_incremental_marts_are_daily_partitioned_and_backfill_in_one_run(blocks_env):
    tenant = make_tenant("testco")
    hourly, rollups = _split(build_model_defs(tenant))
    assert hourly.partitions_def == tenant_daily_partitions(tenant)
    assert hourly.backfill_policy == dg.BackfillPolicy.single_run()
    assert {"spend_daily", "savings_projection", "recommendations"} <= {k.path[1] for k in rollups.keys}


def test_dbt_tests_are_asset_checks(blocks_env):
    hourly, rollups = _split(build_model_defs(make_tenant("testco")))
    checks = {(c.asset_key.path[1], c.name.split("_")[0]) for c in hourly.check_keys | rollups.check_keys}
    assert ("spend_hourly", "totals") in checks and ("spend_daily", "totals") in checks
    assert ("savings_projection", "delta") in checks and ("recommendations", "unique") in checks
    assert all(c.asset_key.path[0] == "testco" for c in hourly.check_keys)


def test_tenants_merge_without_conflicts(blocks_env):
    tenants = [make_tenant(t) for t in ("alpha", "beta", "gamma")]
    merged = dg.Definitions.merge(*[build_model_defs(t) for t in tenants])
    graph = merged.resolve_asset_graph()
    for t in tenants:
        assert dg.AssetKey([t.id, "spend_hourly"]) in graph.get_all_asset_keys()
    assert len(graph.get_all_asset_keys()) == 3 * (len(MODELS) + 1)  # + each tenant's cur_line_items source


def test_a_partition_range_run_builds_the_hourly_marts_and_exports_them(blocks_env):
    tenant = make_tenant("testco")
    install_tenant(blocks_env.parent / "assets_config", tenant)
    lake = str(blocks_env / "lake")
    write_line_items(hand_fixture(tenant.id), lake)
    hourly, _ = _split(build_model_defs(tenant))
    result = dg.materialize(
        [hourly],
        resources=build_model_defs(tenant).resources,
        tags={"dagster/asset_partition_range_start": "2026-10-01", "dagster/asset_partition_range_end": "2026-10-01"},
    )
    assert result.success
    done = {e.asset_key.path[1] for e in result.get_asset_materialization_events()}
    assert set(HOURLY_MARTS) <= done
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert evaluations and all(ev.passed for ev in evaluations)
    spend = pl.read_parquet(mart_uri(lake, "spend_hourly", tenant.id))
    # The range widened to the whole UTC day 2026-10-01; the other days stay unbuilt.
    assert spend["usage_date"].unique().to_list() == [date(2026, 10, 1)]
    assert spend["usage_hour"].n_unique() == 24
