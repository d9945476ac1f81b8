"""Root Dagster definitions: only assembles. Each domain declares its own per-tenant definitions.

One asset graph per tenant (an asset factory driven by the registry), so partitions stay per tenant.
Tenants can be sharded across code locations in workspace.yaml: attribute `shard_<i>_of_<n>` of this module
holds the tenants whose stable hash falls in shard i (see README, "Scaling out").
"""

from __future__ import annotations

import gc
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (restored after). Importing Dagster and dagster-dbt and building 200 tenants'
    definitions allocate over half a million long-lived objects, and every generation-2 pass re-walks all of them:
    ~15-20 % of the load time (issue #2). Almost none are garbage; the first collection after the load finds the
    rest."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


with _gc_paused():
    import dagster as dg

    from blocks_pipelines.alerts.defs import build_alert_defs
    from blocks_pipelines.ingestion.defs import build_ingestion_defs
    from blocks_pipelines.ingestion.delivery_sensors import build_ingestion_location_defs
    from blocks_pipelines.models.defs import build_model_defs, build_model_location_defs
    from blocks_pipelines.sample_data.defs import build_sample_data_defs
    from blocks_pipelines.savings_plans.defs import build_sp_defs, build_sp_location_defs
    from blocks_pipelines.settings import get_settings
    from blocks_pipelines.tenants.config import TenantConfig, load_registry

TENANT_FACTORIES = (build_ingestion_defs, build_model_defs, build_sp_defs, build_sample_data_defs, build_alert_defs)
# Sensors that serve every tenant of a code location at once, so their number does not grow with tenants (#16)
LOCATION_FACTORIES = (build_ingestion_location_defs, build_model_location_defs, build_sp_location_defs)


def build_tenant_defs(tenant: TenantConfig) -> dg.Definitions:
    return dg.Definitions.merge(*(factory(tenant) for factory in TENANT_FACTORIES))


def shard_of(tenant_id: str, shards: int) -> int:
    """Stable across processes and Python versions (unlike hash())."""
    return zlib.crc32(tenant_id.encode()) % shards


def build_definitions(tenants: list[TenantConfig]) -> dg.Definitions:
    if not tenants:
        return dg.Definitions()
    return dg.Definitions.merge(
        *(build_tenant_defs(t) for t in tenants), *(factory(tenants) for factory in LOCATION_FACTORIES)
    )


@cache
def _registry() -> tuple[TenantConfig, ...]:
    return tuple(load_registry(get_settings().tenants_dir))


def shard_definitions(index: int, shards: int) -> dg.Definitions:
    return build_definitions([t for t in _registry() if shard_of(t.id, shards) == index])


def __getattr__(name: str) -> dg.Definitions:
    # PEP 562: `defs` and `shard_<i>_of_<n>` are built on first access, so importing this module stays cheap.
    if name == "defs":
        build = lambda: build_definitions(list(_registry()))  # noqa: E731
    elif name.startswith("shard_") and "_of_" in name:
        i, n = name[len("shard_") :].split("_of_")
        build = lambda: shard_definitions(int(i), int(n))  # noqa: E731
    else:
        raise AttributeError(name)
    with _gc_paused():
        value = build()
        # Dagster resolves the repository right after loading the attribute (and caches it on the Definitions):
        # resolve here too, while the collector is paused. A broken definition fails the load as it would anyway.
        value.get_repository_def().asset_graph  # noqa: B018  (built lazily on first use, also at every load)
    globals()[name] = value
    return value
