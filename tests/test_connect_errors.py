"""The error catalog: every code the checks can return is catalogued, and docs/error_catalog.md is up to date."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from blocks_pipelines.connect import errors
from blocks_pipelines.connect.cli import connect

DOC = Path(__file__).resolve().parent.parent / "docs" / "error_catalog.md"


def test_every_code_constant_is_in_the_catalog_with_a_remediation():
    constants = {v for k, v in vars(errors).items() if k.isupper() and isinstance(v, str) and v.startswith("BLK-")}
    assert constants == set(errors.CATALOG)
    for entry in errors.CATALOG.values():
        assert entry.remediation and entry.cause and entry.title


def test_docs_error_catalog_is_generated_from_code():
    assert DOC.read_text() == errors.render_markdown(), "run: blocks connect error-catalog --out docs/error_catalog.md"
    res = CliRunner().invoke(connect, ["error-catalog", "--out", str(DOC), "--check"])
    assert res.exit_code == 0, res.output


def test_check_flag_detects_a_stale_file(tmp_path):
    stale = tmp_path / "catalog.md"
    stale.write_text("# old\n")
    res = CliRunner().invoke(connect, ["error-catalog", "--out", str(stale), "--check"])
    assert res.exit_code == 1 and "stale" in res.output
