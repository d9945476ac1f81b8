"""A billing month is replaced whole: crash injection mid-publish, garbage collection, dbt's and Athena's view of the
lake, one writer per (tenant, month) and delivery order (local and S3 on moto)."""

import json
import threading
from datetime import date, datetime, timezone
from pathlib import Path

import boto3
import duckdb
import jinja2
import polars as pl
import pytest
import yaml

from blocks_pipelines.ingestion import lake_writer
from blocks_pipelines.ingestion.errors import CorruptFileError
from blocks_pipelines.ingestion.ingest import ingest_delivery
from blocks_pipelines.ingestion.lake_writer import ConcurrentWriteError, StaleDeliveryError
from blocks_pipelines.lake import fs, layout, lease, months
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry
from tests.synthetic.cur_frames import cur1_frame, write_legacy_delivery

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs, crash-injected processes or moto S3/SQS

ACCOUNTS = ["111111111112", "111111111113"]
SOURCES_YML = Path(__file__).resolve().parents[1] / "dbt_project" / "models" / "staging" / "_sources.yml"
OCT = "2026-10"


class Crash(RuntimeError):
    """The injected failure: the process dies here."""


@pytest.fixture
def acme(blocks_env):
    return {t.id: t for t in load_registry(get_settings().tenants_dir)}["acme_corp"]


def _delivery(root: str, tmp: Path, rows: int, offset: int = 0) -> tuple[str, float]:
    frame = cur1_frame(rows, OCT, "111111111111", ACCOUNTS, offset=offset)
    assembly = write_legacy_delivery(root, "acme-cur-hourly", [frame], OCT, tmp)
    manifest = fs.join(root, "acme-cur-hourly", "20261001-20261101", assembly, "acme-cur-hourly-Manifest.json")
    return manifest, round(frame["lineItem/UnblendedCost"].cast(pl.Float64).sum(), 6)


def _visible(lake: str, tenant_id: str = "acme_corp") -> tuple[int, float]:
    """What the lake checks and tests read: the files the month pointers name."""
    readback = Path(get_settings().home) / "readback"
    files = [fs.fetch_to_local(u, readback) for u in months.current_files(lake, tenant_id)]
    df = pl.read_parquet(files, hive_partitioning=False) if files else pl.DataFrame({"unblended_cost": []})
    return df.height, round(float(df["unblended_cost"].sum()), 6)


def _dbt_source_sql(lake: str, tenant_id: str = "acme_corp") -> str:
    """The FROM clause dbt-duckdb renders for source('lake', 'cur_line_items'), from _sources.yml itself, with the
    vars the runner passes."""
    from blocks_pipelines.models.vars import dbt_vars
    from blocks_pipelines.tenants.config import resolve_tenant

    [table] = yaml.safe_load(SOURCES_YML.read_text())["sources"][0]["tables"]
    vars_ = dbt_vars(resolve_tenant(tenant_id))
    return jinja2.Template(table["config"]["external_location"]).render(var=lambda k, d=None: vars_.get(k, d))


def _dbt_view(lake: str) -> tuple[int, float]:
    [(rows, cost)] = duckdb.sql(f"select count(*), sum(unblended_cost) from {_dbt_source_sql(lake)}").fetchall()
    return rows, round(cost, 6)


def _crash_after(monkeypatch, k: int) -> None:
    """Day files are published through fs.put_file: the (k+1)-th publish dies."""
    real, calls = fs.put_file, []

    def put_file(local, uri):
        if len(calls) == k:
            raise Crash(f"killed after {k} day files")
        calls.append(uri)
        real(local, uri)

    monkeypatch.setattr(lake_writer.fs, "put_file", put_file)


@pytest.mark.parametrize("k", [1, 15, 30])
def test_a_crash_after_k_of_31_day_files_leaves_exactly_the_old_month_and_a_rerun_the_new(
    acme, tmp_path, monkeypatch, k
):
    lake = get_settings().lake_uri
    root = str(tmp_path / "src")
    old_manifest, old_cost = _delivery(root, tmp_path / "a", 3000)
    new_manifest, new_cost = _delivery(root, tmp_path / "b", 2900, offset=17)
    assert old_cost != new_cost
    ingest_delivery(acme, old_manifest)
    old_month, _ = months.read_month(lake, "acme_corp", OCT)
    assert _visible(lake) == _dbt_view(lake) == (3000, old_cost)

    with monkeypatch.context() as m:
        _crash_after(m, k)
        with pytest.raises(Crash):
            ingest_delivery(acme, new_manifest)
    # the crashed write's k files exist, but no reader sees them: the pointer still names the old version
    month_dir = Path(layout.line_items_month_prefix(lake, "acme_corp", OCT))
    assert len(list(month_dir.glob("version=*/usage_date=*/data.parquet"))) == 31 + k
    assert months.read_month(lake, "acme_corp", OCT)[0] == old_month
    assert _visible(lake) == _dbt_view(lake) == (3000, old_cost)

    summary = ingest_delivery(acme, new_manifest)
    assert summary.matches
    assert _visible(lake) == _dbt_view(lake) == (2900, new_cost)
    # the old version and the crashed write's files are gone: only the current version's 31 files remain
    current, _ = months.read_month(lake, "acme_corp", OCT)
    on_disk = sorted(str(p) for p in month_dir.rglob("*") if p.is_file() and p.name != layout.LEASE)
    expected = sorted(current.uris(lake) + [layout.line_items_pointer_uri(lake, "acme_corp", OCT)])
    assert on_disk == expected and len(current.files) == 31
    assert current.delivery_id != old_month.delivery_id and current.version != old_month.version


def test_a_crash_on_s3_leaves_the_old_month_and_athena_manifest_and_a_rerun_swaps_both(
    acme, aws_env, tmp_path, monkeypatch
):
    s3 = boto3.client("s3", endpoint_url=aws_env)
    s3.create_bucket(Bucket="months-lake")
    lake = "s3://months-lake/lake"
    root = str(tmp_path / "src")
    old_manifest, old_cost = _delivery(root, tmp_path / "a", 1500)
    new_manifest, new_cost = _delivery(root, tmp_path / "b", 1400, offset=5)
    ingest_delivery(acme, old_manifest, lake_uri=lake)
    symlink = layout.athena_symlink_uri(lake, "acme_corp", OCT)
    athena_before = fs.read_bytes(symlink)
    with monkeypatch.context() as m:
        _crash_after(m, 15)
        with pytest.raises(Crash):
            ingest_delivery(acme, new_manifest, lake_uri=lake)
    assert _visible(lake) == (1500, old_cost)
    assert fs.read_bytes(symlink) == athena_before  # Athena still reads the old month's 31 files

    ingest_delivery(acme, new_manifest, lake_uri=lake)
    assert _visible(lake) == (1400, new_cost)
    current, _ = months.read_month(lake, "acme_corp", OCT)
    assert sorted(fs.read_bytes(symlink).decode().split()) == sorted(current.uris(lake))
    listed = s3.list_objects_v2(Bucket="months-lake", Prefix="lake/")["Contents"]
    keys = {f"s3://months-lake/{o['Key']}" for o in listed}
    assert keys == set(current.uris(lake)) | {layout.line_items_pointer_uri(lake, "acme_corp", OCT), symlink}


@pytest.mark.parametrize("lake_kind", ["local", "s3"])
def test_an_untouched_day_is_carried_into_the_new_version_so_a_month_is_one_folder(acme, tmp_path, lake_kind, request):
    """A write of a few hours rewrites those days; the month's other days are linked (locally) or copied server
    side (S3) into the new version, and the old version is collected."""
    if lake_kind == "s3":
        request.getfixturevalue("aws_env")
        boto3.client("s3", endpoint_url=get_settings().s3_endpoint_url).create_bucket(Bucket="carry-lake")
        lake = "s3://carry-lake/lake"
    else:
        lake = get_settings().lake_uri
    manifest, cost = _delivery(str(tmp_path / "src"), tmp_path / "a", 3000)
    ingest_delivery(acme, manifest, lake_uri=lake)
    before, _ = months.read_month(lake, "acme_corp", OCT)
    hours = (datetime(2026, 10, 5, tzinfo=timezone.utc), datetime(2026, 10, 6, tzinfo=timezone.utc))
    ingest_delivery(acme, manifest, lake_uri=lake, hour_range=hours)
    after, _ = months.read_month(lake, "acme_corp", OCT)
    assert after.version != before.version
    assert {f.name.split("/")[0] for f in after.files} == {f"version={after.version}"}
    assert [(f.usage_date, f.rows) for f in after.files] == [(f.usage_date, f.rows) for f in before.files]
    assert not any(fs.exists(u) for u in before.uris(lake))
    assert _visible(lake) == (3000, cost)
    if lake_kind == "local":
        assert _dbt_view(lake) == (3000, cost)


def test_a_month_pointer_that_is_not_json_is_reported_naming_it(acme, tmp_path):
    lake = get_settings().lake_uri
    manifest, _ = _delivery(str(tmp_path / "src"), tmp_path / "a", 300)
    ingest_delivery(acme, manifest)
    Path(layout.line_items_pointer_uri(lake, "acme_corp", OCT)).write_text("{half a pointer")
    with pytest.raises(months.CorruptPointerError, match=r"billing_period=2026-10/_current.json: month pointer"):
        months.current_files(lake, "acme_corp")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d["files"][0].update(name="../../../tenant_id=globex/billing_period=2026-10/x/data.parquet"),
        lambda d: d["files"][0].update(name="version=other/usage_date=2026-10-01/data.parquet"),
        lambda d: d.update(version="../x"),
        lambda d: d.update(tenant_id="globex"),
    ],
)
def test_a_pointer_naming_files_outside_its_month_version_is_refused(acme, tmp_path, tamper):
    lake = get_settings().lake_uri
    manifest, _ = _delivery(str(tmp_path / "src"), tmp_path / "a", 300)
    ingest_delivery(acme, manifest)
    pointer = Path(layout.line_items_pointer_uri(lake, "acme_corp", OCT))
    doc = json.loads(pointer.read_text())
    tamper(doc)
    pointer.write_text(json.dumps(doc))
    with pytest.raises(months.CorruptPointerError, match="billing_period=2026-10/_current.json"):
        months.current_files(lake, "acme_corp")
    with pytest.raises(CorruptFileError, match="month pointer unreadable|not acme_corp's"):
        ingest_delivery(acme, manifest)  # a write refuses too, rather than sweeping by a pointer it cannot trust


# One writer per (tenant, billing month), and delivery order.


def _hold_commit(monkeypatch, holder_thread: str, entered: threading.Event, release: threading.Event) -> None:
    """The writer running in holder_thread stops just before its pointer swap, holding the month's lease."""
    real = months.commit_month

    def commit_month(*a, **kw):
        if threading.current_thread().name == holder_thread:
            entered.set()
            assert release.wait(60)
        return real(*a, **kw)

    monkeypatch.setattr(lake_writer.months, "commit_month", commit_month)


def _run(name: str, fn, out: dict) -> threading.Thread:
    def target():
        try:
            out[name] = fn()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each writer ended with
            out[name] = exc

    t = threading.Thread(target=target, name=name)
    t.start()
    return t


@pytest.mark.parametrize("lake_kind", ["local", "s3"])
def test_two_concurrent_ingests_of_a_month_end_with_the_newer_delivery_and_one_refusal(
    acme, tmp_path, monkeypatch, lake_kind, request
):
    """The newer delivery's writer holds the month; the older one, arriving meanwhile, waits for the lease and is
    then refused as older than what the lake holds."""
    if lake_kind == "s3":
        request.getfixturevalue("aws_env")
        boto3.client("s3", endpoint_url=get_settings().s3_endpoint_url).create_bucket(Bucket="race-lake")
        lake = "s3://race-lake/lake"
    else:
        lake = get_settings().lake_uri
    root = str(tmp_path / "src")
    older, _ = _delivery(root, tmp_path / "a", 1200)
    newer, newer_cost = _delivery(root, tmp_path / "b", 1100, offset=3)
    entered, release, older_at_lease, out = threading.Event(), threading.Event(), threading.Event(), {}
    _hold_commit(monkeypatch, "newer", entered, release)
    real_lease = lake_writer.month_lease

    def month_lease(*a, **kw):
        if threading.current_thread().name == "older":
            older_at_lease.set()
        return real_lease(*a, **kw)

    monkeypatch.setattr(lake_writer, "month_lease", month_lease)
    t_new = _run("newer", lambda: ingest_delivery(acme, newer, lake_uri=lake), out)
    assert entered.wait(60)
    t_old = _run("older", lambda: ingest_delivery(acme, older, lake_uri=lake), out)
    assert older_at_lease.wait(60)
    t_old.join(1.0)
    assert t_old.is_alive()  # serialized behind the lease, not writing beside the newer one
    release.set()
    t_new.join(60)
    t_old.join(60)
    assert out["newer"].matches
    assert isinstance(out["older"], StaleDeliveryError)
    assert "before delivery" in str(out["older"]) and older in str(out["older"])
    assert _visible(lake) == (1100, newer_cost)


def test_an_older_delivery_never_overwrites_a_newer_one_and_a_rerun_of_the_same_is_fine(acme, tmp_path):
    lake = get_settings().lake_uri
    root = str(tmp_path / "src")
    older, _ = _delivery(root, tmp_path / "a", 1200)
    newer, newer_cost = _delivery(root, tmp_path / "b", 1100, offset=3)
    ingest_delivery(acme, newer)
    pointer_before = Path(layout.line_items_pointer_uri(lake, "acme_corp", OCT)).read_bytes()
    with pytest.raises(StaleDeliveryError, match="billing month 2026-10") as err:
        ingest_delivery(acme, older)
    assert err.value.file == older
    assert Path(layout.line_items_pointer_uri(lake, "acme_corp", OCT)).read_bytes() == pointer_before
    assert ingest_delivery(acme, newer).matches  # the same delivery again replaces the month with itself
    assert _visible(lake) == (1100, newer_cost)


def test_a_writer_that_waited_too_long_is_refused_naming_the_holder(acme, tmp_path, monkeypatch):
    lake = get_settings().lake_uri
    manifest, _ = _delivery(str(tmp_path / "src"), tmp_path / "a", 300)
    monkeypatch.setattr(lake_writer, "LEASE_WAIT_SECONDS", 0.3)
    with lease.month_lease(lake, "acme_corp", OCT, owner="delivery-x"):
        with pytest.raises(
            ConcurrentWriteError,
            match=r"another ingest of tenant acme_corp billing month 2026-10 "
            r"is writing it \(owner delivery-x",
        ):
            ingest_delivery(acme, manifest)
    assert months.read_month(lake, "acme_corp", OCT) == (None, None)
    assert ingest_delivery(acme, manifest).matches  # the lease is free again


def test_an_expired_s3_lease_left_by_a_killed_run_is_taken_over_and_a_live_one_is_not(blocks_env, aws_env):
    boto3.client("s3", endpoint_url=aws_env).create_bucket(Bucket="lease-lake")
    lake = "s3://lease-lake/lake"
    uri = layout.line_items_lease_uri(lake, "acme_corp", OCT)
    stale = {"owner": "killed-run", "expires_at": "2026-01-01T00:00:00+00:00"}
    fs.write_bytes(uri, json.dumps(stale).encode())
    with lease.month_lease(lake, "acme_corp", OCT, owner="me") as holder:
        assert json.loads(fs.read_bytes(uri))["owner"] == "me" == holder["owner"]
        with (
            pytest.raises(lease.LeaseHeldError, match="owner me"),
            lease.month_lease(lake, "acme_corp", OCT, owner="other", wait_seconds=0.3),
        ):
            pass
    assert not fs.exists(uri)  # released


def test_s3_pointer_swap_is_conditional(blocks_env, aws_env):
    """Two writers that read the same pointer: the second swap is refused by S3 itself (If-Match)."""
    boto3.client("s3", endpoint_url=aws_env).create_bucket(Bucket="cas-lake")
    lake = "s3://cas-lake/lake"
    day = months.MonthFile("version=v1/usage_date=2026-10-01/data.parquet", date(2026, 10, 1), 1)
    first = months.MonthVersion("acme_corp", OCT, "v1", (day,))
    with pytest.raises(fs.ConditionFailed):
        months.commit_month(lake, first, "not-the-tag")  # no pointer yet, and If-Match fails
    tag = months.commit_month(lake, first, None)
    with pytest.raises(fs.ConditionFailed):
        months.commit_month(lake, first, None)  # If-None-Match: the pointer exists now
    second = months.MonthVersion("acme_corp", OCT, "v2", ())
    months.commit_month(lake, second, tag)
    with pytest.raises(fs.ConditionFailed):
        months.commit_month(lake, first, tag)  # a stale tag
    assert months.read_month(lake, "acme_corp", OCT)[0].version == "v2"


def test_a_crash_after_the_swap_shows_the_new_month_and_the_rerun_collects_the_old(acme, tmp_path, monkeypatch):
    """Killed between the pointer swap and garbage collection: readers already see the new month, whole; the old
    version's files are on disk but named by no pointer, and the rerun (same delivery) deletes them."""
    lake = get_settings().lake_uri
    root = str(tmp_path / "src")
    old_manifest, _ = _delivery(root, tmp_path / "a", 3000)
    new_manifest, new_cost = _delivery(root, tmp_path / "b", 2900, offset=17)
    ingest_delivery(acme, old_manifest)
    old_month, _ = months.read_month(lake, "acme_corp", OCT)
    real_sweep, calls = months.sweep_month, []

    def sweep_month(lake_uri, tenant_id, bp, keep):
        calls.append(keep)
        if len(calls) == 2:  # the sweep after the swap
            raise Crash("killed before garbage collection")
        return real_sweep(lake_uri, tenant_id, bp, keep)

    with monkeypatch.context() as m:
        m.setattr(lake_writer.months, "sweep_month", sweep_month)
        with pytest.raises(Crash):
            ingest_delivery(acme, new_manifest)
    assert _visible(lake) == _dbt_view(lake) == (2900, new_cost)
    assert all(Path(u).exists() for u in old_month.uris(lake))  # left over, invisible
    # a half-written temp file from a killed local write in the month's folder goes too
    stray = Path(layout.line_items_month_prefix(lake, "acme_corp", OCT)) / ".tmp-killed"
    stray.write_bytes(b"half")
    ingest_delivery(acme, new_manifest)
    assert not any(Path(u).exists() for u in old_month.uris(lake)) and not stray.exists()
    assert _visible(lake) == (2900, new_cost)


def test_a_crash_between_pointer_and_athena_manifest_is_repaired_by_the_rerun(acme, aws_env, tmp_path, monkeypatch):
    boto3.client("s3", endpoint_url=aws_env).create_bucket(Bucket="athena-lag")
    lake = "s3://athena-lag/lake"
    root = str(tmp_path / "src")
    old_manifest, _ = _delivery(root, tmp_path / "a", 900)
    new_manifest, new_cost = _delivery(root, tmp_path / "b", 800, offset=2)
    ingest_delivery(acme, old_manifest, lake_uri=lake)
    old_month, _ = months.read_month(lake, "acme_corp", OCT)
    symlink = layout.athena_symlink_uri(lake, "acme_corp", OCT)
    real_sync = months.sync_athena

    def sync_athena(lake_uri, month):
        if month.version != old_month.version:
            raise Crash("killed after the pointer swap, before Athena's manifest")
        real_sync(lake_uri, month)

    with monkeypatch.context() as m:
        m.setattr(months, "sync_athena", sync_athena)
        with pytest.raises(Crash):
            ingest_delivery(acme, new_manifest, lake_uri=lake)
    # Athena still reads the old month, whole: its manifest's files were not collected
    listed = fs.read_bytes(symlink).decode().split()
    assert sorted(listed) == sorted(old_month.uris(lake)) and all(fs.exists(u) for u in listed)
    ingest_delivery(acme, new_manifest, lake_uri=lake)
    current, _ = months.read_month(lake, "acme_corp", OCT)
    assert sorted(fs.read_bytes(symlink).decode().split()) == sorted(current.uris(lake))
    assert not any(fs.exists(u) for u in old_month.uris(lake))
    assert _visible(lake) == (800, new_cost)


KILLED_WRITER = """
import os, signal, sys, tempfile
tempfile.tempdir = sys.argv[3]
from blocks_pipelines.ingestion import lake_writer
from blocks_pipelines.ingestion.ingest import ingest_delivery
real, calls = lake_writer.fs.put_file, []
def put_file(local, uri):
    if len(calls) == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)  # no finally, no cleanup: what the OOM killer does
    calls.append(uri)
    real(local, uri)
lake_writer.fs.put_file = put_file
ingest_delivery("acme_corp", sys.argv[1])
"""


def test_a_sigkilled_ingest_leaves_the_old_month_a_free_lease_and_leftovers_the_rerun_sweeps(
    acme, tmp_path, monkeypatch
):
    import os
    import subprocess
    import sys
    import tempfile

    lake = get_settings().lake_uri
    root = str(tmp_path / "src")
    old_manifest, old_cost = _delivery(root, tmp_path / "a", 3000)
    new_manifest, new_cost = _delivery(root, tmp_path / "b", 2900, offset=17)
    ingest_delivery(acme, old_manifest)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, new_manifest, "12", str(scratch)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert proc.returncode == -9
    assert [p.name.split("-")[1] for p in scratch.iterdir()] == ["ingest"]  # its staging, left behind
    month_dir = Path(layout.line_items_month_prefix(lake, "acme_corp", OCT))
    assert len(list(month_dir.glob("version=*/usage_date=*/data.parquet"))) == 31 + 12
    assert _visible(lake) == _dbt_view(lake) == (3000, old_cost)

    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert ingest_delivery(acme, new_manifest).matches  # the kernel dropped the dead writer's lease
    assert list(scratch.iterdir()) == []
    assert _visible(lake) == _dbt_view(lake) == (2900, new_cost)
    assert len(list(month_dir.glob("version=*/usage_date=*/data.parquet"))) == 31


RACER = """
import sys
from blocks_pipelines.ingestion.ingest import ingest_delivery
from blocks_pipelines.ingestion.lake_writer import StaleDeliveryError
try:
    print("ok" if ingest_delivery("acme_corp", sys.argv[1]).matches else "mismatch")
except StaleDeliveryError:
    print("stale")
"""


def test_two_ingest_processes_racing_on_a_month_end_with_the_newer_delivery(acme, tmp_path):
    """No hooks: two processes started together. Whichever takes the month first, the lake ends with the newer
    delivery, whole; the older one either finished first and was replaced, or was refused."""
    import os
    import subprocess
    import sys

    lake = get_settings().lake_uri
    root = str(tmp_path / "src")
    older, _ = _delivery(root, tmp_path / "a", 2000)
    newer, newer_cost = _delivery(root, tmp_path / "b", 1900, offset=11)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    procs = {
        name: subprocess.Popen([sys.executable, "-c", RACER, m], stdout=subprocess.PIPE, text=True, env=env)
        for name, m in (("newer", newer), ("older", older))
    }
    outcome = {name: p.communicate(timeout=300)[0].strip() for name, p in procs.items()}
    assert outcome["newer"] == "ok" and outcome["older"] in ("ok", "stale"), outcome
    assert _visible(lake) == _dbt_view(lake) == (1900, newer_cost)
    month_dir = Path(layout.line_items_month_prefix(lake, "acme_corp", OCT))
    assert len(list(month_dir.glob("version=*/usage_date=*/data.parquet"))) == 31
