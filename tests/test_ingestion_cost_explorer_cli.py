"""`blocks ingest --from-cost-explorer` end to end on the moto server: STS assumes the tenant's role, Cost Explorer
answers in the role's account (moto keeps Cost Explorer results per account), the lake gets the rows."""

import json
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
import requests
from click.testing import CliRunner
from test_connect_support import make_tenant
from test_ingestion_cost_explorer import _daily

from blocks_pipelines.cli.main import main
from blocks_pipelines.lake import months
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import dump_tenant

ACCOUNT = "777788889999"  # only this test's tenant's role lives here: its queued results are not shared


@pytest.fixture
def moto(blocks_env, aws_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    return aws_env


def _register_tenant(history_start):
    tenant = make_tenant("ce_cli", uri="s3://ce-cli-cur/reports", history_start=history_start)
    role = f"arn:aws:iam::{ACCOUNT}:role/BlocksDataRead"
    tenant = tenant.model_copy(update={"connection": tenant.connection.model_copy(update={"role_arn": role})})
    (get_settings().tenants_dir / "ce_cli.yaml").write_text(dump_tenant(tenant))
    return tenant


def test_from_cost_explorer_assumes_the_role_and_prints_the_summary(moto):
    today = datetime.now(timezone.utc).date()
    _register_tenant(today - timedelta(days=60))
    days = [today - timedelta(days=20 - i) for i in range(5)]  # four days, older than the hourly window
    resp = requests.post(
        f"{moto}/moto-api/static/ce/cost-and-usage-results",
        json={"account_id": ACCOUNT, "results": [{"ResultsByTime": _daily(days)}]},
    )
    assert resp.status_code == 201

    result = CliRunner().invoke(
        main,
        [
            "ingest",
            "--from-cost-explorer",
            "--tenant",
            "ce_cli",
            "--start",
            days[0].isoformat(),
            "--end",
            days[-1].isoformat(),
        ],
    )

    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["rows"] == 8 and summary["days_written"] == 4 and summary["matches"] is True
    assert summary["cost_explorer"]["requests"] == 1
    assert summary["cost_explorer"]["cost_by_day"] == {d.isoformat(): 12.0 for d in days[:4]}
    lake = pl.read_parquet(months.current_files(get_settings().lake_uri, "ce_cli"), hive_partitioning=False)
    assert lake["source_format"].unique().to_list() == ["cost_explorer"]
    assert lake["payer_account_id"].unique().to_list() == ["444455556666"]
    assert lake["unblended_cost"].sum() == pytest.approx(48.0)


def test_usage_errors_and_local_tenants(blocks_env):
    runner = CliRunner()
    neither = runner.invoke(main, ["ingest", "--tenant", "acme_corp"])
    assert neither.exit_code == 2 and "either SOURCE or --from-cost-explorer" in neither.output
    both = runner.invoke(main, ["ingest", "x.csv", "--from-cost-explorer", "--tenant", "acme_corp"])
    assert both.exit_code == 2
    dates_without_ce = runner.invoke(main, ["ingest", "x.csv", "--tenant", "acme_corp", "--start", "2026-10-01"])
    assert dates_without_ce.exit_code == 2 and "--from-cost-explorer" in dates_without_ce.output
    local = runner.invoke(main, ["ingest", "--from-cost-explorer", "--tenant", "acme_corp"])
    assert local.exit_code == 1 and "local sample data" in local.output
