"""A snapshot of two tenants' definitions: asset keys, groups, partitions, dependencies, checks, op names, jobs,
sensors and schedules.

`tenants/templates.py` copies each domain's template assets per tenant through Dagster internals (the op's `_name`,
`AssetsDefinition.dagster_internal_init`, `dagster_shared.record.replace`) to keep 2,000 tenants' definitions fast to
load. A Dagster upgrade that changes what those produce changes this snapshot, and the test fails loudly instead of
a tenant silently losing a check or a dependency. After an intended change: `pytest tests/test_definitions_snapshot.py
--snapshot-update`, then read the diff of tests/__snapshots__/ before committing it.
"""

from __future__ import annotations

import dagster as dg

from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry


def _partitions(p: dg.PartitionsDefinition | None) -> str | None:
    if p is None:
        return None
    if isinstance(p, dg.TimeWindowPartitionsDefinition):
        return f"{type(p).__name__}(start={p.start.isoformat()}, cron={p.cron_schedule!r}, tz={p.timezone})"
    return type(p).__name__


def summarize(defs: dg.Definitions) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {}
    for assets_def in graph.assets_defs:
        for key in sorted(assets_def.keys):
            spec = next(s for s in assets_def.specs if s.key == key)
            assets[key.to_user_string()] = {
                "group": spec.group_name,
                "op": assets_def.node_def.name if assets_def.is_executable else None,
                "partitions": _partitions(assets_def.partitions_def),
                "deps": sorted(d.asset_key.to_user_string() for d in spec.deps),
                "checks": sorted(
                    (c.name, c.blocking, sorted(d.asset_key.to_user_string() for d in c.additional_deps))
                    for c in assets_def.check_specs
                    if c.asset_key == key
                ),
                "backfill_policy": str(assets_def.backfill_policy) if assets_def.backfill_policy else None,
            }
    repo = defs.get_repository_def()
    return {
        "assets": dict(sorted(assets.items())),
        "sensors": sorted((s.name, s.minimum_interval_seconds, str(s.default_status)) for s in repo.sensor_defs),
        "schedules": sorted((s.name, s.cron_schedule, str(s.default_status)) for s in repo.schedule_defs),
        "jobs": sorted(j.name for j in repo.get_all_jobs()),
    }


def test_two_tenants_definitions_match_the_snapshot(blocks_env, snapshot):
    from blocks_pipelines.definitions import build_definitions

    tenants = sorted(load_registry(get_settings().tenants_dir), key=lambda t: t.id)[:2]
    assert len(tenants) == 2
    assert summarize(build_definitions(tenants)) == snapshot
