"""The connect-flow error catalog: every failure a connection check can report, with a fix a customer can follow.

docs/error_catalog.md is generated from this module (`blocks connect error-catalog --out docs/error_catalog.md`),
and a test fails when the two disagree, so the documentation cannot drift from what the checks return.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogEntry:
    code: str
    title: str
    cause: str
    remediation: str


_ENTRIES = [
    CatalogEntry(
        "BLK-CONN-001",
        "Blocks cannot assume the data-read role",
        "STS AssumeRole was denied: the role does not exist, its trust policy does not name the Blocks account, "
        "or the sts:ExternalId in the trust policy differs from the tenant's external id.",
        "Open the CloudFormation stack from `blocks connect template` (or the quick-create link) and deploy it "
        "unchanged in the account that owns the role. If you created the role by hand, set its trust policy "
        "Condition to StringEquals sts:ExternalId = the external id shown on the Connect AWS page, and check that "
        "the role ARN registered in Blocks is exactly the role's ARN.",
    ),
    CatalogEntry(
        "BLK-CONN-002",
        "Blocks' own AWS credentials are missing or invalid",
        "The call to STS was rejected before the customer role was evaluated (no credentials, expired token, "
        "invalid access key) on the Blocks side.",
        "Operator action: give the Blocks service valid AWS credentials (instance role or environment) and retry; "
        "nothing is wrong in the customer account.",
    ),
    CatalogEntry(
        "BLK-CUR-001",
        "CUR bucket not found",
        "The bucket named in the tenant's cur_source does not exist or is not visible to the role.",
        "Check the bucket name in the S3 console of the payer account and update the CUR location in Blocks "
        "(cur_source.uri = s3://<bucket>/<prefix>).",
    ),
    CatalogEntry(
        "BLK-CUR-002",
        "CUR bucket is in another region",
        "The bucket's region differs from the region configured for the tenant's CUR source, so reads would "
        "go through the wrong regional endpoint and the Glue/Athena catalog would be looked up in the wrong region.",
        "Set the CUR region in Blocks (cur_source.region) to the bucket's region shown by the check, or recreate "
        "the export in a bucket in the configured region.",
    ),
    CatalogEntry(
        "BLK-CUR-003",
        "The role may not list the CUR prefix",
        "s3:ListBucket on the CUR bucket was denied for the report prefix.",
        "Redeploy the Blocks stack with the CurBucket and CurPrefix parameters matching your report location, or add "
        "s3:ListBucket on arn:aws:s3:::<bucket> with Condition StringLike s3:prefix = <prefix>/* to the role. Also "
        "check that the bucket policy has no Deny for the role.",
    ),
    CatalogEntry(
        "BLK-CUR-004",
        "No CUR manifest under the configured prefix",
        "Nothing matching <prefix>/<report>/<yyyymmdd-yyyymmdd>/<report>-Manifest.json (legacy CUR) or "
        "<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json (CUR 2.0 / FOCUS) was found. "
        "A new export delivers its first files up to 24 hours after creation.",
        "Check in the Billing console (Data Exports or Cost & Usage Reports) that the export exists, that its S3 "
        "prefix and name match the CUR location registered in Blocks (cur_source.uri and report_name) and that its "
        "format matches cur_source.format; if the export was created today, retry after the first delivery.",
    ),
    CatalogEntry(
        "BLK-CUR-005",
        "The role may not read CUR objects",
        "s3:GetObject on the CUR manifest or a report file was denied (or the objects are encrypted with a KMS key "
        "the role cannot use).",
        "Give the role s3:GetObject on arn:aws:s3:::<bucket>/<prefix>/* (the Blocks stack does this); if the bucket "
        "uses SSE-KMS, add kms:Decrypt on that key for the role.",
    ),
    CatalogEntry(
        "BLK-CUR-006",
        "CUR manifest is not usable",
        "The manifest is not JSON, lists no report files, or lists files that are not in the bucket.",
        "Wait for the next delivery (AWS rewrites the current month up to three times a day); if it persists, "
        "recreate the export, then run the connection test again.",
    ),
    CatalogEntry(
        "BLK-GLUE-001",
        "Glue table not found",
        "The Glue database or table configured for the tenant does not exist in the CUR region.",
        "Run the CUR Glue crawler (or the CloudFormation template AWS provides with the report) in the CUR region, "
        "then update the database and table names in Blocks (cur_source.athena).",
    ),
    CatalogEntry(
        "BLK-GLUE-002",
        "The role may not read the Glue catalog",
        "glue:GetTable was denied.",
        "Add glue:GetDatabase, glue:GetTable, glue:GetTables and glue:GetPartitions to the role (the Blocks stack "
        "grants them).",
    ),
    CatalogEntry(
        "BLK-ATH-001",
        "Athena workgroup not usable",
        "The configured Athena workgroup does not exist in the CUR region or is disabled.",
        "Create or enable the workgroup in the Athena console of the CUR region, or set cur_source.athena.workgroup "
        "to an existing enabled workgroup (for example 'primary').",
    ),
    CatalogEntry(
        "BLK-ATH-002",
        "The role may not use Athena",
        "athena:GetWorkGroup was denied.",
        "Add athena:GetWorkGroup, athena:StartQueryExecution, athena:GetQueryExecution and athena:GetQueryResults "
        "to the role (the Blocks stack grants them).",
    ),
    CatalogEntry(
        "BLK-CE-001",
        "The role may not read Cost Explorer",
        "ce:GetCostAndUsage was denied.",
        "Add ce:Get* and ce:Describe* to the role (the Blocks stack grants them); in an AWS Organization, the "
        "management account must also allow member accounts to use Cost Explorer.",
    ),
    CatalogEntry(
        "BLK-CE-002",
        "Cost Explorer is not enabled",
        "Cost Explorer returned DataUnavailable: it has never been opened in this account. AWS needs up to 24 hours "
        "to prepare the data after enabling it.",
        "Open Cost Explorer once in the Billing console of the payer account to enable it, then retry the "
        "connection test the next day.",
    ),
    CatalogEntry(
        "BLK-AWS-000",
        "Unexpected AWS error",
        "AWS returned an error the checks do not recognise; the check's message carries the AWS error code.",
        "Retry the connection test; if it fails again, send the check's message to Blocks support.",
    ),
]

CATALOG: dict[str, CatalogEntry] = {e.code: e for e in _ENTRIES}

ASSUME_DENIED = "BLK-CONN-001"
BLOCKS_CREDENTIALS = "BLK-CONN-002"
BUCKET_NOT_FOUND = "BLK-CUR-001"
REGION_MISMATCH = "BLK-CUR-002"
LIST_DENIED = "BLK-CUR-003"
NO_MANIFEST = "BLK-CUR-004"
READ_DENIED = "BLK-CUR-005"
MANIFEST_INVALID = "BLK-CUR-006"
GLUE_NOT_FOUND = "BLK-GLUE-001"
GLUE_DENIED = "BLK-GLUE-002"
ATHENA_WORKGROUP = "BLK-ATH-001"
ATHENA_DENIED = "BLK-ATH-002"
CE_DENIED = "BLK-CE-001"
CE_NOT_ENABLED = "BLK-CE-002"
UNEXPECTED = "BLK-AWS-000"


def entry(code: str) -> CatalogEntry:
    return CATALOG[code]


def render_markdown() -> str:
    lines = [
        "# Connect-flow error catalog",
        "",
        "Generated from `blocks_pipelines/connect/errors.py` by "
        "`blocks connect error-catalog --out docs/error_catalog.md`; do not edit by hand.",
        "Every failed connection check (`blocks connect test`, `POST /api/ingest/test-connection`) carries one of "
        "these codes and its remediation.",
        "",
    ]
    for e in _ENTRIES:
        lines += [f"## {e.code}: {e.title}", "", f"**Cause.** {e.cause}", "", f"**Fix.** {e.remediation}", ""]
    return "\n".join(lines)
