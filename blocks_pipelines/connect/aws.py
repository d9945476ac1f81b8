"""boto3 plumbing for the connect flow: clients with the platform's endpoint override, role assumption, and the
mapping from AWS error codes to what they mean for a customer.

Endpoints: S3 honours BLOCKS_S3_ENDPOINT_URL (settings); every other service uses boto3's own resolution, which
reads AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> (how tests point STS, Glue, Athena and CE at moto).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError

from blocks_pipelines.settings import get_settings

DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403", "Forbidden"}
BLOCKS_CREDENTIAL_CODES = {
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
}
NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket", "EntityNotFoundException"}
COST_EXPLORER_REGION = "us-east-1"  # Cost Explorer has a single endpoint


class ClientSource(Protocol):
    """What the checks need from a session: boto3.Session.client's signature (tests wrap it to attach Stubbers)."""

    def client(self, service_name: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime | None

    def client_kwargs(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    err = exc.response.get("Error", {})
    return f"{err.get('Code', '?')}: {err.get('Message') or exc}"


def make_client(source: ClientSource, service: str, region: str, creds: RoleCredentials | None = None) -> Any:
    kwargs: dict[str, Any] = {"region_name": region}
    if service == "s3" and get_settings().s3_endpoint_url:
        kwargs["endpoint_url"] = get_settings().s3_endpoint_url
    if creds is not None:
        kwargs.update(creds.client_kwargs())
    return source.client(service, **kwargs)


def session_name(tenant_id: str) -> str:
    """Shows in the customer's CloudTrail as the assumed-role session: say who and why."""
    return f"blocks-{tenant_id}"[:64]


def assume_role(source: ClientSource, role_arn: str, external_id: str, tenant_id: str) -> RoleCredentials:
    sts = make_client(source, "sts", get_settings().aws_region)
    resp = sts.assume_role(
        RoleArn=role_arn, RoleSessionName=session_name(tenant_id), ExternalId=external_id, DurationSeconds=900
    )
    c = resp["Credentials"]
    return RoleCredentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"], c.get("Expiration"))
