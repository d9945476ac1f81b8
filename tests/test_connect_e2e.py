"""From nothing to a backfilled tenant on moto S3: template generated and linted, the customer's stack stood up
in moto IAM from that template, connection checks green, setup run through a real Dagster webserver (reload and
one backfill per month), and the first launched month's range ingested from the real-format CUR delivery."""

from __future__ import annotations

import json
import re
from datetime import date, timezone

import cfnlint.api
import polars as pl
import pytest
from click.testing import CliRunner
from conftest import REAL_CUR
from test_connect_support import (
    DagsterWebserver,
    create_bucket,
    customer_session,
    deliver_legacy,
    make_tenant,
    unique_bucket,
)

from blocks_pipelines.connect.backfill import backfill_months
from blocks_pipelines.connect.checks import CHECK_NAMES, run_connection_checks
from blocks_pipelines.connect.cli import tenants_setup
from blocks_pipelines.connect.dagster_api import DagsterGateway, client_from_url
from blocks_pipelines.connect.template import build_template, render_yaml
from blocks_pipelines.lake.months import current_files
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state import get_state_store

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs, crash-injected processes or moto S3/SQS

KOKU = REAL_CUR / "koku-2023-06-01.csv"
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { status numPartitions tags { key value } } } }"""
KOKU_PAYER = "0099999999999"  # anonymised 13-digit id in the fixture; a tenant's payer is a real 12-digit id


def _resolve(node, params: dict[str, str]):
    """What CloudFormation does with Fn::Sub / Ref, for the parameters and pseudo parameters these policies use."""
    if isinstance(node, dict):
        if set(node) == {"Fn::Sub"}:
            return re.sub(r"\$\{([\w:]+)\}", lambda m: params[m.group(1)], node["Fn::Sub"])
        if set(node) == {"Ref"}:
            return params[node["Ref"]]
        return {k: _resolve(v, params) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, params) for v in node]
    return node


def _launch_stack_in_moto(template: dict, tenant) -> None:
    """Create the data-read role in the customer's (moto) account exactly as the template defines it."""
    params = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
    params.update(
        {
            "AWS::Partition": "aws",
            "AWS::AccountId": tenant.organization.payer_account_id,
            "AWS::Region": tenant.cur_source.region,
        }
    )
    role = _resolve(template["Resources"]["BlocksDataReadRole"]["Properties"], params)
    iam = customer_session(tenant).client("iam")
    iam.create_role(RoleName=role["RoleName"], AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]))
    for policy in role["Policies"]:
        iam.put_role_policy(
            RoleName=role["RoleName"],
            PolicyName=policy["PolicyName"],
            PolicyDocument=json.dumps(policy["PolicyDocument"]),
        )


def test_new_customer_to_backfilled_tenant(aws_env, blocks_env, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    monkeypatch.setenv("BLOCKS_AWS_ACCOUNT_ID", "123456789012")
    bucket = unique_bucket("newco-cur")
    create_bucket(aws_env, bucket)
    tenant = make_tenant(
        uri=f"s3://{bucket}/reports",
        history_start=date(2023, 6, 1),
        athena={"database": "newco_cur", "table": "newco_hourly", "workgroup": "primary"},
    )
    payer = tenant.organization.payer_account_id
    manifest_key = deliver_legacy(
        aws_env,
        bucket,
        "reports/",
        "newco-hourly",
        "2023-06",
        KOKU.read_bytes().replace(KOKU_PAYER.encode(), payer.encode()),
    )

    # 1. the stack: generated, linted, launched (moto IAM validates the policy documents)
    template = build_template(tenant)
    assert [m.rule.id for m in cfnlint.api.lint(render_yaml(template))] == []
    _launch_stack_in_moto(template, tenant)
    customer = customer_session(tenant)
    customer.client("glue").create_database(DatabaseInput={"Name": "newco_cur"})
    customer.client("glue").create_table(DatabaseName="newco_cur", TableInput={"Name": "newco_hourly"})
    assert customer.client("iam").get_role(RoleName="BlocksDataRead")["Role"]["Arn"] == tenant.connection.role_arn

    # 2. connection checks
    results = run_connection_checks(tenant)
    assert {r.name: r.status for r in results} == dict.fromkeys(CHECK_NAMES, "pass"), [r.message for r in results]

    # 3. setup through a real webserver whose code location builds the ingestion assets from the registry
    with DagsterWebserver(tmp_path / "dagster", use_ingestion=True) as dagster:
        from blocks_pipelines.connect.setup import setup_tenant

        gateway = DagsterGateway(client_from_url(dagster.url))
        assert not gateway.has_asset([tenant.id, "cur_line_items"])
        other = gateway.launch_month("globex", backfill_months(tenant)[-1])  # another tenant's backfill

        report = setup_tenant(tenant, dagster=gateway)

        assert report.registry == "created" and report.already_launched == {}
        assert gateway.has_asset([tenant.id, "cur_line_items"])  # the reload made Dagster load the new tenant
        months = {m.billing_period: m for m in backfill_months(tenant)}
        assert [b.billing_period for b in report.launched] == list(months) and len(months) >= 42
        for b in report.launched[:2] + report.launched[-1:]:
            got = gateway._execute(BACKFILL, {"id": b.backfill_id})["partitionBackfillOrError"]
            assert got["numPartitions"] == months[b.billing_period].hours
            assert {"key": "blocks/backfill_month", "value": b.billing_period} in got["tags"]
        assert other.backfill_id not in report.already_launched.values()

        # running it again (here through the CLI) launches nothing new
        res = CliRunner().invoke(tenants_setup, ["--tenant", tenant.id, "--dagster-url", dagster.url])
        assert res.exit_code == 0, res.output
        assert f"0 backfill(s) launched, {len(months)} already launched" in res.output

    # 4. the 2023-06 backfill's work: ingest that month's delivery over the month's hour range (running the asset
    # in-process through Dagster costs ~20 s of per-partition event bookkeeping; the ingestion tests cover it)
    from datetime import datetime, timedelta

    from blocks_pipelines.ingestion.ingest import ingest_delivery
    from blocks_pipelines.tenants.partitions import PARTITION_FMT

    june = backfill_months(tenant)[0]
    start = datetime.strptime(june.start_key, PARTITION_FMT).replace(tzinfo=timezone.utc)
    end = datetime.strptime(june.end_key, PARTITION_FMT).replace(tzinfo=timezone.utc) + timedelta(hours=1)
    summary = ingest_delivery(tenant, f"s3://{bucket}/{manifest_key}", hour_range=(start, end))
    assert summary.rows == 3

    lake = pl.read_parquet(current_files(get_settings().lake_uri, tenant.id), hive_partitioning=False)
    source = pl.read_csv(KOKU, infer_schema_length=0)
    assert lake.height == source.height
    assert lake["unblended_cost"].sum() == pytest_approx(source["lineItem/UnblendedCost"].cast(pl.Float64).sum())
    assert set(lake["payer_account_id"].to_list()) == {payer}

    audit = {(e.action, e.result) for e in get_state_store().list_audit(f"{tenant.id}/")}
    assert {("connect.assume_role", "ok"), ("dagster.reload", "ok"), ("backfill.launch", "launched")} <= audit


def pytest_approx(x):
    import pytest

    return pytest.approx(x, rel=1e-9)
