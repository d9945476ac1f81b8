"""`blocks ingest` runs in-process and prints a JSON summary; bad input exits non-zero with the located error."""

import json

from click.testing import CliRunner

from blocks_pipelines.cli.main import main
from tests.synthetic.cur_frames import cur1_frame, cur2_frame, write_export_delivery


def test_ingest_folder_prints_json_summary(blocks_env, tmp_path):
    root = tmp_path / "src"
    frame = cur2_frame(500, "2026-10", "222222222222", ["222222222223"])
    write_export_delivery(str(root), "globex-cur2", [frame], "2026-10", tmp_path / "w")
    result = CliRunner().invoke(main, ["ingest", str(root), "--tenant", "globex", "--format", "cur2"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["rows"] == 500 and summary["matches"] is True
    assert abs(sum(summary["cost_by_line_item_type"].values()) - frame["line_item_unblended_cost"].sum()) < 1e-6
    assert (blocks_env / "lake" / "cur_line_items" / "tenant_id=globex").is_dir()


def test_ingest_to_an_explicit_lake_and_bad_input_exit_code(blocks_env, tmp_path):
    good = tmp_path / "acme.csv"
    cur1_frame(100, "2026-10", "111111111111", ["111111111112"]).write_csv(good)
    lake = tmp_path / "other-lake"
    ok = CliRunner().invoke(main, ["ingest", str(good), "--tenant", "acme_corp", "--lake", str(lake)])
    assert ok.exit_code == 0, ok.output
    assert list(lake.rglob("data.parquet"))
    bad = CliRunner().invoke(main, ["ingest", str(good), "--tenant", "globex"])
    assert bad.exit_code != 0
    assert "payer account 111111111111" in bad.output and str(good) in bad.output
