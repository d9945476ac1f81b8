"""Connection checks: can Blocks reach what a tenant's data needs, and if not, what should the customer do?

`run_connection_checks(tenant)` is what `blocks connect test` and `POST /api/ingest/test-connection` call. Every check
returns pass, fail (with a catalogued error code and its remediation, see errors.py) or skip (not configured, or a
check it depends on failed). The role assumption and every result are written to the state store's audit log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from blocks_pipelines.connect import errors
from blocks_pipelines.connect.aws import (
    BLOCKS_CREDENTIAL_CODES,
    COST_EXPLORER_REGION,
    DENIED_CODES,
    NOT_FOUND_CODES,
    ClientSource,
    RoleCredentials,
    assume_role,
    error_code,
    error_message,
    make_client,
)
from blocks_pipelines.connect.manifest import (
    ManifestError,
    billing_period_of,
    manifest_key,
    newest_period_folder,
    parse_manifest,
    periods_root,
)
from blocks_pipelines.connect.template import cur_location
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig, resolve_source_uri

Status = Literal["pass", "fail", "skip"]
CHECK_NAMES = (
    "assume_role",
    "cur_bucket_region",
    "cur_list",
    "cur_manifest",
    "glue_table",
    "athena_workgroup",
    "cost_explorer",
)
DEFAULT_ACTOR = "blocks-connect"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    message: str
    error_code: str | None = None
    remediation: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "fail"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed(name: str, message: str, **details: Any) -> CheckResult:
    return CheckResult(name, "pass", message, details=details)


def skipped(name: str, message: str) -> CheckResult:
    return CheckResult(name, "skip", message)


def failed(name: str, code: str, message: str, **details: Any) -> CheckResult:
    return CheckResult(name, "fail", message, code, errors.entry(code).remediation, details)


def _aws_failure(name: str, exc: Exception, mapping: dict[str, set[str]], what: str) -> CheckResult:
    """A failed check from an AWS error: the first catalog code whose AWS error codes match, else 'unexpected'."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        for catalog_code, aws_codes in mapping.items():
            if code in aws_codes:
                return failed(name, catalog_code, f"{what}: {error_message(exc)}", aws_error=code)
        return failed(name, errors.UNEXPECTED, f"{what}: {error_message(exc)}", aws_error=code)
    return failed(name, errors.UNEXPECTED, f"{what}: {exc}")


@dataclass
class _Context:
    tenant: TenantConfig
    source: ClientSource
    creds: RoleCredentials | None = None
    bucket_region: str | None = None
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)

    def client(self, service: str, region: str | None = None) -> Any:
        """One client per (service, region) for the whole run, made with the assumed role's credentials."""
        key = (service, region or self.tenant.cur_source.region)
        if key not in self._clients:
            self._clients[key] = make_client(self.source, service, key[1], self.creds)
        return self._clients[key]


# ---- the checks, in order ----------------------------------------------------------------------------------------


def check_assume_role(ctx: _Context) -> CheckResult:
    conn = ctx.tenant.connection
    try:
        ctx.creds = assume_role(ctx.source, conn.role_arn, conn.external_id, ctx.tenant.id)
    except NoCredentialsError as exc:
        return failed("assume_role", errors.BLOCKS_CREDENTIALS, f"no AWS credentials on the Blocks side: {exc}")
    except (ClientError, BotoCoreError) as exc:
        return _aws_failure(
            "assume_role",
            exc,
            {errors.ASSUME_DENIED: DENIED_CODES, errors.BLOCKS_CREDENTIALS: BLOCKS_CREDENTIAL_CODES},
            f"assuming {conn.role_arn} with the tenant's ExternalId",
        )
    return passed("assume_role", f"assumed {conn.role_arn} with the tenant's ExternalId", role_arn=conn.role_arn)


def check_bucket_region(ctx: _Context) -> CheckResult:
    bucket = cur_location(ctx.tenant).bucket
    try:
        resp = ctx.client("s3").get_bucket_location(Bucket=bucket)
    except (ClientError, BotoCoreError) as exc:
        return _aws_failure(
            "cur_bucket_region",
            exc,
            {errors.BUCKET_NOT_FOUND: {"NoSuchBucket", "404"}, errors.LIST_DENIED: DENIED_CODES},
            f"locating bucket {bucket}",
        )
    # S3 reports us-east-1 as no constraint and eu-west-1 as the legacy "EU"
    region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(
        resp.get("LocationConstraint"), resp.get("LocationConstraint")
    )
    ctx.bucket_region = region
    expected = ctx.tenant.cur_source.region
    if region != expected:
        return failed(
            "cur_bucket_region",
            errors.REGION_MISMATCH,
            f"bucket {bucket} is in {region} but the tenant's CUR region (cur_source.region) is {expected}",
            bucket_region=region,
            configured_region=expected,
        )
    return passed("cur_bucket_region", f"bucket {bucket} is in {region}", bucket_region=region)


def _s3(ctx: _Context) -> Any:
    return ctx.client("s3", ctx.bucket_region)


def check_list(ctx: _Context) -> CheckResult:
    loc = cur_location(ctx.tenant)
    prefix = periods_root(ctx.tenant.cur_source.format, loc.prefix, ctx.tenant.cur_source.report_name)
    try:
        resp = _s3(ctx).list_objects_v2(Bucket=loc.bucket, Prefix=prefix, MaxKeys=1)
    except (ClientError, BotoCoreError) as exc:
        return _aws_failure(
            "cur_list",
            exc,
            {errors.LIST_DENIED: DENIED_CODES, errors.BUCKET_NOT_FOUND: {"NoSuchBucket"}},
            f"listing s3://{loc.bucket}/{prefix}",
        )
    return passed("cur_list", f"listed s3://{loc.bucket}/{prefix} ({resp.get('KeyCount', 0)} key(s) in first page)")


def _s3_period_folders(s3: Any, bucket: str, root: str) -> list[str]:
    folders = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root, Delimiter="/"):
        folders += [p["Prefix"][len(root) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
    return folders


def check_manifest_s3(ctx: _Context) -> CheckResult:
    src = ctx.tenant.cur_source
    loc = cur_location(ctx.tenant)
    root = periods_root(src.format, loc.prefix, src.report_name)
    s3 = _s3(ctx)
    where = f"s3://{loc.bucket}/{root}"
    try:
        folder = newest_period_folder(src.format, _s3_period_folders(s3, loc.bucket, root))
        if folder is None:
            return failed("cur_manifest", errors.NO_MANIFEST, f"no billing period folder under {where}")
        key = manifest_key(src.format, loc.prefix, src.report_name, folder)
        raw = s3.get_object(Bucket=loc.bucket, Key=key)["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        return _aws_failure(
            "cur_manifest",
            exc,
            {errors.NO_MANIFEST: NOT_FOUND_CODES, errors.READ_DENIED: DENIED_CODES},
            f"reading the newest manifest under {where}",
        )
    try:
        manifest = parse_manifest(raw, src.format, billing_period_of(src.format, folder) or "")
    except ManifestError as exc:
        return failed("cur_manifest", errors.MANIFEST_INVALID, f"s3://{loc.bucket}/{key}: {exc}")
    first = manifest.data_keys[0]
    try:
        s3.head_object(Bucket=loc.bucket, Key=first)
    except (ClientError, BotoCoreError) as exc:
        return _aws_failure(
            "cur_manifest",
            exc,
            {errors.MANIFEST_INVALID: NOT_FOUND_CODES, errors.READ_DENIED: DENIED_CODES},
            f"s3://{loc.bucket}/{key} lists s3://{loc.bucket}/{first}",
        )
    return passed(
        "cur_manifest",
        f"read s3://{loc.bucket}/{key}: billing period {manifest.billing_period}, {len(manifest.data_keys)} file(s)",
        manifest_uri=f"s3://{loc.bucket}/{key}",
        billing_period=manifest.billing_period,
        files=len(manifest.data_keys),
    )


def check_manifest_local(ctx: _Context) -> CheckResult:
    """Demo tenants keep their CUR in a local folder with the same layout as S3."""
    src = ctx.tenant.cur_source
    base = Path(resolve_source_uri(src, get_settings().home))
    root = base / periods_root(src.format, "", src.report_name)
    folders = [p.name for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    folder = newest_period_folder(src.format, folders)
    path = base / manifest_key(src.format, "", src.report_name, folder) if folder else None
    if path is None or not path.is_file():
        return failed("cur_manifest", errors.NO_MANIFEST, f"no manifest under {root}")
    try:
        manifest = parse_manifest(path.read_bytes(), src.format, billing_period_of(src.format, folder) or "")
    except ManifestError as exc:
        return failed("cur_manifest", errors.MANIFEST_INVALID, f"{path}: {exc}")
    return passed(
        "cur_manifest",
        f"read {path}: billing period {manifest.billing_period}, {len(manifest.data_keys)} file(s)",
        manifest_uri=str(path),
        billing_period=manifest.billing_period,
        files=len(manifest.data_keys),
    )


def check_glue_table(ctx: _Context) -> CheckResult:
    athena = ctx.tenant.cur_source.athena
    if athena is None:
        return skipped("glue_table", "no Glue table configured (cur_source.athena)")
    try:
        table = ctx.client("glue").get_table(DatabaseName=athena.database, Name=athena.table)["Table"]
    except (ClientError, BotoCoreError) as exc:
        return _aws_failure(
            "glue_table",
            exc,
            {errors.GLUE_NOT_FOUND: NOT_FOUND_CODES, errors.GLUE_DENIED: DENIED_CODES},
            f"reading Glue table {athena.database}.{athena.table} in {ctx.tenant.cur_source.region}",
        )
    columns = len(table.get("StorageDescriptor", {}).get("Columns", []))
    return passed("glue_table", f"Glue table {athena.database}.{athena.table} has {columns} column(s)")


def check_athena_workgroup(ctx: _Context) -> CheckResult:
    athena = ctx.tenant.cur_source.athena
    if athena is None:
        return skipped("athena_workgroup", "no Athena workgroup configured (cur_source.athena)")
    where = f"Athena workgroup {athena.workgroup} in {ctx.tenant.cur_source.region}"
    try:
        wg = ctx.client("athena").get_work_group(WorkGroup=athena.workgroup).get("WorkGroup")
    except (ClientError, BotoCoreError) as exc:
        return _aws_failure(
            "athena_workgroup",
            exc,
            {errors.ATHENA_WORKGROUP: {"InvalidRequestException", "ResourceNotFoundException"},
             errors.ATHENA_DENIED: DENIED_CODES},
            f"reading {where}",
        )  # fmt: skip
    if wg is None:
        return failed("athena_workgroup", errors.ATHENA_WORKGROUP, f"{where} does not exist")
    if wg.get("State") == "DISABLED":
        return failed("athena_workgroup", errors.ATHENA_WORKGROUP, f"{where} is disabled")
    return passed("athena_workgroup", f"{where} is enabled")


def check_cost_explorer(ctx: _Context, today: datetime | None = None) -> CheckResult:
    end = (today or datetime.now(timezone.utc)).date()
    try:
        ctx.client("ce", COST_EXPLORER_REGION).get_cost_and_usage(
            TimePeriod={"Start": (end - timedelta(days=7)).isoformat(), "End": end.isoformat()},
            Granularity="DAILY",
            Metrics=["UnblendedCost"],
        )
    except (ClientError, BotoCoreError) as exc:
        return _aws_failure(
            "cost_explorer",
            exc,
            {errors.CE_DENIED: DENIED_CODES, errors.CE_NOT_ENABLED: {"DataUnavailableException"}},
            "reading Cost Explorer (GetCostAndUsage, last 7 days)",
        )
    return passed("cost_explorer", "Cost Explorer answered GetCostAndUsage for the last 7 days")


def _plan(tenant: TenantConfig) -> list[tuple[str, Callable[[_Context], CheckResult]] | tuple[str, str]]:
    """Each check, or the reason it is skipped for this tenant's configuration."""
    local = "the CUR source is a local folder, not S3"
    s3 = tenant.cur_source.is_s3
    return [
        ("cur_bucket_region", check_bucket_region if s3 else local),
        ("cur_list", check_list if s3 else local),
        ("cur_manifest", check_manifest_s3 if s3 else check_manifest_local),
        ("glue_table", check_glue_table),
        ("athena_workgroup", check_athena_workgroup),
        ("cost_explorer", check_cost_explorer),
    ]


def run_connection_checks(
    tenant: TenantConfig, *, session: ClientSource | None = None, actor: str = DEFAULT_ACTOR
) -> list[CheckResult]:
    """Run every check for `tenant`, in CHECK_NAMES order, and audit them.

    `session` is the Blocks-side boto3 session (default: a new boto3.Session()); the customer's role is assumed
    from it and every later call uses the role's temporary credentials.
    """
    if session is None:
        import boto3

        session = boto3.Session()
    ctx = _Context(tenant, session)
    results = [check_assume_role(ctx)]
    for name, step in _plan(tenant):
        if ctx.creds is None:
            results.append(skipped(name, "needs assume_role to pass first"))
        elif isinstance(step, str):
            results.append(skipped(name, step))
        else:
            results.append(step(ctx))
    _audit(tenant, results, actor)
    record_outcome(tenant, results, actor)
    return results


def connection_status(results: list[CheckResult], checked_at: datetime, role_arn: str) -> dict[str, Any]:
    """What the web app shows without re-running the checks: connected or failed, when, and each failing check
    with its fix."""
    return {
        "status": "connected" if all(r.ok for r in results) else "failed",
        "checked_at": checked_at.isoformat(),
        "role_arn": role_arn,
        "checks": {r.name: r.status for r in results},
        "failing": [
            {"name": r.name, "error_code": r.error_code, "message": r.message, "remediation": r.remediation}
            for r in results
            if not r.ok
        ],
    }


def record_outcome(
    tenant: TenantConfig, results: list[CheckResult], actor: str = DEFAULT_ACTOR, now: datetime | None = None
) -> dict[str, Any]:
    """Keep the latest outcome as the tenant's connection status in the state store (the YAML keeps only the
    configuration): a role that stops working shows as failed, with the fix, until a later check passes."""
    from blocks_pipelines.state import get_state_store

    doc = connection_status(results, now or datetime.now(timezone.utc), tenant.connection.role_arn)
    get_state_store().put_connection(tenant.id, doc, actor)
    return doc


def _audit(tenant: TenantConfig, results: list[CheckResult], actor: str) -> None:
    from blocks_pipelines.state import get_state_store

    store = get_state_store()
    assume = results[0]
    store.append_audit(
        actor,
        "connect.assume_role",
        f"{tenant.id}/connection/role",
        "ok" if assume.status == "pass" else "denied",
        {"role_arn": tenant.connection.role_arn, "error_code": assume.error_code, "message": assume.message},
    )
    for r in results:
        store.append_audit(
            actor,
            "connect.check",
            f"{tenant.id}/connection/{r.name}",
            r.status,
            {"error_code": r.error_code, "message": r.message},
        )
