"""Builders shared by the connect tests: a tenant pointed at an S3 CUR location, and CUR deliveries on moto S3 laid
out the way AWS writes them. (No tests here; named test_connect_* so it stays in the connect domain.)"""

from __future__ import annotations

import json
import uuid
from datetime import date
from typing import Any

import boto3
from botocore.stub import Stubber

from blocks_pipelines.tenants.config import TenantConfig


def unique_bucket(stem: str = "cur") -> str:
    return f"{stem}-{uuid.uuid4().hex[:12]}"


def make_tenant(
    tenant_id: str = "newco",
    *,
    uri: str = "s3://newco-cur/reports",
    fmt: str = "cur1",
    report: str = "newco-hourly",
    region: str = "us-east-1",
    history_start: date = date(2026, 9, 1),
    athena: dict | None = None,
    external_id: str = "blocks-newco-5d2c9e11aa",
) -> TenantConfig:
    source: dict[str, Any] = {"uri": uri, "format": fmt, "report_name": report, "region": region}
    if athena:
        source["athena"] = athena
    return TenantConfig.model_validate(
        {
            "id": tenant_id,
            "name": f"{tenant_id.title()} Ltd",
            "billing_mode": "blocks_vendor",
            "organization": {
                "payer_account_id": "444455556666",
                "linked_accounts": [{"account_id": "444455556666", "name": "payer"}],
            },
            "connection": {
                "role_arn": "arn:aws:iam::444455556666:role/BlocksDataRead",
                "external_id": external_id,
                "scopes": ["data_read", "purchase"],
                "purchase_role_arn": "arn:aws:iam::444455556666:role/BlocksSavingsPlansPurchase",
            },
            "cur_source": source,
            "history_start": history_start.isoformat(),
            "guardrails": {"max_hourly_commitment": 10.0},
        }
    )


def s3_client(endpoint: str, region: str = "us-east-1"):
    return boto3.client("s3", endpoint_url=endpoint, region_name=region)


def create_bucket(endpoint: str, bucket: str, region: str = "us-east-1") -> None:
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3_client(endpoint, region).create_bucket(**kwargs)


def deliver_legacy(
    endpoint: str, bucket: str, prefix: str, report: str, period: str, data: bytes, name: str = "data.csv"
) -> str:
    """A legacy CUR delivery: data under an assembly folder, the period-level manifest listing it."""
    y, m = map(int, period.split("-"))
    folder = f"{y:04d}{m:02d}01-{y + (m == 12):04d}{m % 12 + 1:02d}01"
    assembly = uuid.uuid4().hex
    base = f"{prefix}{report}/{folder}"
    data_key = f"{base}/{assembly}/{report}-1-{name}"
    manifest = {
        "assemblyId": assembly,
        "account": "444455556666",
        "columns": [],
        "compression": "GZIP" if name.endswith(".gz") else "None",
        "reportKeys": [data_key],
        "billingPeriod": {"start": f"{folder[:8]}T000000.000Z", "end": f"{folder[9:]}T000000.000Z"},
        "bucket": bucket,
        "reportId": uuid.uuid4().hex,
        "reportName": report,
    }
    s3 = s3_client(endpoint)
    s3.put_object(Bucket=bucket, Key=data_key, Body=data)
    key = f"{base}/{report}-Manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    return key


def deliver_export(endpoint: str, bucket: str, prefix: str, export: str, period: str, data: bytes) -> str:
    """A CUR 2.0 / FOCUS Data Exports delivery: data/BILLING_PERIOD=... plus metadata/BILLING_PERIOD=.../manifest."""
    data_key = f"{prefix}{export}/data/BILLING_PERIOD={period}/{export}-00001.snappy.parquet"
    manifest = {
        "executionId": uuid.uuid4().hex,
        "billingPeriod": {"start": f"{period}-01T00:00:00.000Z"},
        "dataFiles": [f"s3://{bucket}/{data_key}"],
        "columns": [],
    }
    s3 = s3_client(endpoint)
    s3.put_object(Bucket=bucket, Key=data_key, Body=data)
    key = f"{prefix}{export}/metadata/BILLING_PERIOD={period}/{export}-Manifest.json"
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
    return key


class StubbingSession:
    """A boto3 session whose clients for some services answer from a Stubber (for what moto cannot refuse, such as
    a wrong ExternalId or a bucket policy Deny); the other services go to moto as usual.

    stubs: service -> [(operation, response dict, None) or (operation, None, AWS error code)], in call order.
    """

    def __init__(self, stubs: dict[str, list[tuple[str, dict | None, str | None]]]):
        self._session = boto3.Session()
        self._stubs = stubs
        self.stubbers: list[Stubber] = []

    def client(self, service_name: str, **kwargs):
        client = self._session.client(service_name, **kwargs)
        if service_name in self._stubs:
            stubber = Stubber(client)
            for op, response, code in self._stubs[service_name]:
                if code is None:
                    stubber.add_response(op, response or {})
                else:
                    stubber.add_client_error(
                        op, service_error_code=code, service_message=f"stubbed {code}", http_status_code=403
                    )
            stubber.activate()
            self.stubbers.append(stubber)
        return client


def customer_session(tenant: TenantConfig) -> boto3.Session:
    """A session in the customer's account (moto keeps Glue/Athena per account: the role's account is the
    customer's)."""
    creds = boto3.client("sts", region_name="us-east-1").assume_role(
        RoleArn=tenant.connection.role_arn, RoleSessionName="customer-admin"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=tenant.cur_source.region,
    )


# ---- a real Dagster webserver over a code location that loads the tenant registry ------------------------------

STANDIN_LOCATION = '''
"""Test code location: every registered tenant's [t, "cur_line_items"] asset, the way the platform defines it."""
import dagster as dg
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry
from blocks_pipelines.tenants.partitions import tenant_hourly_partitions

USE_INGESTION = {use_ingestion}


def _standin(t):
    @dg.asset(key=[t.id, "cur_line_items"], group_name=t.id, partitions_def=tenant_hourly_partitions(t),
              backfill_policy=dg.BackfillPolicy.single_run())
    def _asset():
        return None
    return dg.Definitions(assets=[_asset])


if USE_INGESTION:
    from blocks_pipelines.ingestion.defs import build_ingestion_defs as _build
else:
    _build = _standin
defs = dg.Definitions.merge(*[_build(t) for t in load_registry(get_settings().tenants_dir)])
'''


class DagsterWebserver:
    """dagster-webserver on a free port with its own DAGSTER_HOME; no daemon, so backfills stay REQUESTED."""

    def __init__(self, workdir, *, use_ingestion: bool = False):
        import os
        import socket

        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "location.py").write_text(STANDIN_LOCATION.format(use_ingestion=use_ingestion))
        (workdir / "workspace.yaml").write_text(
            "load_from:\n  - python_file:\n      relative_path: location.py\n      location_name: blocks\n"
        )
        (workdir / "dagster_home").mkdir(exist_ok=True)
        (workdir / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "DAGSTER_HOME": str(workdir / "dagster_home")}
        self.proc = None

    def __enter__(self):
        import subprocess
        import sys
        import time
        import urllib.request
        from pathlib import Path

        exe = Path(sys.executable).parent / "dagster-webserver"
        self.log = open(self.workdir / "webserver.log", "wb")
        self.proc = subprocess.Popen(
            [str(exe), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=self.workdir,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.workdir / "webserver.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{self.url}/server_info", timeout=2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dagster-webserver did not start in 90 s")

    def __exit__(self, *exc):
        import os
        import signal

        if self.proc and self.proc.poll() is None:
            # the webserver and the code servers it started share its process group; its instance is throwaway,
            # so no graceful shutdown is needed
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=20)
        self.log.close()
