"""The lake checks behind the blocking asset checks catch duplication and schema drift (they do not just pass)."""

from datetime import datetime, timezone

import polars as pl

from blocks_pipelines.ingestion.ingest import ingest_delivery
from blocks_pipelines.ingestion.lake_checks import check_no_duplicates, check_schema
from blocks_pipelines.ingestion.lake_writer import Slice
from blocks_pipelines.lake import months
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry
from tests.synthetic.cur_frames import cur1_frame

OCT = Slice(
    datetime(2026, 10, 1, tzinfo=timezone.utc), datetime(2026, 11, 1, tzinfo=timezone.utc), frozenset({"2026-10"})
)


def _ingest(blocks_env, tmp_path, rows=240):
    acme = {t.id: t for t in load_registry(get_settings().tenants_dir)}["acme_corp"]
    path = tmp_path / "oct.csv"
    cur1_frame(rows, "2026-10", "111111111111", ["111111111112"]).write_csv(path)
    return ingest_delivery(acme, str(path))


def test_checks_pass_on_a_clean_ingest(blocks_env, tmp_path):
    summary = _ingest(blocks_env, tmp_path)
    lake = get_settings().lake_uri
    assert check_no_duplicates(lake, "acme_corp", OCT, {"2026-10": summary.rows}, tmp_path / "c1").passed
    assert check_schema(lake, "acme_corp", OCT, tmp_path / "c2").passed


def test_a_second_delivery_in_the_month_fails_the_duplicate_check(blocks_env, tmp_path):
    summary = _ingest(blocks_env, tmp_path)
    lake = get_settings().lake_uri
    day = months.current_files(lake, "acme_corp", days={datetime(2026, 10, 2).date()})[0]
    df = pl.read_parquet(day)
    pl.concat([df, df.with_columns(pl.lit("other-delivery").alias("delivery_id"))]).write_parquet(day)
    out = check_no_duplicates(lake, "acme_corp", OCT, {"2026-10": summary.rows}, tmp_path / "c")
    assert not out.passed
    assert "2 deliveries" in out.description and "rows in the lake" in out.description


def test_schema_drift_fails_the_schema_check(blocks_env, tmp_path):
    _ingest(blocks_env, tmp_path)
    lake = get_settings().lake_uri
    day = months.current_files(lake, "acme_corp", days={datetime(2026, 10, 3).date()})[0]
    pl.read_parquet(day).with_columns(pl.col("unblended_cost").cast(pl.String)).write_parquet(day)
    out = check_schema(lake, "acme_corp", OCT, tmp_path / "c")
    assert not out.passed and "usage_date=2026-10-03" in out.description
