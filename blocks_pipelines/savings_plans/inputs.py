"""What the Savings Plans workflow reads at each step: the tenant's marts from the lake and the plans it holds.
Read fresh every time, so the purchase sees today's data rather than what the analysis saw."""

from __future__ import annotations

import io
from datetime import datetime

import polars as pl

from blocks_pipelines.lake import fs
from blocks_pipelines.lake.layout import mart_uri
from blocks_pipelines.savings_plans.lifecycle.rollback import undone_plans
from blocks_pipelines.savings_plans.proposals import Commitment, existing_commitments, usage_from_mart
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state.store import StateStore

ELIGIBLE_MART = "sp_eligible_usage_hourly"
POSITION_MART = "sp_position_hourly"


def read_mart(mart: str, tenant_id: str) -> pl.DataFrame | None:
    uri = mart_uri(get_settings().lake_uri, mart, tenant_id)
    if not fs.exists(uri):
        return None
    return pl.read_parquet(io.BytesIO(fs.read_bytes(uri)) if fs.is_s3(uri) else uri)


def load_usage(tenant_id: str) -> pl.DataFrame:
    mart = read_mart(ELIGIBLE_MART, tenant_id)
    if mart is None:
        raise FileNotFoundError(
            f"{mart_uri(get_settings().lake_uri, ELIGIBLE_MART, tenant_id)} does not exist: build the dbt models "
            f"for tenant {tenant_id} first (`blocks materialize`)"
        )
    return usage_from_mart(mart)


def held_commitments(store: StateStore, tenant_id: str, now: datetime) -> list[Commitment]:
    held = existing_commitments(
        read_mart(POSITION_MART, tenant_id), store.list_purchases(tenant_id), now, store.list_ledger_plans(tenant_id)
    )
    undone = undone_plans(store, tenant_id)  # returned or cancelled: the CUR may still show their first hours
    return [c for c in held if c.arn not in undone]
