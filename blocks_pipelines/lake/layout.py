"""Where things live in the lake. Every path is built here so readers and writers cannot disagree.

Line items are versioned per (tenant, billing month): a month's day files live in a version folder, and the
month's pointer object names the version readers see. A write lays a whole new version aside, then swaps the
pointer in one write, so a reader sees exactly the old month or exactly the new one (docs/lake_versions.md):

    {lake}/cur_line_items/tenant_id={t}/billing_period={YYYY-MM}/_current.json            the pointer
    {lake}/cur_line_items/tenant_id={t}/billing_period={YYYY-MM}/_lease                   one writer at a time
    {lake}/cur_line_items/tenant_id={t}/billing_period={YYYY-MM}/version={v}/usage_date={YYYY-MM-DD}/data.parquet
    {lake}/cur_line_items/_athena/tenant_id={t}/billing_period={YYYY-MM}/symlink.txt      Athena's view of it
"""

from __future__ import annotations

from datetime import date

from blocks_pipelines.lake.fs import join

LINE_ITEMS = "cur_line_items"
MARTS = "marts"
POINTER = "_current.json"
LEASE = "_lease"
ATHENA_MANIFESTS = "_athena"
ATHENA_SYMLINK = "symlink.txt"


def line_items_root(lake_uri: str) -> str:
    return join(lake_uri, LINE_ITEMS)


def line_items_tenant_prefix(lake_uri: str, tenant_id: str) -> str:
    return join(lake_uri, LINE_ITEMS, f"tenant_id={tenant_id}")


def line_items_month_prefix(lake_uri: str, tenant_id: str, billing_period: str) -> str:
    return join(line_items_tenant_prefix(lake_uri, tenant_id), f"billing_period={billing_period}")


def line_items_pointer_uri(lake_uri: str, tenant_id: str, billing_period: str) -> str:
    return join(line_items_month_prefix(lake_uri, tenant_id, billing_period), POINTER)


def line_items_lease_uri(lake_uri: str, tenant_id: str, billing_period: str) -> str:
    return join(line_items_month_prefix(lake_uri, tenant_id, billing_period), LEASE)


def line_items_version_prefix(lake_uri: str, tenant_id: str, billing_period: str, version: str) -> str:
    return join(line_items_month_prefix(lake_uri, tenant_id, billing_period), f"version={version}")


def line_items_file_name(version: str, day: date) -> str:
    """A day file's name relative to its month folder, as the pointer lists it."""
    return f"version={version}/usage_date={day.isoformat()}/data.parquet"


def line_items_file_uri(lake_uri: str, tenant_id: str, billing_period: str, name: str) -> str:
    return join(line_items_month_prefix(lake_uri, tenant_id, billing_period), name)


def athena_manifests_root(lake_uri: str) -> str:
    return join(lake_uri, LINE_ITEMS, ATHENA_MANIFESTS)


def athena_symlink_uri(lake_uri: str, tenant_id: str, billing_period: str) -> str:
    return join(
        athena_manifests_root(lake_uri), f"tenant_id={tenant_id}", f"billing_period={billing_period}", ATHENA_SYMLINK
    )


def mart_uri(lake_uri: str, mart: str, tenant_id: str) -> str:
    """Each mart is exported per tenant as one Parquet file, replaced atomically after every dbt build."""
    return join(lake_uri, MARTS, mart, f"tenant_id={tenant_id}", "data.parquet")


def mart_glob(lake_uri: str, mart: str) -> str:
    return join(lake_uri, MARTS, mart, "tenant_id=*", "*.parquet")
