"""Connection checks against moto (STS, S3, Glue, Athena, Cost Explorer) and Stubber where moto cannot refuse."""

from __future__ import annotations

import boto3
import pytest
from test_connect_support import (
    StubbingSession,
    create_bucket,
    customer_session,
    deliver_export,
    deliver_legacy,
    make_tenant,
    unique_bucket,
)

from blocks_pipelines.connect import errors
from blocks_pipelines.connect.checks import CHECK_NAMES, run_connection_checks
from blocks_pipelines.state import get_state_store

pytestmark = pytest.mark.slow  # moto Glue/Athena/S3 connection checks

CSV = b"identity/LineItemId,lineItem/UnblendedCost\nx,1.0\n"


@pytest.fixture
def moto(aws_env, blocks_env, monkeypatch):
    """moto for every service the checks call (S3 through BLOCKS_S3_ENDPOINT_URL, the rest through AWS_ENDPOINT_URL)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    return aws_env


def by_name(results):
    return {r.name: r for r in results}


def legacy_tenant(moto, **kw):
    bucket = unique_bucket()
    create_bucket(moto, bucket, kw.get("region", "us-east-1"))
    return make_tenant(uri=f"s3://{bucket}/reports", **kw), bucket


def test_all_checks_pass_for_a_legacy_cur_with_glue_and_athena(moto):
    tenant, bucket = legacy_tenant(moto, athena={"database": "cur_db", "table": "newco_hourly", "workgroup": "blocks"})
    deliver_legacy(moto, bucket, "reports/", "newco-hourly", "2026-10", CSV)
    deliver_legacy(moto, bucket, "reports/", "newco-hourly", "2026-11", CSV)
    customer = customer_session(tenant)
    glue = customer.client("glue")
    glue.create_database(DatabaseInput={"Name": "cur_db"})
    glue.create_table(
        DatabaseName="cur_db",
        TableInput={
            "Name": "newco_hourly",
            "StorageDescriptor": {"Columns": [{"Name": "line_item_unblended_cost", "Type": "double"}]},
        },
    )
    customer.client("athena").create_work_group(Name="blocks")

    results = run_connection_checks(tenant)

    assert [r.name for r in results] == list(CHECK_NAMES)
    assert {r.name: r.status for r in results} == dict.fromkeys(CHECK_NAMES, "pass")
    manifest = by_name(results)["cur_manifest"]
    assert manifest.details["billing_period"] == "2026-11"  # the newest period folder is the one read
    assert manifest.details["manifest_uri"].endswith(
        "/reports/newco-hourly/20261101-20261201/newco-hourly-Manifest.json"
    )
    status = get_state_store().get_connection(tenant.id)
    assert status["status"] == "connected" and status["failing"] == []
    assert status["checks"] == dict.fromkeys(CHECK_NAMES, "pass") and status["role_arn"] == tenant.connection.role_arn


def test_cur2_export_layout_is_found_and_unconfigured_catalog_is_skipped(moto):
    bucket = unique_bucket()
    create_bucket(moto, bucket)
    tenant = make_tenant(uri=f"s3://{bucket}/exports", fmt="cur2", report="newco-cur2")
    deliver_export(moto, bucket, "exports/", "newco-cur2", "2026-09", b"PAR1")

    res = by_name(run_connection_checks(tenant))

    assert res["cur_manifest"].status == "pass"
    assert res["cur_manifest"].details["billing_period"] == "2026-09"
    assert res["glue_table"].status == res["athena_workgroup"].status == "skip"


def test_wrong_external_id_is_denied_and_everything_else_is_skipped(moto):
    tenant, _ = legacy_tenant(moto)
    # moto does not evaluate trust policies: STS answers as AWS does for a wrong ExternalId
    session = StubbingSession({"sts": [("assume_role", None, "AccessDenied")]})

    results = run_connection_checks(tenant, session=session)

    first = results[0]
    assert (first.name, first.status, first.error_code) == ("assume_role", "fail", errors.ASSUME_DENIED)
    assert "ExternalId" in first.remediation and "trust policy" in first.remediation
    assert all(r.status == "skip" for r in results[1:])
    session.stubbers[0].assert_no_pending_responses()


def test_missing_bucket_permission_is_reported_with_its_fix(moto):
    tenant, _ = legacy_tenant(moto)
    denied = ("list_objects_v2", None, "AccessDenied")
    session = StubbingSession({"s3": [("get_bucket_location", {}, None), denied, denied]})

    res = by_name(run_connection_checks(tenant, session=session))

    assert res["assume_role"].status == "pass"  # real STS call to moto
    assert res["cur_bucket_region"].status == "pass"
    assert (res["cur_list"].status, res["cur_list"].error_code) == ("fail", errors.LIST_DENIED)
    assert "s3:ListBucket" in res["cur_list"].remediation
    assert res["cur_manifest"].error_code == errors.READ_DENIED
    assert res["cost_explorer"].status == "pass"


def test_no_manifest_under_the_prefix(moto):
    tenant, bucket = legacy_tenant(moto)
    # a stray file of another report does not count as this report's delivery
    deliver_legacy(moto, bucket, "reports/", "other-report", "2026-10", CSV)

    res = by_name(run_connection_checks(tenant))

    assert res["cur_list"].status == "pass"
    assert (res["cur_manifest"].status, res["cur_manifest"].error_code) == ("fail", errors.NO_MANIFEST)
    assert "reports/newco-hourly/" in res["cur_manifest"].message


def test_period_folder_without_its_manifest_is_no_manifest(moto):
    tenant, bucket = legacy_tenant(moto)
    boto3.client("s3", endpoint_url=moto).put_object(
        Bucket=bucket, Key="reports/newco-hourly/20261101-20261201/abc/newco-hourly-1.csv.gz", Body=b"x"
    )
    res = by_name(run_connection_checks(tenant))
    assert res["cur_manifest"].error_code == errors.NO_MANIFEST


def test_manifest_listing_missing_files_is_invalid(moto):
    tenant, bucket = legacy_tenant(moto)
    key = deliver_legacy(moto, bucket, "reports/", "newco-hourly", "2026-11", CSV)
    s3 = boto3.client("s3", endpoint_url=moto)
    data_key = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"] if o["Key"].endswith(".csv")][0]
    s3.delete_object(Bucket=bucket, Key=data_key)

    res = by_name(run_connection_checks(tenant))

    assert res["cur_manifest"].error_code == errors.MANIFEST_INVALID
    assert key in res["cur_manifest"].message


def test_wrong_region(moto):
    bucket = unique_bucket()
    create_bucket(moto, bucket, "eu-west-1")
    tenant = make_tenant(
        uri=f"s3://{bucket}/reports",
        region="us-east-1",
        athena={"database": "cur_db_eu", "table": "t", "workgroup": "primary"},
    )
    deliver_legacy(moto, bucket, "reports/", "newco-hourly", "2026-11", CSV)

    res = by_name(run_connection_checks(tenant))

    region = res["cur_bucket_region"]
    assert (region.status, region.error_code) == ("fail", errors.REGION_MISMATCH)
    assert region.details == {"bucket_region": "eu-west-1", "configured_region": "us-east-1"}
    assert "cur_source.region" in region.remediation
    assert res["cur_manifest"].status == "pass"  # reads still go to the bucket's real region
    assert res["glue_table"].error_code == errors.GLUE_NOT_FOUND  # looked up in the configured (wrong) region


def test_missing_athena_workgroup_and_cost_explorer_denied(moto):
    tenant, bucket = legacy_tenant(moto, athena={"database": "db", "table": "t", "workgroup": "nope"})
    deliver_legacy(moto, bucket, "reports/", "newco-hourly", "2026-11", CSV)
    session = StubbingSession({"ce": [("get_cost_and_usage", None, "AccessDeniedException")]})

    res = by_name(run_connection_checks(tenant, session=session))

    assert res["athena_workgroup"].error_code == errors.ATHENA_WORKGROUP
    assert res["cost_explorer"].error_code == errors.CE_DENIED


def test_the_latest_outcome_is_the_connection_status_until_a_later_check(moto):
    """A role that stops working shows as failed with its fix; it shows connected again once a check passes."""
    tenant, bucket = legacy_tenant(moto)
    deliver_legacy(moto, bucket, "reports/", "newco-hourly", "2026-11", CSV)
    run_connection_checks(tenant)
    first = get_state_store().get_connection(tenant.id)
    assert first["status"] == "connected", first["failing"]

    run_connection_checks(tenant, session=StubbingSession({"sts": [("assume_role", None, "AccessDenied")]}))
    broken = get_state_store().get_connection(tenant.id)
    assert broken["status"] == "failed" and broken["checked_at"] > first["checked_at"]
    [failing] = broken["failing"]
    assert (failing["name"], failing["error_code"]) == ("assume_role", errors.ASSUME_DENIED)
    assert "ExternalId" in failing["remediation"]
    assert broken["checks"]["cur_list"] == "skip"

    run_connection_checks(tenant)
    assert get_state_store().get_connection(tenant.id)["status"] == "connected"


def test_role_assumption_and_each_result_are_audited(moto):
    tenant, _ = legacy_tenant(moto, external_id="blocks-audited-0123456789")
    results = run_connection_checks(tenant, actor="alice@newco")

    events = get_state_store().list_audit(f"{tenant.id}/connection/")
    assume = [e for e in events if e.action == "connect.assume_role"]
    assert len(assume) == 1 and assume[0].actor == "alice@newco" and assume[0].result == "ok"
    checks = {e.target.rsplit("/", 1)[1]: e for e in events if e.action == "connect.check"}
    assert {k: e.result for k, e in checks.items()} == {r.name: r.status for r in results}
    assert checks["cur_manifest"].details["error_code"] == errors.NO_MANIFEST
