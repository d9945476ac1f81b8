"""Which rates the tenant's next plan is priced at: real offering rates where Blocks can ask AWS, else the table.

Production asks savingsplans with Blocks' own credentials (offering rates are public prices, no tenant role is
needed); locally the lookup is off unless BLOCKS_SP_OFFERING_RATES=1, so a laptop without AWS access prices from
the typical discount table and the proposal says so.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import boto3
import polars as pl

from blocks_pipelines.savings_plans.analysis.offering_rates import RateCache, RateQuote, cached_lookup, quote, usage_mix
from blocks_pipelines.savings_plans.analysis.rates import ratio_for_offering
from blocks_pipelines.savings_plans.inputs import read_mart
from blocks_pipelines.settings import Settings, get_settings

SPEND_MART = "spend_hourly"
SAVINGS_PLANS_REGION = "us-east-1"  # the savingsplans API has one global endpoint
DEFAULT_RATE_RATIO = 0.72


def rates_enabled(settings: Settings) -> bool:
    return settings.sp_offering_rates


def rate_cache(settings: Settings) -> RateCache:
    return RateCache(settings.home / "cache" / "sp_offering_rates.json")


def observed_ratio(usage: pl.DataFrame) -> float:
    """The ratio the analyzer observes (median of the last 30 days' hours), for the typical-table fallback."""
    if usage.is_empty():
        return DEFAULT_RATE_RATIO
    recent = usage.filter(pl.col("ts_hour") > usage["ts_hour"].max() - timedelta(days=30))["sp_rate_ratio"]
    return float(recent.median() or DEFAULT_RATE_RATIO)


def tenant_rate_quote(
    tenant_id: str,
    usage: pl.DataFrame,
    term_years: int,
    payment_option: str,
    now: datetime,
    *,
    client: Any | None = None,
    settings: Settings | None = None,
) -> RateQuote:
    s = settings or get_settings()
    typical = ratio_for_offering(observed_ratio(usage), term_years, payment_option)
    spend = read_mart(SPEND_MART, tenant_id)
    mix = usage_mix(spend, now) if spend is not None else []
    if client is None and not rates_enabled(s):
        return quote(
            mix,
            None,
            term_years,
            payment_option,
            typical,
            unavailable="real rates are fetched in production (BLOCKS_SP_OFFERING_RATES=1 enables them here)",
        )
    client = client or boto3.client("savingsplans", region_name=SAVINGS_PLANS_REGION)
    return quote(mix, cached_lookup(client, rate_cache(s), now), term_years, payment_option, typical)
