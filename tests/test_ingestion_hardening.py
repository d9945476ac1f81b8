"""Crafted input: manifests naming files outside their report, two formats in one folder, numbers that are not,
inverted intervals, duplicated headers, oversized tags and lines, partial months, and scratch folders left by killed
runs. Each refusal names the file (row, column) and the fix, and the lake keeps exactly what it had."""

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import boto3
import polars as pl
import pytest

from blocks_pipelines.ingestion import errors as E
from blocks_pipelines.ingestion import guards, workdirs
from blocks_pipelines.ingestion.ingest import ingest_delivery
from blocks_pipelines.lake import fs
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry
from tests.synthetic.cur_frames import cur1_frame, cur2_frame, write_export_delivery, write_legacy_delivery

ACCOUNTS = ["111111111112"]
PAYER = "111111111111"


@pytest.fixture
def acme(blocks_env, tmp_path):
    """acme_corp with the whole of October already in the lake; returns (tenant, snapshot of the lake)."""
    tenant = {t.id: t for t in load_registry(get_settings().tenants_dir)}["acme_corp"]
    good = tmp_path / "good.csv"
    cur1_frame(800, "2026-10", PAYER, ACCOUNTS).write_csv(good)
    ingest_delivery(tenant, str(good))
    lake = blocks_env / "lake"

    def snapshot():
        return {
            str(p.relative_to(lake)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(lake.rglob("*"))
            if p.is_file()
        }

    return tenant, snapshot


def _refused(acme, source, error, *needles, **kw):
    tenant, snapshot = acme
    before = snapshot()
    with pytest.raises(error) as info:
        ingest_delivery(tenant, str(source), **kw)
    msg = str(info.value)
    for needle in needles:
        assert needle in msg, msg
    assert "Fix:" in msg
    assert snapshot() == before, "the lake changed after a refused input"
    return info.value


# 3. manifest keys are confined to the report


def _legacy_manifest(tmp_path, keys=None, **changes) -> Path:
    root = tmp_path / "src"
    assembly = write_legacy_delivery(
        str(root), "acme-cur-hourly", [cur1_frame(50, "2026-10", PAYER, ACCOUNTS)], "2026-10", tmp_path / "w"
    )
    manifest = next(root.rglob(f"{assembly}/acme-cur-hourly-Manifest.json"))
    doc = json.loads(manifest.read_text())
    if keys is not None:
        doc["reportKeys"] = keys
    doc.update(changes)
    manifest.write_text(json.dumps(doc))
    return manifest


@pytest.mark.parametrize(
    "key, problem",
    [
        ("cur/acme-cur-hourly/20261001-20261101/../../../../../../etc/passwd", "climbs out of its folder"),
        ("cur/acme-cur-hourly/./20261001-20261101/x.csv", "climbs out of its folder"),
        ("/etc/passwd", "is an absolute path"),
        ("file:///etc/passwd", "is an absolute path"),
        ("cur/other-report/20261001-20261101/a/other-report-1.csv.gz", "outside the report's prefix"),
        ("acme-cur-hourly", "outside the report's prefix"),
        ("cur\\acme-cur-hourly\\..\\..\\x.csv", "backslash"),
    ],
)
def test_a_manifest_key_outside_its_report_is_refused_naming_manifest_and_key(acme, tmp_path, key, problem):
    manifest = _legacy_manifest(tmp_path, keys=[key])
    err = _refused(acme, manifest, E.UnsafeManifestKeyError, str(manifest), repr(key), problem)
    assert err.column == "reportKeys"


def test_an_s3_manifest_key_climbing_out_is_refused_before_any_read(acme, aws_env, tmp_path):
    s3 = boto3.client("s3", endpoint_url=aws_env)
    s3.create_bucket(Bucket="hostile-src")
    root = "s3://hostile-src/exports"
    write_export_delivery(root, "acme-export", [cur2_frame(50, "2026-10", PAYER, ACCOUNTS)], "2026-10", tmp_path)
    manifest = "s3://hostile-src/exports/acme-export/metadata/BILLING_PERIOD=2026-10/acme-export-Manifest.json"
    doc = json.loads(fs.read_bytes(manifest))
    doc["dataFiles"] = ["s3://hostile-src/exports/acme-export/data/../../../secrets/other-tenant.parquet"]
    fs.write_bytes(manifest, json.dumps(doc).encode())
    err = _refused(acme, manifest, E.UnsafeManifestKeyError, manifest, "climbs out")
    assert err.column == "dataFiles"


@pytest.mark.parametrize(
    "body, needle",
    [
        ("[1, 2]", "manifest is a JSON list, not an object"),
        ('"just text"', "manifest is a JSON str"),
    ],
)
def test_a_manifest_that_is_not_a_json_object_is_refused(acme, tmp_path, body, needle):
    manifest = tmp_path / "m" / "acme-cur-hourly-Manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(body)
    _refused(acme, manifest, E.CorruptFileError, str(manifest), needle)


@pytest.mark.parametrize("period", [{"start": "garbage", "end": "x"}, "2026-10", {"start": 20261001}, {"end": "x"}])
def test_a_manifest_with_an_unparseable_billing_period_is_refused(acme, tmp_path, period):
    manifest = _legacy_manifest(tmp_path, billingPeriod=period)
    err = _refused(acme, manifest, E.CorruptFileError, str(manifest), "is not a billing period")
    assert err.column == "billingPeriod"


def test_a_manifest_whose_keys_are_not_a_list_is_refused(acme, tmp_path):
    manifest = _legacy_manifest(tmp_path, reportKeys="cur/acme-cur-hourly/x.csv")
    _refused(acme, manifest, E.CorruptFileError, "reportKeys must be a list of object keys")


# 4. two formats in one folder without a manifest


def test_a_folder_with_legacy_csv_and_cur2_parquet_and_no_manifest_is_refused(acme, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    cur1_frame(800, "2026-10", PAYER, ACCOUNTS, offset=5).write_csv(folder / "legacy.csv")
    cur2_frame(800, "2026-10", PAYER, ACCOUNTS, offset=9).write_parquet(folder / "cur2.parquet")
    _refused(
        acme,
        folder,
        E.AmbiguousSourceError,
        "files of 2 formats in one delivery",
        "cur1",
        "cur2",
        "legacy.csv",
        "cur2.parquet",
    )


# 5. values that are not what they claim


def _csv(tmp_path, mutate, name="bad.csv", n=800) -> Path:
    path = tmp_path / name
    mutate(cur1_frame(n, "2026-10", PAYER, ACCOUNTS)).write_csv(path)
    return path


def _set(col, row, value):
    return lambda df: df.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(col)).alias(col)
    )


@pytest.mark.parametrize("value", ["NaN", "nan", "inf", "-Infinity", "1e309", "-1e400"])
def test_a_cost_that_is_not_a_finite_number_names_file_row_and_column(acme, tmp_path, value):
    """NaN is the null marker pandas and Spark write for a missing number (issue #13), so in the required cost it
    is refused as a missing cost; infinities and overflowing literals are refused as not finite."""
    bad = _csv(tmp_path, _set("lineItem/UnblendedCost", 6, value))
    reason = "null marker" if value.lower() == "nan" else "unblended_cost is not a finite number"
    err = _refused(acme, bad, E.ParseError, str(bad), reason, repr(value))
    assert (err.row, err.column) == (7, "lineItem/UnblendedCost")


def test_a_non_finite_cur2_parquet_cost_is_refused(acme, tmp_path):
    bad = tmp_path / "cur2.parquet"
    df = cur2_frame(800, "2026-10", PAYER, ACCOUNTS)
    df.with_columns(
        pl.when(pl.int_range(pl.len()) == 11)
        .then(float("inf"))
        .otherwise(pl.col("line_item_usage_amount"))
        .alias("line_item_usage_amount")
    ).write_parquet(bad)
    err = _refused(acme, bad, E.ParseError, "usage_amount is not a finite number")
    assert (err.row, err.column) == (12, "line_item_usage_amount")


def test_usage_ending_before_it_starts_is_refused(acme, tmp_path):
    bad = _csv(tmp_path, _set("lineItem/UsageEndDate", 30, "2026-10-01T00:00:00Z"))
    err = _refused(acme, bad, E.ParseError, "usage_end is before usage_start", "'2026-10-01T00:00:00Z'")
    assert (err.row, err.column) == (31, "lineItem/UsageEndDate")


def test_a_header_naming_a_column_twice_is_refused(acme, tmp_path):
    bad = tmp_path / "dup.csv"
    lines = cur1_frame(800, "2026-10", PAYER, ACCOUNTS).write_csv().splitlines()
    header = lines[0].split(",")
    header[-1] = "lineItem/UnblendedCost"
    bad.write_text("\n".join([",".join(header), *lines[1:]]) + "\n")
    err = _refused(
        acme, bad, E.DuplicateColumnError, "'lineItem/UnblendedCost' appears more than once", f"column {len(header)}"
    )
    assert err.column == "lineItem/UnblendedCost"


def test_a_parquet_file_naming_a_column_twice_is_refused(acme, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = cur2_frame(800, "2026-10", PAYER, ACCOUNTS).to_arrow()
    names = table.column_names
    table = table.rename_columns([*names[:-1], "line_item_unblended_cost"])
    bad = tmp_path / "dup.parquet"
    pq.write_table(pa.table(table.columns, names=table.column_names), bad)
    _refused(acme, bad, E.DuplicateColumnError, str(bad), "more than once")


def test_a_tag_value_over_the_bound_is_refused_naming_its_column(acme, tmp_path):
    huge = "x" * (guards.MAX_TAGS_BYTES + 1)
    bad = _csv(tmp_path, _set("resourceTags/user:env", 3, huge))
    err = _refused(acme, bad, E.OversizedInputError, "tags is over the 256 KiB bound", f"({len(huge)} characters)")
    assert (err.row, err.column) == (4, "resourceTags/user:env")
    assert len(str(err)) < 1000  # the value is cut in the message, not printed whole


def test_a_tag_value_within_the_bound_is_kept_whole(acme, tmp_path):
    from blocks_pipelines.lake import months

    long_value = "v" * 20_000  # far above AWS's 256 characters, well inside the bound
    src = _csv(tmp_path, _set("resourceTags/user:env", 3, long_value), name="long.csv")
    ingest_delivery(acme[0], str(src))
    lake = pl.read_parquet(months.current_files(get_settings().lake_uri, "acme_corp"), hive_partitioning=False)
    assert lake["tags"].str.contains(long_value).sum() == 1


@pytest.mark.parametrize("suffix", ["csv", "csv.gz"])
def test_one_huge_line_is_refused_with_its_line_number_in_bounded_memory(acme, tmp_path, suffix):
    """A 40 MB line: refused naming its line (a plain CSV before it is parsed, a .csv.gz once the odd row it parses
    into fails validation) by a streaming pass that never holds the line: the peak RSS of a process doing the
    check stays far below the line's size."""
    lines = cur1_frame(800, "2026-10", PAYER, ACCOUNTS).write_csv().splitlines()
    body = "\n".join([*lines[:5], "a" * (40 << 20), *lines[5:]]) + "\n"
    bad = tmp_path / f"huge.{suffix}"
    bad.write_bytes(gzip.compress(body.encode(), 1) if suffix.endswith("gz") else body.encode())
    err = _refused(acme, bad, E.OversizedInputError, "line 6 is over 1 MiB without a line break", str(bad))
    assert err.row == 5
    setup = "import resource, sys; from pathlib import Path; from blocks_pipelines.ingestion import guards\n"
    check = (
        "try:\n    guards.check_line_lengths(Path(sys.argv[1]), 'x', sys.argv[1].endswith('.gz'))\n"
        "except guards.E.OversizedInputError:\n    print('refused')\n"
    )
    peak = "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    base = subprocess.run([sys.executable, "-c", setup + peak], capture_output=True, text=True, check=True, env=env)
    run = subprocess.run(
        [sys.executable, "-c", setup + check + peak, str(bad)], capture_output=True, text=True, check=True, env=env
    )
    name, peak_kb = run.stdout.split()
    assert name == "refused"
    assert int(peak_kb) - int(base.stdout) < 16 << 10  # < 16 MB above the import baseline, for a 40 MB line


def test_line_length_bound_counts_lines_across_chunks(tmp_path):
    ok = tmp_path / "ok.csv"
    ok.write_bytes(b"h\n" + (b"x" * (guards.MAX_LINE_BYTES - 10) + b"\n") * 3)  # long lines straddling chunks
    guards.check_line_lengths(ok, "ok.csv", gzipped=False)
    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(gzip.compress(b"h\n1\n2\n") + gzip.compress(b"3\n" + b"y" * (guards.MAX_LINE_BYTES + 2)))
    with pytest.raises(E.OversizedInputError, match="line 5 is over"):
        guards.check_line_lengths(bad, "bad.csv.gz", gzipped=True)  # a second gzip member is read too


# 7. partial months


def test_a_file_covering_part_of_a_month_is_refused_while_the_lake_holds_the_rest(acme, tmp_path):
    part = tmp_path / "part.csv"
    cur1_frame(800, "2026-10", PAYER, ACCOUNTS).filter(pl.col("lineItem/UsageStartDate") < "2026-10-10").write_csv(part)
    _refused(
        acme,
        part,
        E.PartialMonthError,
        "cover 2026-10-01 to 2026-10-09 of billing month 2026-10",
        "deletes the lake's",
        "--partial-month",
    )
    summary = ingest_delivery(acme[0], str(part), partial_month=True)
    assert summary.partial_months == [
        {"billing_period": "2026-10", "first_day": "2026-10-01", "last_day": "2026-10-09", "manifest": None}
    ]
    from blocks_pipelines.lake import months

    current, _ = months.read_month(get_settings().lake_uri, "acme_corp", "2026-10")
    assert max(f.usage_date for f in current.files).isoformat() == "2026-10-09"  # the whole month replaced


def test_a_manifest_vouches_for_its_month_so_far_and_the_summary_says_it_is_partial(acme, tmp_path):
    root = tmp_path / "src"
    frame = cur1_frame(800, "2026-10", PAYER, ACCOUNTS).filter(pl.col("lineItem/UsageStartDate") < "2026-10-20")
    assembly = write_legacy_delivery(str(root), "acme-cur-hourly", [frame], "2026-10", tmp_path / "w")
    manifest = next(root.rglob(f"{assembly}/acme-cur-hourly-Manifest.json"))
    summary = ingest_delivery(acme[0], str(manifest))
    assert summary.partial_months == [
        {"billing_period": "2026-10", "first_day": "2026-10-01", "last_day": "2026-10-19", "manifest": str(manifest)}
    ]
    assert summary.to_dict()["partial_months"] == summary.partial_months


def test_the_cli_takes_partial_month(acme, tmp_path):
    from click.testing import CliRunner

    from blocks_pipelines.cli.main import main as cli

    part = tmp_path / "part.csv"
    cur1_frame(800, "2026-10", PAYER, ACCOUNTS).filter(pl.col("lineItem/UsageStartDate") < "2026-10-10").write_csv(part)
    refused = CliRunner().invoke(cli, ["ingest", str(part), "--tenant", "acme_corp"])
    assert refused.exit_code != 0 and "--partial-month" in refused.output
    done = CliRunner().invoke(cli, ["ingest", str(part), "--tenant", "acme_corp", "--partial-month"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output[done.output.index("{") :])["partial_months"][0]["last_day"] == "2026-10-09"


# 6. scratch folders


def test_scratch_folders_are_removed_on_failure_and_a_killed_runs_are_swept(acme, tmp_path, monkeypatch):
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    bad = _csv(tmp_path, _set("lineItem/UnblendedCost", 2, "inf"))
    _refused(acme, bad, E.ParseError, "not a finite number")
    assert list(base.iterdir()) == []  # the failed run's staging is gone

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = base / f"blocks-ingest-{dead.stdout.strip()}-abc123"  # what a SIGKILLed run leaves
    (left / "d0" / "staged").mkdir(parents=True)
    (left / "d0" / "staged" / "x.parquet").write_bytes(b"partial")
    live = base / f"blocks-ingest-{os.getppid()}-live01"  # a running process's folder is never touched
    live.mkdir()
    other = base / "not-ours"
    other.mkdir()
    good = tmp_path / "good2.csv"
    cur1_frame(800, "2026-10", PAYER, ACCOUNTS, offset=3).write_csv(good)
    ingest_delivery(acme[0], str(good))
    assert sorted(p.name for p in base.iterdir()) == sorted([live.name, other.name])
    assert workdirs.sweep_stale(base) == []
