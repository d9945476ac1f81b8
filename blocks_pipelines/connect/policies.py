"""IAM policy documents for the roles a customer creates for Blocks.

The same builders serve the CloudFormation template (called with `${Param}` placeholders that the template wraps in
Fn::Sub) and the human-readable preview (called with the tenant's real values), so what a customer reads is what the
stack grants.
"""

from __future__ import annotations

VERSION = "2012-10-17"


def trust_policy(blocks_principal: str, external_id: str) -> dict:
    """Only the Blocks account may assume the role, and only with this tenant's ExternalId (confused deputy)."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": blocks_principal},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def cur_read_statements(partition: str, bucket: str, prefix: str) -> list[dict]:
    """List the bucket only under the report prefix and read only the report objects.

    `prefix` is empty or ends with "/", so `{prefix}*` is the whole bucket or exactly the report tree.
    """
    return [
        {
            "Sid": "CurBucketLocation",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation"],
            "Resource": f"arn:{partition}:s3:::{bucket}",
        },
        {
            "Sid": "CurListReportPrefix",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": f"arn:{partition}:s3:::{bucket}",
            "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        },
        {
            "Sid": "CurReadReports",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": f"arn:{partition}:s3:::{bucket}/{prefix}*",
        },
    ]


def catalog_read_statements(partition: str, account: str) -> list[dict]:
    return [
        {
            "Sid": "GlueCatalogRead",
            "Effect": "Allow",
            "Action": [
                "glue:GetDatabase",
                "glue:GetDatabases",
                "glue:GetTable",
                "glue:GetTables",
                "glue:GetPartition",
                "glue:GetPartitions",
            ],
            "Resource": [
                f"arn:{partition}:glue:*:{account}:catalog",
                f"arn:{partition}:glue:*:{account}:database/*",
                f"arn:{partition}:glue:*:{account}:table/*",
            ],
        },
        {
            "Sid": "AthenaQueryRead",
            "Effect": "Allow",
            "Action": [
                "athena:GetWorkGroup",
                "athena:ListWorkGroups",
                "athena:StartQueryExecution",
                "athena:GetQueryExecution",
                "athena:GetQueryResults",
                "athena:StopQueryExecution",
            ],
            "Resource": f"arn:{partition}:athena:*:{account}:workgroup/*",
        },
    ]


def insight_read_statements() -> list[dict]:
    """Cost Explorer and CloudWatch have no resource-level permissions for these reads: Resource must be "*"."""
    return [
        {
            "Sid": "CostExplorerRead",
            "Effect": "Allow",
            "Action": ["ce:Get*", "ce:Describe*", "ce:List*"],
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchRead",
            "Effect": "Allow",
            "Action": [
                "cloudwatch:GetMetricData",
                "cloudwatch:GetMetricStatistics",
                "cloudwatch:ListMetrics",
                "cloudwatch:DescribeAlarms",
            ],
            "Resource": "*",
        },
    ]


def data_read_policy(partition: str, account: str, bucket: str, prefix: str) -> dict:
    return {
        "Version": VERSION,
        "Statement": cur_read_statements(partition, bucket, prefix)
        + catalog_read_statements(partition, account)
        + insight_read_statements(),
    }


def purchase_policy() -> dict:
    """Savings Plans only: buy and look. Nothing else, so a leaked purchase session cannot read or change data."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "SavingsPlansPurchase",
                "Effect": "Allow",
                "Action": ["savingsplans:CreateSavingsPlan", "savingsplans:Describe*"],
                "Resource": "*",
            }
        ],
    }


def export_bucket_policy(partition: str, bucket: str, account: str) -> dict:
    """Let AWS billing write CUR 2.0 exports, only on behalf of this account's own exports."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "AllowDataExportsWrite",
                "Effect": "Allow",
                "Principal": {"Service": ["billingreports.amazonaws.com", "bcm-data-exports.amazonaws.com"]},
                "Action": ["s3:PutObject", "s3:GetBucketPolicy"],
                "Resource": [f"arn:{partition}:s3:::{bucket}", f"arn:{partition}:s3:::{bucket}/*"],
                "Condition": {
                    "StringLike": {
                        "aws:SourceArn": [
                            f"arn:{partition}:cur:us-east-1:{account}:definition/*",
                            f"arn:{partition}:bcm-data-exports:us-east-1:{account}:export/*",
                        ]
                    },
                    "StringEquals": {"aws:SourceAccount": account},
                },
            }
        ],
    }
