"""Connect flow figures: template generation, backfill planning and a full connection test against moto.

Targets: a tenant's template + quick-create link + preview in < 20 ms; 200 tenants' backfill plans (24 months each)
in < 1 s; one connection test (7 checks, role assumed) in < 2 s against a local endpoint.

Run: python -m benchmarks.bench_connect                      (200 tenants, 20 connection tests)
     BLOCKS_BENCH_CONNECT_TENANTS=1000 python -m benchmarks.bench_connect"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time
from datetime import date, datetime, timezone

TENANTS = int(os.environ.get("BLOCKS_BENCH_CONNECT_TENANTS", "200"))
CHECK_RUNS = 20


def _tenant(i: int, uri: str = "s3://bench-cur/reports", history_start: date = date(2024, 11, 1)):
    from blocks_pipelines.tenants.config import TenantConfig

    return TenantConfig.model_validate({
        "id": f"tenant_{i:04d}", "name": f"Tenant {i}", "billing_mode": "blocks_vendor",
        "organization": {"payer_account_id": "123456789012"},
        "connection": {"role_arn": "arn:aws:iam::123456789012:role/BlocksDataRead",
                       "external_id": f"blocks-tenant-{i:04d}-0123456789"},
        "cur_source": {"uri": uri, "format": "cur1", "report_name": "bench-hourly", "region": "us-east-1",
                       "athena": {"database": "cur", "table": "bench", "workgroup": "primary"}},
        "history_start": history_start.isoformat(), "guardrails": {"max_hourly_commitment": 5.0},
    })  # fmt: skip


def row(label: str, value: float, unit: str, target: str) -> None:
    print(f"{label:48} {value:10.3f} {unit:6} target {target}")


def bench_templates() -> None:
    from blocks_pipelines.connect.template import (
        build_template,
        default_template_url,
        policy_preview,
        quick_create_url,
        render_yaml,
    )  # fmt: skip

    tenants = [_tenant(i) for i in range(TENANTS)]
    t0 = time.perf_counter()
    for t in tenants:
        render_yaml(build_template(t, with_cur_export=True, with_purchase_role=True))
        quick_create_url(t, default_template_url(t), with_purchase_role=True)
        policy_preview(t, with_purchase_role=True)
    per = (time.perf_counter() - t0) / len(tenants) * 1000
    row(f"template+link+preview per tenant ({TENANTS} tenants)", per, "ms", "< 20 ms")


def bench_backfill_plans() -> None:
    from blocks_pipelines.connect.backfill import backfill_months

    tenants = [_tenant(i) for i in range(TENANTS)]
    now = datetime(2026, 11, 25, 12, tzinfo=timezone.utc)
    t0 = time.perf_counter()
    months = sum(len(backfill_months(t, now)) for t in tenants)
    row(f"backfill plans, {TENANTS} tenants ({months} month ranges)", time.perf_counter() - t0, "s", "< 1 s")


def bench_connection_checks() -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per moto request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    with tempfile.TemporaryDirectory() as home:
        os.environ.update({
            "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": url, "BLOCKS_S3_ENDPOINT_URL": url, "BLOCKS_HOME": home,
            "BLOCKS_STATE_BACKEND": "sqlite",
        })  # fmt: skip
        from blocks_pipelines.connect.checks import run_connection_checks

        s3 = boto3.client("s3", endpoint_url=url)
        s3.create_bucket(Bucket="bench-cur")
        base = "reports/bench-hourly/20261101-20261201"
        s3.put_object(Bucket="bench-cur", Key=f"{base}/a/bench-hourly-1.csv.gz", Body=b"x")
        s3.put_object(
            Bucket="bench-cur",
            Key=f"{base}/bench-hourly-Manifest.json",
            Body=json.dumps(
                {
                    "assemblyId": "a",
                    "reportKeys": [f"{base}/a/bench-hourly-1.csv.gz"],
                    "billingPeriod": {"start": "20261101T000000.000Z"},
                }
            ).encode(),
        )
        tenant = _tenant(0)
        creds = boto3.client("sts").assume_role(RoleArn=tenant.connection.role_arn, RoleSessionName="setup")
        c = creds["Credentials"]
        customer = boto3.Session(
            aws_access_key_id=c["AccessKeyId"],
            aws_secret_access_key=c["SecretAccessKey"],
            aws_session_token=c["SessionToken"],
            region_name="us-east-1",
        )
        customer.client("glue").create_database(DatabaseInput={"Name": "cur"})
        customer.client("glue").create_table(DatabaseName="cur", TableInput={"Name": "bench"})
        run_connection_checks(tenant)  # warm imports and the state db
        times = []
        for _ in range(CHECK_RUNS):
            t0 = time.perf_counter()
            results = run_connection_checks(tenant)
            times.append(time.perf_counter() - t0)
        assert all(r.status == "pass" for r in results), [r.message for r in results if r.status != "pass"]
    server.stop()
    row(f"connection test, 7 checks + audit (median of {CHECK_RUNS})", statistics.median(times), "s", "< 2 s")


def main() -> None:
    bench_templates()
    bench_backfill_plans()
    bench_connection_checks()


if __name__ == "__main__":
    main()
