"""Pure query building and parsing (no warehouse), and the mart store over an s3:// lake (moto)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from serving.data import params as p
from serving.data.spend import SpendQuery, parse_spend_query, spend_sql
from serving.data.store import ResponseCache
from serving.refs import reference


def test_spend_sql_binds_every_user_value_as_a_parameter():
    q = SpendQuery(
        start=date(2026, 1, 1),
        end=date(2026, 1, 31),
        granularity="week",
        group_by="tag:user:team",
        accounts=("111111111112",),
        ous=("Root/Engineering",),
        services=("AmazonEC2",),
        regions=("global",),
        tags=(("user:env", "prod'; DROP TABLE x; --"),),
        charge_classes=("usage",),
    )
    sql, args = spend_sql(q)
    assert "DROP" not in sql and "prod" not in sql and "111111111112" not in sql
    assert "FROM spend_daily" in sql and "date_trunc('week'" in sql
    assert args == [
        '$."user:team"',
        date(2026, 1, 1),
        date(2026, 1, 31),
        "111111111112",
        "AmazonEC2",
        "global",
        "usage",
        "Root/Engineering",
        "Root/Engineering/",
        '$."user:env"',
        "prod'; DROP TABLE x; --",
    ]
    hourly, _ = spend_sql(SpendQuery(start=date(2026, 1, 1), end=date(2026, 1, 1), granularity="hour"))
    assert "FROM spend_hourly" in hourly


def test_parse_defaults_to_the_last_30_days_of_data():
    q = parse_spend_query({}, last_date=date(2026, 11, 24))
    assert (q.start, q.end, q.granularity, q.cost_type, q.group_by) == (
        date(2026, 10, 26),
        date(2026, 11, 24),
        "day",
        "amortized",
        None,
    )
    q = parse_spend_query({"start": ["2026-12-01"]}, last_date=date(2026, 11, 24))
    assert q.start == date(2026, 12, 1) and q.end > q.start


def test_parsed_queries_normalise_so_equal_requests_share_a_cache_entry():
    a = parse_spend_query(
        {"service": ["AmazonS3", "AmazonEC2", "AmazonEC2"], "start": ["2026-01-01"], "end": ["2026-01-02"]}, None
    )
    b = parse_spend_query({"service": ["AmazonEC2", "AmazonS3"], "start": ["2026-01-01"], "end": ["2026-01-02"]}, None)
    assert a == b and hash(a) == hash(b)


def test_references_round_trip_to_the_same_query():
    q = parse_spend_query(
        {"start": ["2026-01-01"], "end": ["2026-01-31"], "group_by": ["service"], "tag": ["user:team=web"]}, None
    )
    ref = reference("/api/spend", q.as_params())
    assert ref.ui_link.startswith("/app/dashboard?") and "tag=user%3Ateam%3Dweb" in ref.ui_link
    again = parse_spend_query({k: v if isinstance(v, list) else [v] for k, v in ref.params.items()}, None)
    assert again == q


@pytest.mark.parametrize(
    "raw, field",
    [
        ({"start": ["2026-1-1"]}, "start"),
        ({"ou": ["Engineering"]}, "ou"),
        ({"tag": ["k" * 200 + "=v"]}, "tag"),
        ({"account": [str(10**11 + i) for i in range(51)]}, "account"),
        ({"region": ["EU WEST"]}, "region"),
        ({"group_by": ["tag:"]}, "group_by"),
        ({"charge_class": ["Usage"]}, "charge_class"),
    ],
)
def test_invalid_parameters_name_the_field(raw, field):
    with pytest.raises(p.InvalidParameter) as exc:
        parse_spend_query(raw, date(2026, 11, 24))
    assert exc.value.field == field and exc.value.message


def test_recommendation_statuses_match_the_state_store():
    from blocks_pipelines.state.records import RECOMMENDATION_STATUSES
    from serving.data.recommendations import STATUSES
    from serving.schemas import StatusUpdate

    assert set(STATUSES) == set(RECOMMENDATION_STATUSES)
    assert set(StatusUpdate.model_fields["status"].annotation.__args__) == set(RECOMMENDATION_STATUSES)


def test_mart_store_reads_an_s3_lake(blocks_env, aws_env, tmp_path, monkeypatch):
    import boto3

    from serving.data.spend import run_spend
    from serving.data.store import MartStore
    from serving.testing import write_fixture_lake

    local = tmp_path / "lake"
    write_fixture_lake(local, {"acme_corp": 1.0, "globex": 2.0}, days=5, end=date(2026, 11, 1))
    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    s3.create_bucket(Bucket="blocks-lake")
    for f in local.rglob("*.parquet"):
        s3.upload_file(str(f), "blocks-lake", "prod/" + f.relative_to(local).as_posix())
    remote = MartStore("s3://blocks-lake/prod", tmp_path / "dl", refresh_seconds=60)
    on_disk = MartStore(str(local), tmp_path / "unused", refresh_seconds=60)
    q = SpendQuery(start=date(2026, 10, 28), end=date(2026, 11, 1), group_by="account")
    from_s3 = run_spend(remote.tenant("acme_corp"), q)
    assert from_s3.data_status == "ready" and from_s3.totals.cost > 0
    assert from_s3.totals == run_spend(on_disk.tenant("acme_corp"), q).totals
    assert (tmp_path / "dl" / "acme_corp").exists() and not list((tmp_path / "dl").glob("globex*"))
    assert remote.tenant("initech").data_status == "backfill_pending"


def test_concurrent_misses_for_one_key_compute_it_once():
    cache, n = ResponseCache(), 8
    arrived, computed, everyone_in = [], [], threading.Event()

    def compute():
        computed.append(1)
        everyone_in.wait(10)  # without single-flight, every caller would be in here by the time this returns
        return object()

    def ask(_):
        arrived.append(1)
        if len(arrived) == n:
            everyone_in.set()
        return cache.get_or_compute("spend", compute)

    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(ask, range(n)))
    assert len(computed) == 1 and all(r is results[0] for r in results)


def test_a_failed_computation_is_not_cached():
    cache = ResponseCache()

    def failing():
        raise RuntimeError("mart unreadable")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("spend", failing)
    assert cache.get_or_compute("spend", lambda: 42) == 42 and cache.peek("spend") == 42
