"""Where things live in the lake. Every path is built here so readers and writers cannot disagree."""

from __future__ import annotations

from datetime import date

from blocks_pipelines.lake.fs import join

LINE_ITEMS = "cur_line_items"
MARTS = "marts"


def line_items_root(lake_uri: str) -> str:
    return join(lake_uri, LINE_ITEMS)


def line_items_tenant_prefix(lake_uri: str, tenant_id: str) -> str:
    return join(lake_uri, LINE_ITEMS, f"tenant_id={tenant_id}")


def line_items_day_uri(lake_uri: str, tenant_id: str, day: date) -> str:
    return join(line_items_tenant_prefix(lake_uri, tenant_id), f"usage_date={day.isoformat()}", "data.parquet")


def line_items_glob(lake_uri: str, tenant_id: str | None = None) -> str:
    """A glob DuckDB and polars understand (files hold every column, partition columns included)."""
    tenant = f"tenant_id={tenant_id}" if tenant_id else "tenant_id=*"
    return join(lake_uri, LINE_ITEMS, tenant, "usage_date=*", "*.parquet")


def mart_uri(lake_uri: str, mart: str, tenant_id: str) -> str:
    """Each mart is exported per tenant as one Parquet file, replaced atomically after every dbt build."""
    return join(lake_uri, MARTS, mart, f"tenant_id={tenant_id}", "data.parquet")


def mart_glob(lake_uri: str, mart: str) -> str:
    return join(lake_uri, MARTS, mart, "tenant_id=*", "*.parquet")
