"""The root code location (blocks_pipelines.definitions) on the demo registry: per-tenant groups, partitions, shards,
and what `dagster definitions validate` resolves."""

from __future__ import annotations

import sys

import dagster as dg
import pytest

from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry

SP_AND_INGESTION = {"cur_line_items", "sp_proposals", "sp_approvals", "sp_purchases", "sp_monitoring"}
REQUIRED = {"cur_line_items", "spend_hourly", "sp_proposals", "sp_approvals", "sp_purchases"}


@pytest.fixture
def root(blocks_env):
    """blocks_pipelines.definitions with its lazily built attributes forgotten, reading the demo registry."""
    import blocks_pipelines.definitions as module

    def forget():
        module._registry.cache_clear()
        for name in [n for n in vars(module) if n == "defs" or n.startswith("shard_") and "_of_" in n]:
            delattr(module, name)

    forget()
    yield module
    forget()


@pytest.fixture
def tenants(blocks_env):
    return {t.id: t for t in load_registry(get_settings().tenants_dir)}


def test_demo_registry_loads_one_group_per_tenant(root, tenants):
    assert len(tenants) == 3
    graph = root.defs.resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.is_materializable:
            groups.setdefault(node.group_name, set()).add(key.path[1])
            assert key.path[0] == node.group_name  # keys are [tenant, name]
    assert set(groups) == set(tenants)
    for names in groups.values():
        assert REQUIRED <= names


def test_cur_line_items_partitions_start_at_each_tenants_history(root, tenants):
    graph = root.defs.resolve_asset_graph()
    for t in tenants.values():
        partitions = graph.get(dg.AssetKey([t.id, "cur_line_items"])).partitions_def
        assert isinstance(partitions, dg.HourlyPartitionsDefinition)
        assert partitions.get_first_partition_key() == t.history_start.strftime("%Y-%m-%d-00:00")


def test_event_sensors_are_the_code_locations_and_do_not_grow_with_tenants(root, tenants):
    """Delivery, Cost Explorer, marts refresh and approval sensors serve every tenant of the location at once
    (issue #16): five sensors whether it holds three tenants or 2,000, four where no tenant can use Cost Explorer
    (the demo's tenants are local sample data, with no AWS account behind them)."""
    defs = root.defs
    assert {s.name for s in defs.sensors} == {
        "cur_delivery_sensor",
        "cur_delivery_queue_sensor",
        "models_refresh_sensor",
        "sp_approval_sensor",
    }
    delivery = defs.resolve_sensor_def("cur_delivery_sensor")
    graph = defs.resolve_asset_graph()
    assert delivery.asset_selection.resolve(graph) == {dg.AssetKey([t, "cur_line_items"]) for t in tenants}
    approvals = defs.resolve_sensor_def("sp_approval_sensor").asset_selection.resolve(graph)
    assert approvals == {dg.AssetKey([t, n]) for t in tenants for n in ("sp_purchases", "sp_monitoring")}


def test_checks_and_op_names_are_per_tenant(root, tenants):
    defs = root.defs
    for t in tenants:
        line_items = defs.resolve_assets_def(dg.AssetKey([t, "cur_line_items"]))
        assert {c.name for c in line_items.check_specs} == {
            "unblended_matches_source",
            "no_duplicated_line_items",
            "schema_as_documented",
            "billed_cost_matches_source_per_invoice",
        }
        assert all(c.asset_key == line_items.key and c.blocking for c in line_items.check_specs)
        assert line_items.backfill_policy == dg.BackfillPolicy.single_run()
        monitoring = defs.resolve_assets_def(dg.AssetKey([t, "sp_monitoring"]))
        assert set(monitoring.check_keys) == {
            dg.AssetCheckKey(monitoring.key, "utilization_within_band"),
            dg.AssetCheckKey(monitoring.key, "coverage_not_dipping"),
        }
        # each tenant's copy of a template op is named as its own @asset would be: run config addresses it
        for name in SP_AND_INGESTION:
            assets_def = defs.resolve_assets_def(dg.AssetKey([t, name]))
            assert assets_def.node_def.name == f"{t}__{name}"
            assert {d.path[0] for d in assets_def.dependency_keys} <= {t}
    job = defs.resolve_implicit_global_asset_job_def()
    for t in tenants:
        for name in SP_AND_INGESTION:
            assert job.graph.has_node_named(f"{t}__{name}")  # not aliased `..._2`: run config keys stay stable
    assert job.run_config_schema.config_type.fields["ops"].config_type.fields.keys() >= {
        f"{t}__sp_approvals" for t in tenants
    }


def test_every_key_a_copy_names_is_its_tenants(root, tenants):
    """Template keys ([tenant_template, ...]) must not survive in a copy: asset, dep and asset-check keys alike."""
    for assets_def in root.defs.resolve_asset_graph().assets_defs:
        [tenant] = {k.path[0] for k in assets_def.keys}
        assert tenant in tenants
        assert {k.path[0] for k in assets_def.dependency_keys} <= {tenant}
        for check in assets_def.check_specs:
            assert {check.asset_key.path[0], *(d.asset_key.path[0] for d in check.additional_deps)} == {tenant}


def test_shards_split_tenants_without_overlap(root, tenants):
    def tenant_ids(defs: dg.Definitions) -> set[str]:
        return {k.path[0] for k in defs.resolve_asset_graph().get_all_asset_keys()}

    shard0, shard1 = tenant_ids(root.shard_0_of_2), tenant_ids(root.shard_1_of_2)
    assert not shard0 & shard1
    assert shard0 | shard1 == set(tenants)
    assert shard0 == {t for t in tenants if root.shard_of(t, 2) == 0}


def test_validates_like_dagster_definitions_validate(root, tenants):
    defs = root.defs
    repo = defs.get_repository_def()
    assert len(repo.asset_graph.get_all_asset_keys()) >= len(tenants) * len(REQUIRED)
    job = defs.resolve_implicit_global_asset_job_def()
    assert job.name == "__ASSET_JOB"
    # a tenant's asset selection resolves to a job subset, as a launched run would
    assert job.get_subset(asset_selection={dg.AssetKey([next(iter(tenants)), "sp_proposals"])})


def test_light_constants_match_their_sources():
    """ingestion/defs and savings_plans/defs copy two names so that building definitions needs no polars."""
    from blocks_pipelines.ingestion import defs as ingestion_defs
    from blocks_pipelines.ingestion.schema import LAKE_TABLE
    from blocks_pipelines.savings_plans import defs as sp_defs
    from blocks_pipelines.savings_plans.inputs import POSITION_MART

    assert ingestion_defs.LAKE_TABLE == LAKE_TABLE and sp_defs.POSITION_MART == POSITION_MART


def test_building_definitions_imports_no_data_libraries():
    import subprocess

    code = (
        "import sys, blocks_pipelines.definitions as r; r.defs; "
        "print(sorted(m for m in ('polars', 'boto3', 'numpy', 'duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
