"""Cost Explorer backfill: GetCostAndUsage (hourly for 14 days, daily before) through botocore's Stubber."""

from datetime import date

import boto3
import polars as pl
import pytest
from botocore.stub import Stubber

from blocks_pipelines.ingestion.api import ingest_delivery
from blocks_pipelines.ingestion.cost_explorer import METRICS, backfill_from_cost_explorer
from blocks_pipelines.ingestion.synthetic import cur1_frame
from blocks_pipelines.lake import layout
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry

GROUP_BY = [{"Type": "DIMENSION", "Key": "LINKED_ACCOUNT"}, {"Type": "DIMENSION", "Key": "SERVICE"}]


def _group(account, service, unblended, amortized):
    return {"Keys": [account, service], "Metrics": {
        "UnblendedCost": {"Amount": str(unblended), "Unit": "USD"},
        "AmortizedCost": {"Amount": str(amortized), "Unit": "USD"},
        "UsageQuantity": {"Amount": "1", "Unit": "N/A"}}}


def _period(start, end, groups):
    return {"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Groups": groups, "Estimated": True}


@pytest.fixture
def acme(blocks_env):
    return {t.id: t for t in load_registry(get_settings().tenants_dir)}["acme_corp"]


def _stubbed_client():
    client = boto3.client("ce", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    # today 2026-11-20: DAILY for 2026-10-30 .. 2026-11-07, HOURLY from 2026-11-07 (last 14 days)
    daily = [_period(f"2026-{m:02d}-{d:02d}", f"2026-{m2:02d}-{d2:02d}",
                     [_group("111111111112", "Amazon Elastic Compute Cloud - Compute", 10, 8),
                      _group("111111111113", "Amazon Simple Storage Service", 2, 2)])
             for (m, d), (m2, d2) in zip([(10, 30), (10, 31)] + [(11, x) for x in range(1, 7)],
                                         [(10, 31)] + [(11, x) for x in range(1, 8)])]
    stub.add_response("get_cost_and_usage", {"ResultsByTime": daily[:4], "NextPageToken": "p2"},
                      {"TimePeriod": {"Start": "2026-10-30", "End": "2026-11-07"}, "Granularity": "DAILY",
                       "Metrics": METRICS, "GroupBy": GROUP_BY})
    stub.add_response("get_cost_and_usage", {"ResultsByTime": daily[4:]},
                      {"TimePeriod": {"Start": "2026-10-30", "End": "2026-11-07"}, "Granularity": "DAILY",
                       "Metrics": METRICS, "GroupBy": GROUP_BY, "NextPageToken": "p2"})
    hourly = [_period(f"2026-11-07T{h:02d}:00:00Z", f"2026-11-07T{h + 1:02d}:00:00Z",
                      [_group("111111111112", "AWS Lambda", 0.5, 0.5)]) for h in range(3)]
    stub.add_response("get_cost_and_usage", {"ResultsByTime": hourly},
                      {"TimePeriod": {"Start": "2026-11-07T00:00:00Z", "End": "2026-11-08T00:00:00Z"},
                       "Granularity": "HOURLY", "Metrics": METRICS, "GroupBy": GROUP_BY})
    return client, stub


def test_backfill_writes_daily_then_hourly_rows_marked_cost_explorer(acme):
    client, stub = _stubbed_client()
    with stub:
        summary = backfill_from_cost_explorer(acme, date(2026, 10, 30), date(2026, 11, 8), client=client,
                                              today=date(2026, 11, 20))
        stub.assert_no_pending_responses()
    lake = pl.read_parquet(layout.line_items_glob(get_settings().lake_uri, "acme_corp"), hive_partitioning=False)
    assert lake["source_format"].unique().to_list() == ["cost_explorer"]
    assert lake.height == summary.rows == 8 * 2 + 3
    assert lake["unblended_cost"].sum() == pytest.approx(8 * 12 + 1.5)
    assert lake["amortized_cost"].sum() == pytest.approx(8 * 10 + 1.5)
    hourly = lake.filter(pl.col("usage_date") == date(2026, 11, 7))
    assert sorted(hourly["usage_start"].dt.hour().to_list()) == [0, 1, 2]
    assert sorted(lake["billing_period"].unique().to_list()) == ["2026-10", "2026-11"]
    assert summary.matches


def test_cur_replaces_cost_explorer_rows_and_backfill_never_overwrites_cur(acme, tmp_path):
    client, stub = _stubbed_client()
    with stub:
        backfill_from_cost_explorer(acme, date(2026, 10, 30), date(2026, 11, 8), client=client,
                                    today=date(2026, 11, 20))
    october = cur1_frame(744, "2026-10", "111111111111", ["111111111112"])
    path = tmp_path / "oct.csv"
    october.write_csv(path)
    ingest_delivery(acme, str(path))
    lake = pl.read_parquet(layout.line_items_glob(get_settings().lake_uri, "acme_corp"), hive_partitioning=False)
    assert lake.filter(pl.col("billing_period") == "2026-10")["source_format"].unique().to_list() == ["cur1"]
    assert lake.filter(pl.col("billing_period") == "2026-11")["source_format"].unique().to_list() == ["cost_explorer"]

    client2, stub2 = _stubbed_client()
    with stub2:
        again = backfill_from_cost_explorer(acme, date(2026, 10, 30), date(2026, 11, 8), client=client2,
                                            today=date(2026, 11, 20))
    after = pl.read_parquet(layout.line_items_glob(get_settings().lake_uri, "acme_corp"), hive_partitioning=False)
    oct_after = after.filter(pl.col("billing_period") == "2026-10")
    assert oct_after["source_format"].unique().to_list() == ["cur1"] and oct_after.height == 744
    assert again.rows == 6 * 2 + 3  # October days hold CUR: skipped
    assert after.filter(pl.col("source_format") == "cost_explorer").height == 6 * 2 + 3
