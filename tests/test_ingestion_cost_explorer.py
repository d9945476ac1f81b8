"""Cost Explorer backfill: GetCostAndUsage (hourly for 14 days, daily before) through botocore's Stubber, which
validates every request and response against the real API model."""

from datetime import date, datetime, timezone

import boto3
import polars as pl
import pytest
from botocore.stub import Stubber

from blocks_pipelines.ingestion import cost_explorer as ce
from blocks_pipelines.ingestion.cost_explorer import GROUP_BY, METRICS, backfill_from_cost_explorer
from blocks_pipelines.ingestion.ingest import ingest_delivery
from blocks_pipelines.lake import months
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry
from tests.synthetic.cur_frames import cur1_frame
from tests.synthetic.line_items import write_line_items

NOW = datetime(2026, 11, 20, 15, 42, tzinfo=timezone.utc)
EC2, S3, LAMBDA = "Amazon Elastic Compute Cloud - Compute", "Amazon Simple Storage Service", "AWS Lambda"


def _group(account, service, unblended, amortized):
    return {
        "Keys": [account, service],
        "Metrics": {
            "UnblendedCost": {"Amount": str(unblended), "Unit": "USD"},
            "AmortizedCost": {"Amount": str(amortized), "Unit": "USD"},
            "UsageQuantity": {"Amount": "1", "Unit": "N/A"},
        },
    }


def _period(start, end, groups):
    return {"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Groups": groups, "Estimated": True}


def _params(granularity, start, end, token=None):
    out = {
        "TimePeriod": {"Start": start, "End": end},
        "Granularity": granularity,
        "Metrics": METRICS,
        "GroupBy": GROUP_BY,
    }
    return {**out, "NextPageToken": token} if token else out


def _client():
    client = boto3.client("ce", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def _daily(days):
    return [
        _period(a.isoformat(), b.isoformat(), [_group("111111111112", EC2, 10, 8), _group("111111111113", S3, 2, 2)])
        for a, b in zip(days, days[1:], strict=False)
    ]


DAYS = [date(2026, 10, 30), date(2026, 10, 31)] + [date(2026, 11, d) for d in range(1, 8)]


def _stubbed_client():
    """NOW 2026-11-20 15:42: DAILY for 2026-10-30 .. 2026-11-07 (two pages), HOURLY from 2026-11-07 (last 14 days)."""
    client, stub = _client()
    daily = _daily(DAYS)
    stub.add_response(
        "get_cost_and_usage",
        {"ResultsByTime": daily[:4], "NextPageToken": "p2"},
        _params("DAILY", "2026-10-30", "2026-11-07"),
    )
    stub.add_response(
        "get_cost_and_usage", {"ResultsByTime": daily[4:]}, _params("DAILY", "2026-10-30", "2026-11-07", "p2")
    )
    hourly = [
        _period(
            f"2026-11-07T{h:02d}:00:00Z", f"2026-11-07T{h + 1:02d}:00:00Z", [_group("111111111112", LAMBDA, 0.5, 0.5)]
        )
        for h in range(3)
    ]
    stub.add_response(
        "get_cost_and_usage",
        {"ResultsByTime": hourly},
        _params("HOURLY", "2026-11-07T00:00:00Z", "2026-11-08T00:00:00Z"),
    )
    return client, stub


@pytest.fixture
def acme(blocks_env):
    return {t.id: t for t in load_registry(get_settings().tenants_dir)}["acme_corp"]


def _lake(tenant_id="acme_corp"):
    return pl.read_parquet(months.current_files(get_settings().lake_uri, tenant_id), hive_partitioning=False)


def _backfill(tenant, client, **kw):
    return backfill_from_cost_explorer(tenant, date(2026, 10, 30), date(2026, 11, 8), client=client, now=NOW, **kw)


def test_backfill_pages_daily_then_hourly_rows_marked_cost_explorer(acme):
    client, stub = _stubbed_client()
    with stub:
        result = _backfill(acme, client)
        stub.assert_no_pending_responses()
    lake = _lake()
    assert lake["source_format"].unique().to_list() == ["cost_explorer"]
    assert lake.height == result.summary.rows == 8 * 2 + 3
    assert lake["unblended_cost"].sum() == pytest.approx(8 * 12 + 1.5)
    assert lake["amortized_cost"].sum() == pytest.approx(8 * 10 + 1.5)
    hourly = lake.filter(pl.col("usage_date") == date(2026, 11, 7))
    assert sorted(hourly["usage_start"].dt.hour().to_list()) == [0, 1, 2]
    assert sorted(lake["billing_period"].unique().to_list()) == ["2026-10", "2026-11"]
    assert result.summary.matches
    assert result.requests.requests == 3 and result.requests.throttled == 0  # two DAILY pages, one HOURLY
    assert result.cost_by_day["2026-10-30"] == 12 and result.cost_by_day["2026-11-07"] == 1.5
    assert result.to_dict()["cost_explorer"]["requests"] == 3


def test_hourly_window_ends_at_the_last_complete_hour_and_history_is_bounded():
    assert ce.request_windows(date(2026, 11, 18), date(2026, 11, 21), NOW) == [
        ("HOURLY", "2026-11-18T00:00:00Z", "2026-11-20T15:00:00Z")
    ]
    assert ce.request_windows(date(2026, 11, 1), date(2026, 11, 3), NOW) == [("DAILY", "2026-11-01", "2026-11-03")]
    assert ce.earliest_day(date(2026, 11, 20)) == date(2025, 10, 1)
    assert ce.earliest_day(date(2026, 1, 5)) == date(2024, 12, 1)


def test_bounds_clamp_to_history_start_and_what_cost_explorer_keeps(acme):
    old = acme.model_copy(update={"history_start": date(2024, 3, 1)})
    assert ce.backfill_bounds(old, None, None, NOW) == (date(2025, 10, 1), date(2026, 11, 21))
    assert ce.backfill_bounds(acme, date(2026, 1, 1), date(2027, 1, 1), NOW) == (date(2026, 9, 1), date(2026, 11, 21))


def test_throttling_is_retried_with_growing_backoff_and_counted(acme):
    client, stub = _client()
    for _ in range(2):
        stub.add_client_error(
            "get_cost_and_usage",
            service_error_code="LimitExceededException",
            service_message="Rate exceeded",
            http_status_code=400,
        )
    stub.add_response(
        "get_cost_and_usage",
        {"ResultsByTime": _daily([date(2026, 11, 1), date(2026, 11, 2)])},
        _params("DAILY", "2026-11-01", "2026-11-02"),
    )
    slept = []
    with stub:
        result = backfill_from_cost_explorer(
            acme, date(2026, 11, 1), date(2026, 11, 2), client=client, now=NOW, sleep=slept.append
        )
        stub.assert_no_pending_responses()
    assert (result.requests.requests, result.requests.throttled) == (3, 2)
    assert result.summary.rows == 2
    assert len(slept) == 2
    for attempt, delay in enumerate(slept):
        full = ce.BACKOFF_BASE_S * 2**attempt
        assert full / 2 <= delay <= full


def test_throttling_that_never_ends_fails_and_leaves_the_lake_alone(acme):
    client, stub = _client()
    for _ in range(ce.MAX_ATTEMPTS):
        stub.add_client_error(
            "get_cost_and_usage",
            service_error_code="LimitExceededException",
            service_message="Rate exceeded",
            http_status_code=400,
        )
    slept = []
    with stub, pytest.raises(ce.CostExplorerThrottled, match="retry later"):
        backfill_from_cost_explorer(
            acme, date(2026, 11, 1), date(2026, 11, 2), client=client, now=NOW, sleep=slept.append
        )
    assert len(slept) == ce.MAX_ATTEMPTS - 1
    assert not (get_settings().home / "lake").exists()


def test_refused_hourly_falls_back_to_daily_for_the_same_days(acme):
    client, stub = _client()
    stub.add_client_error(
        "get_cost_and_usage",
        service_error_code="ValidationException",
        service_message="Hourly granularity is not enabled",
        http_status_code=400,
    )
    days = [date(2026, 11, d) for d in range(18, 22)]
    stub.add_response(
        "get_cost_and_usage", {"ResultsByTime": _daily(days)}, _params("DAILY", "2026-11-18", "2026-11-21")
    )
    with stub:
        result = backfill_from_cost_explorer(acme, date(2026, 11, 18), date(2026, 11, 21), client=client, now=NOW)
        stub.assert_no_pending_responses()
    assert "not enabled" in result.requests.hourly_refused
    assert sorted(_lake()["usage_date"].unique().to_list()) == days[:3]


def test_other_errors_are_not_retried(acme):
    client, stub = _client()
    stub.add_client_error(
        "get_cost_and_usage",
        service_error_code="AccessDeniedException",
        service_message="not authorized to perform ce:GetCostAndUsage",
        http_status_code=403,
    )
    slept = []
    with stub, pytest.raises(Exception, match="AccessDeniedException"):
        backfill_from_cost_explorer(
            acme, date(2026, 11, 1), date(2026, 11, 2), client=client, now=NOW, sleep=slept.append
        )
    assert slept == []


def test_cur_delivery_replaces_the_months_cost_explorer_rows_and_totals_equal_curs(acme, tmp_path):
    client, stub = _stubbed_client()
    with stub:
        _backfill(acme, client)
    october = cur1_frame(744, "2026-10", "111111111111", ["111111111112"])
    path = tmp_path / "oct.csv"
    october.write_csv(path)
    cur = ingest_delivery(acme, str(path))
    lake = _lake()
    oct_lake = lake.filter(pl.col("billing_period") == "2026-10")
    assert oct_lake["source_format"].unique().to_list() == ["cur1"]
    assert oct_lake.height == 744
    assert oct_lake["unblended_cost"].sum() == pytest.approx(
        october["lineItem/UnblendedCost"].cast(pl.Float64).sum(), abs=1e-6
    )
    assert cur.matches
    assert lake.filter(pl.col("billing_period") == "2026-11")["source_format"].unique().to_list() == ["cost_explorer"]

    client2, stub2 = _stubbed_client()
    with stub2:
        again = _backfill(acme, client2)
    after = _lake()
    oct_after = after.filter(pl.col("billing_period") == "2026-10")
    assert oct_after["source_format"].unique().to_list() == ["cur1"] and oct_after.height == 744
    assert again.summary.rows == 6 * 2 + 3  # October days hold CUR: skipped
    assert again.days_with_cur == [date(2026, 10, 30), date(2026, 10, 31)]
    assert after.filter(pl.col("source_format") == "cost_explorer").height == 6 * 2 + 3


def test_a_second_pull_replaces_the_first_instead_of_adding_to_it(acme):
    for _ in range(2):
        client, stub = _stubbed_client()
        with stub:
            _backfill(acme, client)
    lake = _lake()
    assert lake.height == 8 * 2 + 3


def test_cost_explorer_services_become_cur_product_codes_and_line_item_types():
    from blocks_pipelines.ingestion.cost_explorer import ce_rows_to_canonical

    def row(service, cost):
        return {
            "start": "2026-11-01",
            "end": "2026-11-02",
            "account": "111111111112",
            "service": service,
            "unblended": cost,
            "amortized": cost,
            "usage": 1.0,
            "currency": "USD",
        }

    df = ce_rows_to_canonical(
        [
            row("Amazon Elastic Compute Cloud - Compute", 10.0),
            row("Tax", 1.0),
            row("Savings Plans for AWS Compute usage", 5.0),
            row("Amazon Bedrock", 2.0),
        ],
        "acme_corp",
        "111111111111",
        "ce-1",
    )
    assert df["service"].to_list() == ["AmazonEC2", "Tax", "Savings Plans for AWS Compute usage", "Amazon Bedrock"]
    assert df["service_name"][0] == "Amazon Elastic Compute Cloud - Compute"
    assert df["line_item_type"].to_list() == ["Usage", "Tax", "SavingsPlanRecurringFee", "Usage"]
    assert df["charge_class"].to_list() == ["usage", "tax", "savings_plan", "usage"]
    assert df["source_format"].unique().to_list() == ["cost_explorer"]


def test_days_with_cur_are_read_from_parquet_footers_on_s3(blocks_env, aws_env, monkeypatch):
    """A CUR day, a Cost Explorer day and a mixed day on an S3 lake: only the footers are fetched (ranged GETs)."""
    from blocks_pipelines.lake import fs

    boto3.client("s3", endpoint_url=aws_env).create_bucket(Bucket="ce-lake")
    lake = "s3://ce-lake/lake"

    def day_file(day, formats):
        df = ce.ce_rows_to_canonical(
            [
                {
                    "start": day.isoformat(),
                    "end": day.isoformat(),
                    "account": "111111111112",
                    "service": "AWS Lambda",
                    "unblended": 1.0,
                    "amortized": 1.0,
                    "usage": 1.0,
                    "currency": "USD",
                }
            ]
            * len(formats),
            "acme_corp",
            "111111111111",
            "ce-1",
        )
        df = df.with_columns(pl.Series("source_format", formats))
        write_line_items(df, lake)

    day_file(date(2026, 11, 1), ["cur2"] * 3)
    day_file(date(2026, 11, 2), ["cost_explorer"] * 3)
    day_file(date(2026, 11, 3), ["cost_explorer", "cur2"])
    ranges = []
    real_get = fs.s3_client().get_object
    monkeypatch.setattr(
        fs.s3_client(),
        "get_object",
        lambda **kw: (kw["Key"].endswith(".parquet") and ranges.append(kw.get("Range"))) or real_get(**kw),
    )
    got = ce._days_with_cur(lake, "acme_corp", date(2026, 11, 1), date(2026, 11, 4))
    assert got == {date(2026, 11, 1), date(2026, 11, 3)}
    assert ranges and all(r and r.startswith("bytes=") for r in ranges)  # never a whole data file GET
