"""`blocks cur generate`: defaults from the tenant registry, JSON summary, errors that say how to fix them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from blocks_pipelines.cli.main import main


def run(*args: str):
    return CliRunner().invoke(main, ["cur", "generate", *args])


def test_defaults_come_from_the_tenant(blocks_env):
    result = run("--tenant", "initech", "--months", "1", "--end", "2026-11-01T06:00:00Z", "--scale", "0.2")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["format"] == "focus"  # initech's cur_source.format
    assert summary["out"] == str(blocks_env / "sources" / "initech")
    assert list(summary["unblended_cost_by_month"]) == ["2026-11"]
    assert summary["rows"] > 0 and summary["unblended_cost_by_month"]["2026-11"] > 0
    for f in summary["files"] + summary["manifests"]:
        assert Path(f).is_file() and Path(f).is_relative_to(blocks_env / "sources" / "initech")


def test_cur1_tenant_defaults_to_csv_and_restatement_writes_a_new_assembly(blocks_env, tmp_path):
    args = (
        "--tenant",
        "acme_corp",
        "--months",
        "1",
        "--start",
        "2026-11",
        "--end",
        "2026-11-01T04:00:00Z",
        "--scale",
        "0.2",
        "--out",
        str(tmp_path),
    )
    first = json.loads(run(*args).stdout)
    second = json.loads(run(*args, "--restatement").stdout)
    assert first["format"] == "cur1-csv" and first["files"][0].endswith(".csv.gz")
    assert first["months"][0]["delivery_id"] != second["months"][0]["delivery_id"]
    period_manifest = tmp_path / "acme-cur-hourly" / "20261101-20261201" / "acme-cur-hourly-Manifest.json"
    assert json.loads(period_manifest.read_text())["assemblyId"] == second["months"][0]["delivery_id"]


def test_config_dir_option(blocks_env, tmp_path):
    config = tmp_path / "other_config"
    (config / "tenants").mkdir(parents=True)
    shutil.copy(Path(blocks_env).parent / "assets_config" / "tenants" / "globex.yaml", config / "tenants")
    result = run(
        "--tenant",
        "globex",
        "--config-dir",
        str(config),
        "--months",
        "1",
        "--end",
        "2026-11-01T03:00:00Z",
        "--scale",
        "0.1",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["format"] == "cur2"
    missing = run("--tenant", "acme_corp", "--config-dir", str(config), "--months", "1")
    assert missing.exit_code != 0 and "known: globex" in missing.output


def test_errors_name_the_problem(blocks_env):
    unknown = run("--tenant", "nobody", "--months", "1")
    assert unknown.exit_code != 0 and "'nobody' is not in" in unknown.output and "acme_corp" in unknown.output
    bad_start = run("--tenant", "acme_corp", "--start", "2026-13", "--months", "1")
    assert bad_start.exit_code != 0 and "expected YYYY-MM" in bad_start.output
    bad_end = run("--tenant", "acme_corp", "--end", "yesterday", "--months", "1")
    assert bad_end.exit_code != 0 and "expected an ISO time" in bad_end.output


def test_help_lists_the_options():
    result = CliRunner().invoke(main, ["cur", "generate", "--help"])
    assert result.exit_code == 0
    for opt in (
        "--tenant",
        "--months",
        "--format",
        "--out",
        "--seed",
        "--start",
        "--restatement",
        "--scale",
        "--config-dir",
        "cur1-parquet",
    ):
        assert opt in result.output
