"""Builders shared by the Savings Plans purchase, guardrail and Dagster tests (not collected: no test_ prefix)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
from pydantic import BaseModel

from blocks_pipelines.savings_plans.proposals import build_proposal, decide, publish_proposal
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry

END = datetime(2026, 11, 20, tzinfo=timezone.utc)


class FakeRecommendation(BaseModel):
    hourly_commitment: float
    rationale: str = "covers the 28th percentile of hourly eligible spend"


def hourly_usage(
    days: int = 40,
    per_hour: float = 10.0,
    ratio: float = 0.72,
    end: datetime = END,
    recent_factor: float = 1.0,
    recent_days: int = 0,
) -> pl.DataFrame:
    """Steady eligible spend (a mild daily wave), optionally scaled over the last `recent_days` days."""
    start = end - timedelta(days=days)
    hours = pl.datetime_range(start, end - timedelta(hours=1), "1h", time_zone="UTC", eager=True)
    frame = pl.DataFrame({"ts_hour": hours}).with_columns(
        (per_hour * (1 + 0.1 * ((pl.col("ts_hour").dt.hour() - 12).abs() < 6))).alias("eligible_on_demand_cost"),
        pl.lit(ratio).alias("sp_rate_ratio"),
    )
    if recent_days:
        cutoff = end - timedelta(days=recent_days)
        frame = frame.with_columns(
            pl.when(pl.col("ts_hour") >= cutoff)
            .then(pl.col("eligible_on_demand_cost") * recent_factor)
            .otherwise(pl.col("eligible_on_demand_cost"))
            .alias("eligible_on_demand_cost")
        )
    return frame


def tenant(tenant_id: str = "acme_corp", **guardrails):
    t = next(t for t in load_registry(get_settings().tenants_dir) if t.id == tenant_id)
    if guardrails:
        t = t.model_copy(update={"guardrails": t.guardrails.model_copy(update=guardrails)})
    return t


def approved_proposal(store, t, usage, hourly: float = 4.0, now: datetime = END, approve: bool = True):
    proposal = publish_proposal(store, build_proposal(t, usage, FakeRecommendation(hourly_commitment=hourly), [], now))
    if approve:
        decide(store, proposal.proposal_id, "approve", "alice", "ok", now=now)
    return store.get_proposal(proposal.proposal_id)
