"""The CloudFormation stack a customer launches to connect AWS to Blocks, its quick-create link and a policy preview.

Everything here is pure: a tenant in, a template dict / URL / text out. Tenant values become parameter defaults, so
the same template can be reviewed, edited in the console, or launched as is from the quick-create link.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import yaml

from blocks_pipelines.connect import policies
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig

DEFAULT_TEMPLATE_BASE_URL = "https://blocks-connect-templates.s3.amazonaws.com"
DATA_EXPORTS_REGION = "us-east-1"  # AWS Data Exports (BCM) is a us-east-1 only API

# The CUR 2.0 columns the ingestion reads (REFERENCE.md section 1) plus the maps it unpacks; Data Exports needs an
# explicit column list, "SELECT *" is rejected.
CUR2_COLUMNS = [
    "bill_bill_type", "bill_billing_period_end_date", "bill_billing_period_start_date", "bill_invoice_id",
    "bill_payer_account_id", "billing_period", "cost_category", "identity_line_item_id", "identity_time_interval",
    "line_item_availability_zone", "line_item_blended_cost", "line_item_currency_code",
    "line_item_line_item_description", "line_item_line_item_type", "line_item_operation", "line_item_product_code",
    "line_item_resource_id", "line_item_unblended_cost", "line_item_unblended_rate", "line_item_usage_account_id",
    "line_item_usage_account_name", "line_item_usage_amount", "line_item_usage_end_date", "line_item_usage_start_date",
    "line_item_usage_type", "pricing_public_on_demand_cost", "pricing_public_on_demand_rate", "pricing_term",
    "pricing_unit", "product", "product_instance_family", "product_instance_type", "product_product_family",
    "product_region_code", "product_servicecode", "reservation_effective_cost", "reservation_reservation_a_r_n",
    "reservation_unused_amortized_upfront_fee_for_billing_period", "reservation_unused_recurring_fee",
    "resource_tags", "savings_plan_offering_type", "savings_plan_payment_option", "savings_plan_purchase_term",
    "savings_plan_savings_plan_a_r_n", "savings_plan_savings_plan_effective_cost", "savings_plan_savings_plan_rate",
    "savings_plan_total_commitment_to_date", "savings_plan_used_commitment",
]  # fmt: skip


def blocks_account_id() -> str:
    """The AWS account Blocks assumes roles from (BLOCKS_AWS_ACCOUNT_ID); a placeholder until one is configured."""
    return get_settings().blocks_aws_account_id


@dataclass(frozen=True)
class CurLocation:
    bucket: str | None  # None when the tenant's CUR is a local folder (demo): the customer must fill it in
    prefix: str  # "" or ends with "/"


def cur_location(tenant: TenantConfig) -> CurLocation:
    if not tenant.cur_source.is_s3:
        return CurLocation(None, "")
    bucket, _, key = tenant.cur_source.uri[len("s3://") :].partition("/")
    key = key.strip("/")
    return CurLocation(bucket, f"{key}/" if key else "")


def export_prefix(loc: CurLocation) -> str:
    """A new export writes under one folder: the tenant's prefix when it is one, else "cur/"."""
    return loc.prefix if re.fullmatch(r"[0-9A-Za-z!_.*'()-]+/", loc.prefix) else "cur/"


def role_name(role_arn: str) -> str:
    return role_arn.rsplit("/", 1)[-1]


def _sub(node):
    """Wrap every string holding a ${...} placeholder in Fn::Sub so one policy builder serves template and preview."""
    if isinstance(node, dict):
        return {k: _sub(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_sub(v) for v in node]
    if isinstance(node, str) and "${" in node:
        return {"Fn::Sub": node}
    return node


def _parameters(tenant: TenantConfig, loc: CurLocation, with_cur_export: bool, with_purchase_role: bool) -> dict:
    bucket = {
        "Type": "String",
        "AllowedPattern": r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        "Description": "S3 bucket the Cost and Usage Report is delivered to"
        + (" (created by this stack)" if with_cur_export else ""),
    }
    if loc.bucket:
        bucket["Default"] = loc.bucket
    params = {
        "BlocksAccountId": {
            "Type": "String",
            "Default": blocks_account_id(),
            "AllowedPattern": r"^\d{12}$",
            "Description": "The Blocks AWS account allowed to assume the roles",
        },
        "ExternalId": {
            "Type": "String",
            "Default": tenant.connection.external_id,
            "MinLength": 16,
            "Description": "Unique to your workspace: Blocks must present it to assume the roles",
        },
        "DataRoleName": {
            "Type": "String",
            "Default": role_name(tenant.connection.role_arn),
            "Description": "Name of the read-only role Blocks uses to read cost data",
        },
        "CurBucket": bucket,
        "CurPrefix": {
            "Type": "String",
            "Default": export_prefix(loc) if with_cur_export else loc.prefix,
            # the export's S3Prefix is this without its slash, which CloudFormation can only cut off one segment
            "AllowedPattern": r"^[0-9A-Za-z!_.*'()-]+/$" if with_cur_export else r"^$|^[^/].*/$",
            "Description": "Key prefix of the report in the bucket: "
            + ("one folder name ending with /" if with_cur_export else "empty, or ending with /"),
        },
    }
    if with_cur_export:
        params["ExportName"] = {
            "Type": "String",
            "Default": tenant.cur_source.report_name,
            "AllowedPattern": r"^[0-9A-Za-z!\-_.*'()]+$",
            "Description": "Name of the CUR 2.0 export (AWS Data Exports)",
        }
    if with_purchase_role:
        params["PurchaseRoleName"] = {
            "Type": "String",
            "Default": role_name(tenant.connection.purchase_role_arn or "role/BlocksSavingsPlansPurchase"),
            "Description": "Name of the separate role Blocks uses only to buy Savings Plans",
        }
    return params


def _data_role(tenant: TenantConfig) -> dict:
    trust = policies.trust_policy("arn:${AWS::Partition}:iam::${BlocksAccountId}:root", "${ExternalId}")
    read = policies.data_read_policy("${AWS::Partition}", "${AWS::AccountId}", "${CurBucket}", "${CurPrefix}")
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": {"Ref": "DataRoleName"},
            "Description": f"Blocks read-only access to cost data for workspace {tenant.id}",
            "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": _sub(trust),
            "Policies": [{"PolicyName": "BlocksDataRead", "PolicyDocument": _sub(read)}],
            "Tags": [{"Key": "blocks:tenant", "Value": tenant.id}, {"Key": "blocks:scope", "Value": "data_read"}],
        },
    }


def _purchase_role(tenant: TenantConfig) -> dict:
    trust = policies.trust_policy("arn:${AWS::Partition}:iam::${BlocksAccountId}:root", "${ExternalId}")
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": {"Ref": "PurchaseRoleName"},
            "Description": f"Blocks Savings Plans purchases for workspace {tenant.id} (opt-in)",
            "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": _sub(trust),
            "Policies": [{"PolicyName": "BlocksSavingsPlansPurchase", "PolicyDocument": policies.purchase_policy()}],
            "Tags": [{"Key": "blocks:tenant", "Value": tenant.id}, {"Key": "blocks:scope", "Value": "purchase"}],
        },
    }


def _export_resources() -> dict:
    bucket_policy = policies.export_bucket_policy("${AWS::Partition}", "${CurBucket}", "${AWS::AccountId}")
    return {
        "CurExportBucket": {
            "Type": "AWS::S3::Bucket",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BucketName": {"Ref": "CurBucket"},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
            },
        },
        "CurExportBucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": {"Ref": "CurExportBucket"}, "PolicyDocument": _sub(bucket_policy)},
        },
        "CurExport": {
            "Type": "AWS::BCMDataExports::Export",
            "DependsOn": "CurExportBucketPolicy",
            "Properties": {
                "Export": {
                    "Name": {"Ref": "ExportName"},
                    "Description": "Hourly CUR 2.0 with resource ids, read by Blocks",
                    "DataQuery": {
                        "QueryStatement": f"SELECT {', '.join(CUR2_COLUMNS)} FROM COST_AND_USAGE_REPORT",
                        "TableConfigurations": {
                            "COST_AND_USAGE_REPORT": {
                                "TIME_GRANULARITY": "HOURLY",
                                "INCLUDE_RESOURCES": "TRUE",
                                "INCLUDE_MANUAL_DISCOUNT_COMPATIBILITY": "FALSE",
                                "INCLUDE_SPLIT_COST_ALLOCATION_DATA": "FALSE",
                            }
                        },
                    },
                    "DestinationConfigurations": {
                        "S3Destination": {
                            "S3Bucket": {"Ref": "CurExportBucket"},
                            # Data Exports appends /<export>/data/..., so the prefix is stored without its slash
                            "S3Prefix": {"Fn::Select": [0, {"Fn::Split": ["/", {"Ref": "CurPrefix"}]}]},
                            "S3Region": {"Ref": "AWS::Region"},
                            "S3OutputConfigurations": {
                                "Overwrite": "OVERWRITE_REPORT",
                                "Format": "PARQUET",
                                "Compression": "PARQUET",
                                "OutputType": "CUSTOM",
                            },
                        }
                    },
                    "RefreshCadence": {"Frequency": "SYNCHRONOUS"},
                }
            },
        },
    }


def build_template(tenant: TenantConfig, *, with_cur_export: bool = False, with_purchase_role: bool = False) -> dict:
    """The CloudFormation template (as a dict) for one tenant; `render_yaml` turns it into the file to launch."""
    loc = cur_location(tenant)
    resources = {"BlocksDataReadRole": _data_role(tenant)}
    outputs = {
        "DataRoleArn": {
            "Description": "Register this in Blocks",
            "Value": {"Fn::GetAtt": ["BlocksDataReadRole", "Arn"]},
        },
        "ExternalId": {"Value": {"Ref": "ExternalId"}},
        "CurLocation": {"Value": {"Fn::Sub": "s3://${CurBucket}/${CurPrefix}"}},
    }
    template: dict = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"Blocks connection for workspace {tenant.id}: read-only cost data role"
        + (", CUR 2.0 export" if with_cur_export else "")
        + (", Savings Plans purchase role" if with_purchase_role else ""),
        "Parameters": _parameters(tenant, loc, with_cur_export, with_purchase_role),
    }
    if with_cur_export:
        template["Rules"] = {
            "DataExportsRegion": {
                "Assertions": [
                    {
                        "Assert": {"Fn::Equals": [{"Ref": "AWS::Region"}, DATA_EXPORTS_REGION]},
                        "AssertDescription": (
                            "AWS Data Exports can only be created in us-east-1: launch the stack there"
                        ),
                    }
                ]
            }
        }
        resources.update(_export_resources())
        outputs["ExportArn"] = {"Value": {"Fn::GetAtt": ["CurExport", "ExportArn"]}}
    if with_purchase_role:
        resources["BlocksSavingsPlansPurchaseRole"] = _purchase_role(tenant)
        outputs["PurchaseRoleArn"] = {"Value": {"Fn::GetAtt": ["BlocksSavingsPlansPurchaseRole", "Arn"]}}
    template["Resources"] = resources
    template["Outputs"] = outputs
    return template


def render_yaml(template: dict) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when present: ~5x faster, same output
    return yaml.dump(template, Dumper=dumper, sort_keys=False, width=120)


def default_template_url(tenant: TenantConfig) -> str:
    return f"{DEFAULT_TEMPLATE_BASE_URL}/{tenant.id}/blocks-connect.yaml"


def quick_create_url(
    tenant: TenantConfig, template_url: str, *, with_cur_export: bool = False, with_purchase_role: bool = False
) -> str:
    """A console link that opens the stack with every known parameter filled in (the customer only confirms)."""
    region = DATA_EXPORTS_REGION if with_cur_export else tenant.cur_source.region
    declared = _parameters(tenant, cur_location(tenant), with_cur_export, with_purchase_role)
    params = {k: v["Default"] for k, v in declared.items() if v.get("Default", "") != ""}
    query = {"templateURL": template_url, "stackName": f"blocks-{tenant.id.replace('_', '-')}"}
    query.update({f"param_{k}": v for k, v in params.items()})
    return (
        f"https://{region}.console.aws.amazon.com/cloudformation/home?region={region}"
        f"#/stacks/quickcreate?{urlencode(query, quote_via=quote)}"
    )


def policy_preview(tenant: TenantConfig, *, with_cur_export: bool = False, with_purchase_role: bool = False) -> str:
    """What the stack grants, with this tenant's values, for a human to review before launching it."""
    loc = cur_location(tenant)
    bucket = loc.bucket or "<your-cur-bucket>"
    prefix = export_prefix(loc) if with_cur_export else loc.prefix
    account = tenant.organization.payer_account_id
    blocks = blocks_account_id()
    lines = [
        f"Blocks connection for {tenant.name} ({tenant.id})",
        "",
        f"Role {role_name(tenant.connection.role_arn)} (read-only) in account {account}",
        f"  Who can assume it: AWS account {blocks} (Blocks), only with ExternalId {tenant.connection.external_id}",
        f"  Read the Cost and Usage Report: list s3://{bucket}/{prefix}* and read its objects (nothing else in S3)",
        "  Read the Glue catalog and run Athena queries in your account (workgroups, tables, partitions)",
        "  Read Cost Explorer (costs, forecasts, Savings Plans coverage and utilization)",
        "  Read CloudWatch metrics and alarms",
        "  Cannot: change any resource, read other buckets, see secrets",
    ]
    if with_cur_export:
        lines += [
            "",
            f"CUR 2.0 export {tenant.cur_source.report_name!r} (hourly, Parquet, with resource ids), "
            f"created in {DATA_EXPORTS_REGION}",
            f"  Delivered to a new private bucket s3://{bucket}/{prefix} that only AWS billing may write to",
        ]
    if with_purchase_role:
        lines += [
            "",
            f"Role {role_name(tenant.connection.purchase_role_arn or 'role/BlocksSavingsPlansPurchase')} (opt-in)",
            "  Same trust and ExternalId as the read-only role",
            "  Can: buy Savings Plans (savingsplans:CreateSavingsPlan) and describe them; nothing else",
        ]
    policy = policies.data_read_policy("aws", account, bucket, prefix)
    lines += ["", "Data-read policy document:", json.dumps(policy, indent=2)]
    if with_purchase_role:
        lines += ["", "Purchase policy document:", json.dumps(policies.purchase_policy(), indent=2)]
    return "\n".join(lines)
