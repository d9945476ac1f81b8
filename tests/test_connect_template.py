"""The CloudFormation template, quick-create link and policy preview: linted by cfn-lint, least privilege."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import cfnlint.api
import pytest
import yaml
from click.testing import CliRunner
from test_connect_support import make_tenant

from blocks_pipelines.connect.cli import connect
from blocks_pipelines.connect.template import build_template, policy_preview, quick_create_url, render_yaml

pytestmark = pytest.mark.slow  # cfn-lint over every generated template

FLAGS = [(False, False), (True, False), (False, True), (True, True)]


def _statements(template, resource):
    props = template["Resources"][resource]["Properties"]
    return {s["Sid"]: s for p in props["Policies"] for s in p["PolicyDocument"]["Statement"]}


# every flag combination, plus the parameter shapes that differ by tenant: no prefix, and a local (demo) source
CASES = [(make_tenant(), *flags) for flags in FLAGS] + [
    (make_tenant(uri="s3://newco-cur", report="r"), True, False),
    (make_tenant(uri="local/demo"), True, False),
]


@pytest.mark.parametrize("tenant,with_cur_export,with_purchase_role", CASES)
def test_generated_templates_pass_cfn_lint(tenant, with_cur_export, with_purchase_role):
    text = render_yaml(build_template(tenant, with_cur_export=with_cur_export, with_purchase_role=with_purchase_role))
    matches = cfnlint.api.lint(text)
    assert [(m.rule.id, m.message) for m in matches] == [], text


def test_trust_requires_the_tenant_external_id_and_the_blocks_account(monkeypatch):
    monkeypatch.setenv("BLOCKS_AWS_ACCOUNT_ID", "999988887777")
    tenant = make_tenant(external_id="blocks-newco-unique-0001")
    t = build_template(tenant)
    trust = t["Resources"]["BlocksDataReadRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"]["AWS"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::${BlocksAccountId}:root"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Fn::Sub": "${ExternalId}"}}}
    assert t["Parameters"]["ExternalId"]["Default"] == "blocks-newco-unique-0001"
    assert t["Parameters"]["BlocksAccountId"]["Default"] == "999988887777"


def test_cur_read_is_scoped_to_the_report_prefix_and_data_role_cannot_buy():
    t = build_template(make_tenant(uri="s3://newco-cur/reports"), with_purchase_role=True)
    assert t["Parameters"]["CurBucket"]["Default"] == "newco-cur"
    assert t["Parameters"]["CurPrefix"]["Default"] == "reports/"
    st = _statements(t, "BlocksDataReadRole")
    assert st["CurListReportPrefix"]["Action"] == ["s3:ListBucket"]
    assert st["CurListReportPrefix"]["Condition"] == {"StringLike": {"s3:prefix": [{"Fn::Sub": "${CurPrefix}*"}]}}
    assert st["CurReadReports"]["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${CurBucket}/${CurPrefix}*"}
    actions = [a for s in st.values() for a in s["Action"]]
    assert not any(a.startswith("savingsplans:") or a.startswith("s3:Put") for a in actions)
    assert {"ce:Get*", "cloudwatch:GetMetricData", "glue:GetTable", "athena:GetWorkGroup"} <= set(actions)
    purchase = _statements(t, "BlocksSavingsPlansPurchaseRole")
    assert [a for s in purchase.values() for a in s["Action"]] == [
        "savingsplans:CreateSavingsPlan",
        "savingsplans:Describe*",
    ]


def test_purchase_role_and_export_only_when_opted_in():
    plain = build_template(make_tenant())
    assert set(plain["Resources"]) == {"BlocksDataReadRole"}
    full = build_template(make_tenant(uri="s3://newco-cur/cur"), with_cur_export=True, with_purchase_role=True)
    assert set(full["Resources"]) == {
        "BlocksDataReadRole",
        "BlocksSavingsPlansPurchaseRole",
        "CurExportBucket",
        "CurExportBucketPolicy",
        "CurExport",
    }
    export = full["Resources"]["CurExport"]["Properties"]["Export"]
    assert export["DataQuery"]["TableConfigurations"]["COST_AND_USAGE_REPORT"]["TIME_GRANULARITY"] == "HOURLY"
    assert "FROM COST_AND_USAGE_REPORT" in export["DataQuery"]["QueryStatement"]
    policy = full["Resources"]["CurExportBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Principal"]["Service"] == ["billingreports.amazonaws.com", "bcm-data-exports.amazonaws.com"]
    assert full["Parameters"]["CurPrefix"]["Default"] == "cur/"


def test_quick_create_url_fills_parameters_and_preview_names_them():
    tenant = make_tenant(uri="s3://newco-cur/reports", region="eu-west-1")
    url = quick_create_url(tenant, "https://example.com/t.yaml", with_purchase_role=True)
    parsed = urlparse(url)
    assert parsed.netloc == "eu-west-1.console.aws.amazon.com"
    query = parse_qs(parsed.fragment.split("?", 1)[1])
    assert query["templateURL"] == ["https://example.com/t.yaml"]
    assert query["param_ExternalId"] == [tenant.connection.external_id]
    assert query["param_CurBucket"] == ["newco-cur"] and query["param_CurPrefix"] == ["reports/"]
    assert query["param_PurchaseRoleName"] == ["BlocksSavingsPlansPurchase"]
    assert query["stackName"] == ["blocks-newco"]
    export_url = quick_create_url(tenant, "https://example.com/t.yaml", with_cur_export=True)
    assert urlparse(export_url).netloc.startswith("us-east-1.")  # Data Exports exist only there

    preview = policy_preview(tenant, with_purchase_role=True)
    assert tenant.connection.external_id in preview
    assert "s3://newco-cur/reports/*" in preview
    assert "savingsplans:CreateSavingsPlan" in preview
    assert "purchase" not in policy_preview(tenant).lower()


def test_cli_writes_the_template_and_prints_link_and_preview(blocks_env, tmp_path):
    out = tmp_path / "stack.yaml"
    res = CliRunner().invoke(connect, ["template", "--tenant", "acme_corp", "--with-purchase-role", "--out", str(out)])
    assert res.exit_code == 0, res.output
    template = yaml.safe_load(out.read_text())
    assert "BlocksSavingsPlansPurchaseRole" in template["Resources"]
    assert "quickcreate" in res.output and "blocks-acme_corp-7f3a9c2e41" in res.output

    missing = CliRunner().invoke(connect, ["template", "--tenant", "nobody"])
    assert missing.exit_code != 0 and "known: acme_corp, globex, initech" in missing.output
