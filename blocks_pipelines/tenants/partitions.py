"""Per-tenant hourly partitions. One tenant x hour multi-partition for 200 tenants x 2 years is 3.5M keys (23.6 s
to list); a per-tenant graph with its own hourly partitions keeps each asset at ~17k keys."""

from __future__ import annotations

from functools import lru_cache

import dagster as dg

from blocks_pipelines.tenants.config import TenantConfig

PARTITION_FMT = "%Y-%m-%d-%H:%M"


@lru_cache(maxsize=None)
def _hourly(start: str) -> dg.HourlyPartitionsDefinition:
    return dg.HourlyPartitionsDefinition(start_date=start, timezone="UTC", fmt=PARTITION_FMT)


def tenant_hourly_partitions(tenant: TenantConfig) -> dg.HourlyPartitionsDefinition:
    return _hourly(tenant.history_start.strftime("%Y-%m-%d-00:00"))
