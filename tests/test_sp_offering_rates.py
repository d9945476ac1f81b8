"""Real Savings Plans rates: DescribeSavingsPlansOfferingRates (botocore Stubber, validated against the API model),
the shared cache, the mix-weighted quote and its fallback to the typical table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import polars as pl
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from blocks_pipelines.lake.layout import mart_uri
from blocks_pipelines.savings_plans.analysis.analyzer import recommend
from blocks_pipelines.savings_plans.analysis.offering_rates import (
    SECONDS_PER_YEAR,
    MixItem,
    RateCache,
    cached_lookup,
    fetch_rates,
    quote,
    rate_family,
    usage_mix,
)
from blocks_pipelines.savings_plans.analysis.rate_quotes import tenant_rate_quote
from blocks_pipelines.settings import get_settings

NOW = datetime(2024, 6, 1, tzinfo=timezone.utc)
ONE_YEAR = SECONDS_PER_YEAR


def client():
    return boto3.client("savingsplans", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def rate_row(usage_type: str, rate: str, operation: str = "RunInstances", duration: int = ONE_YEAR) -> dict:
    return {
        "savingsPlanOffering": {
            "offeringId": "0d7e7a1a-9b5c-4d3a-8c4e-1f2a3b4c5d6e",
            "paymentOption": "No Upfront",
            "planType": "Compute",
            "durationSeconds": duration,
            "currency": "USD",
            "planDescription": "1 year No Upfront Compute Savings Plan",
        },
        "rate": rate,
        "unit": "Hrs",
        "productType": "EC2",
        "serviceCode": "AmazonEC2",
        "usageType": usage_type,
        "operation": operation,
        "properties": [{"name": "region", "value": "eu-west-1"}, {"name": "instanceFamily", "value": "m5"}],
    }


def expected_request(family: str = "m5", region: str = "eu-west-1", token: str | None = None) -> dict:
    request = {
        "savingsPlanTypes": ["Compute"],
        "savingsPlanPaymentOptions": ["No Upfront"],
        "products": ["EC2"],
        "filters": [{"name": "region", "values": [region]}, {"name": "instanceFamily", "values": [family]}],
        "maxResults": 1000,
    }
    if token:
        request["nextToken"] = token
    return request


def test_rate_family_reads_the_usage_type():
    assert rate_family("EUW1-BoxUsage:m5.large") == "m5"
    assert rate_family("BoxUsage:t3.micro") == "t3"
    assert rate_family("USE1-Fargate-vCPU-Hours:perCPU") == "fargate"
    assert rate_family("EUW1-Lambda-GB-Second") == "lambda"
    assert rate_family("EUW1-DataTransfer-Out-Bytes") is None


def test_fetch_rates_pages_and_keeps_the_term_asked_for():
    c = client()
    with Stubber(c) as stub:
        stub.add_response(
            "describe_savings_plans_offering_rates",
            {
                "searchResults": [
                    rate_row("EUW1-BoxUsage:m5.large", "0.0770"),
                    rate_row("EUW1-BoxUsage:m5.large", "0.0520", duration=3 * ONE_YEAR),
                ],
                "nextToken": "page2",
            },
            expected_request(),
        )
        stub.add_response(
            "describe_savings_plans_offering_rates",
            {
                "searchResults": [
                    rate_row("EUW1-BoxUsage:m5.xlarge", "0.1540"),
                    rate_row("EUW1-BoxUsage:m5.large", "0.1690", operation="RunInstances:0002"),
                ]
            },
            expected_request(token="page2"),
        )
        rates = fetch_rates(c, "eu-west-1", "m5", 1, "no_upfront")
        stub.assert_no_pending_responses()
    assert rates == {
        ("EUW1-BoxUsage:m5.large", "RunInstances"): 0.077,
        ("EUW1-BoxUsage:m5.xlarge", "RunInstances"): 0.154,
        ("EUW1-BoxUsage:m5.large", "RunInstances:0002"): 0.169,
    }


def test_the_cache_asks_once_per_key_and_refetches_after_its_ttl(tmp_path: Path):
    cache = RateCache(tmp_path / "rates.json", ttl=timedelta(days=7))
    c = client()
    with Stubber(c) as stub:
        stub.add_response(
            "describe_savings_plans_offering_rates",
            {"searchResults": [rate_row("EUW1-BoxUsage:m5.large", "0.0770")]},
            expected_request(),
        )
        lookup = cached_lookup(c, cache, NOW)
        first = lookup("eu-west-1", "m5", 1, "no_upfront")
        assert lookup("eu-west-1", "m5", 1, "no_upfront") == first  # no second response queued: served from cache
        stub.assert_no_pending_responses()
    # another process (a fresh lookup on the same file) reuses it too, until the TTL runs out
    assert cache.get(RateCache.key("eu-west-1", "m5", 1, "no_upfront"), NOW + timedelta(days=6)) == first
    assert cache.get(RateCache.key("eu-west-1", "m5", 1, "no_upfront"), NOW + timedelta(days=8)) is None
    assert cache.get(RateCache.key("eu-west-1", "m5", 3, "no_upfront"), NOW) is None  # term is part of the key
    (tmp_path / "rates.json").write_text("{not json")
    assert cache.get(RateCache.key("eu-west-1", "m5", 1, "no_upfront"), NOW) is None  # corrupt: refetch


def test_quote_weights_real_ratios_by_spend_and_falls_back_per_item():
    mix = [
        MixItem("eu-west-1", "EUW1-BoxUsage:m5.large", on_demand_cost=700.0, usage_amount=7000.0),  # $0.10/h
        MixItem("eu-west-1", "EUW1-BoxUsage:c5.large", on_demand_cost=300.0, usage_amount=3000.0),
    ]
    rates = {
        ("eu-west-1", "m5"): {
            ("EUW1-BoxUsage:m5.large", "RunInstances"): 0.068,
            # Windows: against a Linux on-demand price it would read as 0.17 / 0.10 > 1
            ("EUW1-BoxUsage:m5.large", "RunInstances:0002"): 0.17,
        },
        ("eu-west-1", "c5"): {},
    }
    q = quote(mix, lambda region, family, term, pay: rates[(region, family)], 1, "no_upfront", typical_ratio=0.75)
    assert q.source == "offering_rates"
    assert q.priced_share == pytest.approx(0.7)
    assert q.ratio == pytest.approx(0.7 * 0.68 + 0.3 * 0.75)  # c5 has no rate: the typical ratio
    assert "70% of eligible on-demand spend" in q.note and "DescribeSavingsPlansOfferingRates" in q.note


def test_quote_says_typical_when_rates_are_unavailable_or_fail():
    mix = [MixItem("eu-west-1", "EUW1-BoxUsage:m5.large", 100.0, 1000.0)]
    off = quote(mix, None, 1, "no_upfront", 0.73, unavailable="local mode")
    assert (off.source, off.ratio, off.priced_share) == ("typical", 0.73, 0.0) and "local mode" in off.note

    def failing(*_):
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeSavingsPlansOfferingRates"
        )

    failed = quote(mix, failing, 1, "no_upfront", 0.73)
    assert failed.source == "typical" and failed.ratio == 0.73 and "ClientError" in failed.note
    with pytest.raises(ValueError, match="not offered"):
        quote(mix, None, 2, "no_upfront", 0.73)


def spend_rows(now: datetime) -> pl.DataFrame:
    hours = [now - timedelta(hours=h) for h in range(1, 49)]
    n = len(hours)
    return pl.DataFrame(
        {
            "usage_hour": hours * 3,
            "region": ["eu-west-1"] * (3 * n),
            "service": ["AmazonEC2"] * (2 * n) + ["AmazonS3"] * n,
            "usage_type": ["EUW1-BoxUsage:m5.large"] * n + ["EUW1-SpotUsage:m5.large"] * n + ["EUW1-TimedStorage"] * n,
            "line_item_type": ["Usage"] * (3 * n),
            "public_on_demand_cost": [0.2] * (3 * n),
            "usage_amount": [2.0] * (3 * n),
        }
    ).with_columns(pl.col("usage_hour").dt.replace_time_zone(None))


def test_usage_mix_keeps_eligible_on_demand_usage_only():
    mix = usage_mix(spend_rows(NOW), NOW)
    assert [(m.usage_type, m.on_demand_cost, m.usage_amount) for m in mix] == [
        ("EUW1-BoxUsage:m5.large", pytest.approx(9.6), pytest.approx(96.0))
    ]
    assert mix[0].on_demand_rate == pytest.approx(0.1)


def test_tenant_quote_reads_the_spend_mart_and_the_proposal_states_its_source(blocks_env):
    settings = get_settings()
    uri = Path(mart_uri(settings.lake_uri, "spend_hourly", "acme_corp"))
    uri.parent.mkdir(parents=True)
    spend_rows(NOW).write_parquet(uri)
    usage = pl.DataFrame(
        {
            "ts_hour": [NOW - timedelta(hours=h) for h in range(24 * 30, 0, -1)],
            "eligible_on_demand_cost": [10.0] * (24 * 30),
            "sp_rate_ratio": [0.72] * (24 * 30),
        }
    )
    local = tenant_rate_quote("acme_corp", usage, 1, "no_upfront", NOW)
    assert local.source == "typical" and "BLOCKS_SP_OFFERING_RATES" in local.note
    c = client()
    with Stubber(c) as stub:
        stub.add_response(
            "describe_savings_plans_offering_rates",
            {"searchResults": [rate_row("EUW1-BoxUsage:m5.large", "0.0650")]},
            expected_request(),
        )
        real = tenant_rate_quote("acme_corp", usage, 1, "no_upfront", NOW, client=c)
    assert real.source == "offering_rates" and real.ratio == pytest.approx(0.65) and real.priced_share == 1.0
    rec = recommend(usage, offering_ratio=real.ratio, rate_source=real.note)
    assert rec.sp_rate_ratio == pytest.approx(0.65) and rec.rate_source == real.note
    assert "DescribeSavingsPlansOfferingRates" in rec.rationale
    table = recommend(usage)
    assert "typical discount table" in table.rate_source and table.sp_rate_ratio == pytest.approx(0.72)
    with pytest.raises(ValueError, match="offering_ratio"):
        recommend(usage, offering_ratio=1.5)
