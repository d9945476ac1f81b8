"""Bad input: each case raises its own error naming the file (row/column where it applies) and the fix,
and the lake keeps exactly what it had."""

import gzip
import hashlib
import json
import shutil

import polars as pl
import pytest

from blocks_pipelines.ingestion import errors as E
from blocks_pipelines.ingestion.ingest import ingest_delivery
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry
from tests.synthetic.cur_frames import (
    cur1_frame,
    cur2_frame,
    write_export_delivery,
    write_legacy_delivery,
)

ACCOUNTS = ["111111111112"]


@pytest.fixture
def acme_with_lake(blocks_env, tmp_path):
    """acme_corp with October already in the lake; returns (tenant, snapshot function)."""
    acme = {t.id: t for t in load_registry(get_settings().tenants_dir)}["acme_corp"]
    good = tmp_path / "good.csv"
    cur1_frame(400, "2026-10", "111111111111", ACCOUNTS).write_csv(good)
    ingest_delivery(acme, str(good))
    lake = blocks_env / "lake"

    def snapshot():
        files = [p for p in lake.rglob("*") if p.is_file()]
        return {str(p.relative_to(lake)): hashlib.sha1(p.read_bytes()).hexdigest() for p in files}

    return acme, snapshot


def _bad_csv(tmp_path, name="bad.csv", mutate=None, n=400):
    df = cur1_frame(n, "2026-10", "111111111111", ACCOUNTS)
    if mutate is not None:
        df = mutate(df)
    path = tmp_path / name
    df.write_csv(path)
    return path


def _set(col, row, value):
    return lambda df: df.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(col)).alias(col)
    )


def _expect(acme_with_lake, path, error, *needles):
    acme, snapshot = acme_with_lake
    before = snapshot()
    with pytest.raises(error) as info:
        ingest_delivery(acme, str(path))
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, msg
    assert "Fix:" in msg
    assert snapshot() == before, "the lake changed after bad input"
    return info.value


def test_missing_required_column(acme_with_lake, tmp_path):
    path = _bad_csv(tmp_path, mutate=lambda df: df.drop("lineItem/UnblendedCost"))
    err = _expect(acme_with_lake, path, E.MissingColumnError, str(path), "lineItem/UnblendedCost")
    assert err.column == "lineItem/UnblendedCost"


def test_unparseable_timestamp_names_row_and_column(acme_with_lake, tmp_path):
    path = _bad_csv(tmp_path, mutate=_set("lineItem/UsageStartDate", 41, "yesterday-ish"))
    err = _expect(acme_with_lake, path, E.ParseError, str(path), "row 42", "lineItem/UsageStartDate", "yesterday-ish")
    assert err.row == 42


def test_unparseable_number_names_row_and_column(acme_with_lake, tmp_path):
    path = _bad_csv(tmp_path, mutate=_set("savingsPlan/SavingsPlanEffectiveCost", 13, "1,5O"))
    _expect(acme_with_lake, path, E.ParseError, "row 14", "savingsPlan/SavingsPlanEffectiveCost", "1,5O")


def test_corrupt_parquet(acme_with_lake, tmp_path):
    good = tmp_path / "x.parquet"
    cur2_frame(300, "2026-10", "111111111111", ACCOUNTS).write_parquet(good)
    data = good.read_bytes()
    bad = tmp_path / "corrupt.parquet"
    bad.write_bytes(data[: len(data) // 2] + data[-64:])
    _expect(acme_with_lake, bad, E.CorruptFileError, str(bad))


def test_truncated_gzip(acme_with_lake, tmp_path):
    plain = _bad_csv(tmp_path)
    packed = gzip.compress(plain.read_bytes())
    bad = tmp_path / "cut.csv.gz"
    bad.write_bytes(packed[: len(packed) * 2 // 3])
    plain.unlink()
    _expect(acme_with_lake, bad, E.CorruptFileError, str(bad), "truncated")


def test_empty_file(acme_with_lake, tmp_path):
    bad = tmp_path / "empty.csv"
    bad.write_bytes(b"")
    _expect(acme_with_lake, bad, E.EmptyFileError, str(bad))


def test_manifest_listing_a_missing_file(acme_with_lake, tmp_path):
    root = tmp_path / "src"
    write_export_delivery(
        str(root),
        "acme-export",
        [cur2_frame(100, "2026-10", "111111111111", ACCOUNTS)] * 2,
        "2026-10",
        tmp_path / "w",
        execution_id="exec-1",
    )
    victim = next(root.rglob("*-00002.snappy.parquet"))
    victim.unlink()
    manifest = next(root.rglob("*-Manifest.json"))
    _expect(acme_with_lake, manifest, E.MissingFileError, str(manifest), victim.name)


@pytest.mark.parametrize("layout", ["flat", "synced", "legacy-synced", "legacy-prefix-repeats-name"])
def test_a_delivery_copied_without_awss_folder_names_is_read(acme_with_lake, tmp_path, layout):
    """A delivery copied into one folder (flat: manifest beside its data) or synced under another folder name
    ingests the files its manifest lists; a listed file that is nowhere still fails naming it."""
    root = tmp_path / "src"
    if layout.startswith("legacy"):
        # the writer's keys are cur/<report>/...: a report named "cur" gives keys cur/cur/<period>/...
        report = "cur" if layout == "legacy-prefix-repeats-name" else "acme-cur"
        frames = [cur1_frame(100, "2026-10", "111111111111", ACCOUNTS, offset=i * 100) for i in range(2)]
        delivery_id = write_legacy_delivery(str(root), report, frames, "2026-10", tmp_path / "w")
    else:
        frames = [cur2_frame(100, "2026-10", "111111111111", ACCOUNTS, offset=i * 100) for i in range(2)]
        delivery_id = write_export_delivery(str(root), "acme-export", frames, "2026-10", tmp_path / "w")
        report = "acme-export"
    if layout == "flat":
        copy = tmp_path / "flat"
        copy.mkdir()
        for f in root.rglob("*.*"):
            shutil.copy(f, copy / f.name)
    else:  # `aws s3 sync s3://bucket/prefix/<report>/ ./my-cur/`
        copy = tmp_path / "my-cur"
        shutil.copytree(root / report, copy)
    summary = ingest_delivery(acme_with_lake[0], str(copy))
    assert summary.rows == 200 and summary.matches
    assert summary.deliveries[0]["delivery_id"] == delivery_id
    victim = sorted(copy.rglob(f"{report}-*2.*"))[0]
    victim.unlink()
    _expect(acme_with_lake, copy, E.MissingFileError, victim.name)


def test_mixed_currencies(acme_with_lake, tmp_path):
    path = _bad_csv(tmp_path, mutate=_set("lineItem/CurrencyCode", 7, "EUR"))
    _expect(acme_with_lake, path, E.MixedCurrencyError, str(path), "EUR", "row 8")


def test_unknown_line_item_type(acme_with_lake, tmp_path):
    path = _bad_csv(tmp_path, mutate=_set("lineItem/LineItemType", 99, "QuantumDiscount"))
    _expect(
        acme_with_lake,
        path,
        E.UnknownLineItemTypeError,
        str(path),
        "QuantumDiscount",
        "row 100",
        "lineItem/LineItemType",
    )


def test_wrong_tenants_payer_account(acme_with_lake, tmp_path):
    df = cur1_frame(200, "2026-10", "222222222222", ACCOUNTS)
    path = tmp_path / "globex.csv"
    df.write_csv(path)
    _expect(acme_with_lake, path, E.WrongPayerError, str(path), "222222222222", "acme_corp", "bill/PayerAccountId")


def test_blank_required_value(acme_with_lake, tmp_path):
    path = _bad_csv(tmp_path, mutate=_set("lineItem/UsageAccountId", 5, None))
    _expect(acme_with_lake, path, E.ParseError, "row 6", "usage_account_id")


def test_errors_are_value_errors_with_fields(tmp_path):
    err = E.ParseError("not a number: 'x'", file="f.csv", row=3, column="c", fix="fix it")
    assert isinstance(err, E.IngestError) and isinstance(err, ValueError)
    assert str(err) == "file f.csv, row 3, column 'c': not a number: 'x'. Fix: fix it"
    assert json.dumps({"file": err.file, "row": err.row})
