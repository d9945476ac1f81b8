"""ingest_delivery end to end: deliveries in AWS layouts -> lake day files, restatements, hour ranges, S3 (moto)."""

import json
import re
from datetime import date, datetime, timedelta, timezone

import boto3
import polars as pl
import pytest

from blocks_pipelines.ingestion.deliveries import discover_deliveries
from blocks_pipelines.ingestion.ingest import ingest_delivery
from blocks_pipelines.lake import months
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry, resolve_source_uri
from tests.synthetic.cur_frames import cur1_frame, cur2_frame, focus_frame, write_export_delivery, write_legacy_delivery

ACME_ACCOUNTS = ["111111111112", "111111111113"]


def tenants():
    return {t.id: t for t in load_registry(get_settings().tenants_dir)}


def with_billing_accounts(tenant, **ids):
    """The tenant with other providers' billing accounts registered, as `blocks tenants add-account` writes them."""
    return tenant.model_validate({**tenant.model_dump(mode="json"), "billing_accounts": ids})


def source_root(tenant):
    return resolve_source_uri(tenant.cur_source, get_settings().home)


def lake_frame(tenant_id, lake=None):
    lake = lake or get_settings().lake_uri
    return pl.read_parquet(months.current_files(lake, tenant_id), hive_partitioning=False)


def test_legacy_delivery_lands_as_one_file_per_day_with_matching_totals(blocks_env, tmp_path):
    acme = tenants()["acme_corp"]
    frame = cur1_frame(3000, "2026-10", "111111111111", ACME_ACCOUNTS)
    write_legacy_delivery(source_root(acme), "acme-cur-hourly", [frame], "2026-10", tmp_path)
    [delivery] = discover_deliveries(acme, today=date(2026, 11, 25))
    summary = ingest_delivery(acme, delivery.manifest_uri)

    lake = lake_frame("acme_corp")
    tenant_dir = blocks_env / "lake" / "cur_line_items" / "tenant_id=acme_corp"
    day_files = sorted(tenant_dir.glob("billing_period=2026-10/version=*/usage_date=*/data.parquet"))
    assert len(day_files) == 31
    assert summary.rows == lake.height == 3000
    assert summary.hours == 744
    stages = summary.to_dict()["seconds"]
    assert list(stages) == ["read_normalize_split", "validate", "publish", "verify"]
    assert all(s > 0 for s in stages.values())
    expected = frame["lineItem/UnblendedCost"].cast(pl.Float64).sum()
    source_days = frame.group_by(pl.col("lineItem/UsageStartDate").str.slice(0, 10)).agg(
        pl.col("lineItem/UnblendedCost").cast(pl.Float64).sum()
    )
    assert len(summary.unblended_by_day) == 31
    for day, cost in source_days.iter_rows():
        assert summary.unblended_by_day[day] == pytest.approx(cost, abs=1e-6)
    assert lake["unblended_cost"].sum() == pytest.approx(expected, abs=1e-6)
    [period] = summary.periods
    assert period.matches and period.billing_period == "2026-10"
    by_type = frame.group_by("lineItem/LineItemType").agg(pl.col("lineItem/UnblendedCost").cast(pl.Float64).sum())
    for lit, cost in by_type.iter_rows():
        assert summary.cost_by_line_item_type[lit] == pytest.approx(cost)
    # every file holds only its own day, partition column included
    one = pl.read_parquet(day_files[4], hive_partitioning=False)
    assert one["usage_date"].unique().to_list() == [date(2026, 10, 5)]
    assert json.loads(one["tags"][0])["user:team"] in {"web", "api", "data", "ml"}


def test_restatement_replaces_the_month_and_never_doubles(blocks_env, tmp_path):
    globex = tenants()["globex"]
    root = source_root(globex)
    write_export_delivery(
        root, "globex-cur2", [cur2_frame(2000, "2026-10", "222222222222", ACME_ACCOUNTS)], "2026-10", tmp_path / "a"
    )
    write_export_delivery(
        root, "globex-cur2", [cur2_frame(500, "2026-11", "222222222222", ACME_ACCOUNTS)], "2026-11", tmp_path / "b"
    )
    for d in discover_deliveries(globex, today=date(2026, 11, 25)):
        ingest_delivery(globex, d.manifest_uri)
    november = lake_frame("globex").filter(pl.col("billing_period") == "2026-11")["unblended_cost"].sum()

    # October is restated (final, fewer rows, different totals): it replaces October only.
    restated = cur2_frame(1500, "2026-10", "222222222222", ACME_ACCOUNTS, invoice_id="INV-1", offset=7)
    write_export_delivery(root, "globex-cur2", [restated], "2026-10", tmp_path / "c")
    october = [d for d in discover_deliveries(globex, today=date(2026, 11, 25)) if d.billing_period == "2026-10"][0]
    assert october.is_final
    summary = ingest_delivery(globex, october.manifest_uri)

    lake = lake_frame("globex")
    oct_rows = lake.filter(pl.col("billing_period") == "2026-10")
    assert oct_rows.height == 1500
    assert oct_rows["delivery_id"].unique().to_list() == [october.delivery_id]
    assert oct_rows["unblended_cost"].sum() == pytest.approx(restated["line_item_unblended_cost"].sum())
    assert lake.filter(pl.col("billing_period") == "2026-11")["unblended_cost"].sum() == pytest.approx(november)
    assert summary.deliveries[0]["is_final"] is True


def test_hour_range_replaces_exactly_those_hours(blocks_env, tmp_path):
    initech = tenants()["initech"]
    root = source_root(initech)
    first = focus_frame(2400, "2026-10", "333333333333", ACME_ACCOUNTS)
    write_export_delivery(root, "initech-focus", [first], "2026-10", tmp_path / "a")
    [d1] = discover_deliveries(initech, today=date(2026, 11, 1))
    ingest_delivery(initech, d1.manifest_uri)
    before = lake_frame("initech")

    second = focus_frame(2400, "2026-10", "333333333333", ACME_ACCOUNTS).with_columns(pl.col("BilledCost") * 2)
    write_export_delivery(root, "initech-focus", [second], "2026-10", tmp_path / "b")
    [d2] = discover_deliveries(initech, today=date(2026, 11, 1))
    lo, hi = datetime(2026, 10, 3, 22, tzinfo=timezone.utc), datetime(2026, 10, 4, 3, tzinfo=timezone.utc)
    summary = ingest_delivery(initech, d2.manifest_uri, hour_range=(lo, hi))

    after = lake_frame("initech")
    inside = (pl.col("usage_start") >= lo) & (pl.col("usage_start") < hi)
    assert after.height == before.height
    assert after.filter(inside)["delivery_id"].unique().to_list() == [d2.delivery_id]
    assert after.filter(~inside)["delivery_id"].unique().to_list() == [d1.delivery_id]
    doubled = 2 * before.filter(inside)["unblended_cost"].sum()
    assert after.filter(inside)["unblended_cost"].sum() == pytest.approx(doubled)
    assert summary.hours == 5 and summary.matches
    assert sorted(after.filter(inside)["usage_date"].unique().to_list()) == [date(2026, 10, 3), date(2026, 10, 4)]


def test_source_and_lake_on_s3(blocks_env, aws_env, tmp_path, monkeypatch):
    s3 = boto3.client("s3", endpoint_url=aws_env)
    for b in ("cur-src-bucket", "lake-bucket"):
        s3.create_bucket(Bucket=b)
    acme = tenants()["acme_corp"]
    src_root = "s3://cur-src-bucket/cur"
    frame = cur1_frame(800, "2026-10", "111111111111", ACME_ACCOUNTS)
    write_legacy_delivery(src_root, "acme-cur-hourly", [frame], "2026-10", tmp_path, suffix="csv.gz")
    lake = "s3://lake-bucket/lake"
    summary = ingest_delivery(acme, f"{src_root}/acme-cur-hourly", lake_uri=lake)
    assert summary.rows == 800 and summary.matches
    objects = [o["Key"] for o in s3.list_objects_v2(Bucket="lake-bucket", Prefix="lake/")["Contents"]]
    keys = [k for k in objects if k.endswith("/data.parquet")]
    month = "lake/cur_line_items/tenant_id=acme_corp/billing_period=2026-10"
    # the month's 31 day files in one version folder, its pointer, and Athena's manifest naming those 31 files
    assert len(keys) == 31 and len({k.split("/usage_date=")[0] for k in keys}) == 1
    assert set(objects) - set(keys) == {
        f"{month}/_current.json",
        "lake/cur_line_items/_athena/tenant_id=acme_corp/billing_period=2026-10/symlink.txt",
    }
    symlink = (
        s3.get_object(
            Bucket="lake-bucket",
            Key="lake/cur_line_items/_athena/tenant_id=acme_corp/billing_period=2026-10/symlink.txt",
        )["Body"]
        .read()
        .decode()
        .split()
    )
    assert sorted(symlink) == sorted(f"s3://lake-bucket/{k}" for k in keys)
    body = s3.get_object(Bucket="lake-bucket", Key=keys[0])["Body"].read()
    local = tmp_path / "one.parquet"
    local.write_bytes(body)
    assert pl.read_parquet(local)["tenant_id"].unique().to_list() == ["acme_corp"]


def test_bare_folder_without_manifest_and_zip_and_parquet_legacy(blocks_env, tmp_path):
    acme = tenants()["acme_corp"]
    folder = tmp_path / "drop"
    folder.mkdir()
    frame = cur1_frame(600, "2026-10", "111111111111", ACME_ACCOUNTS)
    import zipfile

    with zipfile.ZipFile(folder / "part-1.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("part-1.csv", frame.slice(0, 300).write_csv())
    frame.slice(300).write_parquet(folder / "part-2.parquet")
    (folder / "._part-2.parquet").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")  # left by a copy
    (folder / "_SUCCESS").write_bytes(b"")
    summary = ingest_delivery(acme, str(folder))
    assert summary.rows == 600 and summary.matches
    assert lake_frame("acme_corp")["unblended_cost"].sum() == pytest.approx(
        frame["lineItem/UnblendedCost"].cast(pl.Float64).sum()
    )


def _athena_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Legacy CUR as the Athena integration writes it: `lineItem/UsageStartDate` -> `line_item_usage_start_date`
    (typed timestamps, numbers as doubles), `resourceTags/user:team` -> `resource_tags_user_team`."""

    def snake(name: str) -> str:
        return re.sub(r"[^a-z0-9]+", "_", re.sub(r"([A-Z])", r"_\1", name).lower()).strip("_")

    out = frame.rename({c: snake(c) for c in frame.columns})
    times = [c for c in out.columns if c.endswith("_date") and out[c].str.contains("T").any()]
    costs = [c for c in out.columns if c.endswith(("_cost", "_amount"))]
    return out.with_columns(
        [pl.col(c).str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC") for c in times]
        + [pl.col(c).cast(pl.Float64) for c in costs]
    )


def test_a_legacy_report_with_athena_integration_is_read_without_its_status_table(blocks_env, tmp_path):
    """Legacy CUR for Athena: Parquet under <report>/<report>/year=/month=/ and a one-column status table beside
    it; pointing at the report folder ingests every month and leaves the status table out."""
    acme = tenants()["acme_corp"]
    report = tmp_path / "acme-athena"
    frames = {bp: _athena_columns(cur1_frame(400, bp, "111111111111", ACME_ACCOUNTS)) for bp in ("2026-09", "2026-10")}
    assert "line_item_usage_start_date" in frames["2026-09"].columns
    for bp, frame in frames.items():
        month = report / "acme-athena" / f"year={bp[:4]}" / f"month={int(bp[5:])}"
        month.mkdir(parents=True)
        frame.write_parquet(month / "acme-athena-00001.snappy.parquet")
    status = report / "cost_and_usage_data_status"
    status.mkdir()
    pl.DataFrame({"status": ["READY"]}).write_parquet(status / "cost_and_usage_data_status.parquet")
    summary = ingest_delivery(acme, str(report))
    assert summary.rows == 800 and summary.matches
    assert sorted(p.billing_period for p in summary.periods) == ["2026-09", "2026-10"]
    source = pl.concat(frames.values())
    lake = lake_frame("acme_corp")
    assert lake["unblended_cost"].sum() == pytest.approx(source["line_item_unblended_cost"].sum())
    tagged = source["resource_tags_user_team"].drop_nulls()
    tagged = tagged.filter(tagged != "").len()
    assert lake.filter(pl.col("tags").str.contains('"user:team"')).height == tagged > 0


def test_hours_a_new_delivery_has_no_rows_for_are_cleared(blocks_env, tmp_path):
    globex = tenants()["globex"]
    root = source_root(globex)
    full = cur2_frame(1488, "2026-10", "222222222222", ACME_ACCOUNTS)
    write_export_delivery(root, "globex-cur2", [full], "2026-10", tmp_path / "a")
    [d1] = discover_deliveries(globex, today=date(2026, 11, 1))
    ingest_delivery(globex, d1.manifest_uri)
    lo, hi = datetime(2026, 10, 9, tzinfo=timezone.utc), datetime(2026, 10, 9, 6, tzinfo=timezone.utc)
    start = pl.col("line_item_usage_start_date").dt.replace_time_zone("UTC")
    restated = full.filter(~((start >= lo) & (start < hi)))  # those six hours were refunded away
    write_export_delivery(root, "globex-cur2", [restated], "2026-10", tmp_path / "b")
    [d2] = discover_deliveries(globex, today=date(2026, 11, 1))
    summary = ingest_delivery(globex, d2.manifest_uri, hour_range=(lo, hi))
    lake = lake_frame("globex")
    assert summary.rows == 0
    assert lake.filter((pl.col("usage_start") >= lo) & (pl.col("usage_start") < hi)).height == 0
    assert lake.height == restated.height


AZURE_FOCUS = """\ufeffProviderName,InvoiceId,BillingAccountId,SubAccountId,BillingPeriodStart,BillingPeriodEnd,\
ChargePeriodStart,ChargePeriodEnd,ChargeCategory,BilledCost,EffectiveCost,ListCost,BillingCurrency,ServiceName,\
ServiceCategory,SkuPriceDetails,ResourceId,RegionId,CommitmentDiscountId,CommitmentDiscountType,\
CommitmentDiscountStatus,Tags
Microsoft Azure,INV-1,8a1b2c3d-0000-4a00-9000-000000000001,sub-1,2026-05-01T00:00:00Z,2026-06-01T00:00:00Z,\
2026-05-01T00:00:00Z,2026-05-01T01:00:00Z,Purchase,1121.840640,0.000000,1121.840640,USD,Virtual Machines,Compute,\
"{""x_Term"":""P1Y""}",/subscriptions/sub-1/reservations/r1,southeastasia,/subscriptions/sub-1/reservations/r1,\
Reservation,,"{""Environment"":""staging""}"
Microsoft Azure,INV-1,8a1b2c3d-0000-4a00-9000-000000000001,sub-1,2026-05-01T00:00:00Z,2026-06-01T00:00:00Z,\
2026-05-01T01:00:00Z,2026-05-01T02:00:00Z,Usage,0.000000,0.128064,0.192000,USD,Virtual Machines,Compute,\
"{""InstanceType"":""Standard_D4s_v5"",""CoreCount"":4}",/subscriptions/sub-1/vm-1,southeastasia,\
/subscriptions/sub-1/reservations/r1,Reservation,Used,"{""Environment"":""prod"",""Owner"":""team-a""}"
Microsoft Azure,INV-2,8a1b2c3d-0000-4a00-9000-000000000002,sub-4,2026-05-01T00:00:00Z,2026-06-01T00:00:00Z,\
2026-05-09T00:00:00Z,2026-05-10T00:00:00Z,Usage,161.842418,161.842418,179.824909,USD,Azure Monitor,\
Management and Governance,"{""x_DataType"":""Logs""}",/subscriptions/sub-4/law-1,southeastasia,,,,
"""


def test_an_azure_focus_export_keeps_its_provider_and_per_day_totals(blocks_env, tmp_path):
    """Shaped like Azure's FOCUS 1.2 CSV: BOM, a reservation purchase, used commitment, a one-day charge period."""
    src = tmp_path / "azure-focus.csv"
    src.write_text(AZURE_FOCUS, encoding="utf-8")
    lake = str(tmp_path / "lake")
    initech = with_billing_accounts(
        tenants()["initech"],
        azure=[
            "/providers/Microsoft.Billing/billingAccounts/8a1b2c3d-0000-4a00-9000-000000000001",
            "8A1B2C3D-0000-4A00-9000-000000000002",
        ],
    )  # spelled as the portal shows it: ids are case-insensitive
    summary = ingest_delivery(initech, str(src), lake_uri=lake, fmt="auto")
    assert summary.matches and summary.rows == 3
    df = pl.read_parquet(f"{lake}/cur_line_items/tenant_id=initech/**/*.parquet", hive_partitioning=False)
    assert set(df["provider"]) == {"Microsoft Azure"} and set(df["source_format"]) == {"focus"}
    per_day = dict(df.group_by("usage_date").agg(pl.col("unblended_cost").sum()).iter_rows())
    assert per_day == {date(2026, 5, 1): pytest.approx(1121.84064), date(2026, 5, 9): pytest.approx(161.842418)}
    assert summary.unblended_by_day == {
        "2026-05-01": pytest.approx(1121.84064),
        "2026-05-09": pytest.approx(161.842418),
    }
    by_type = dict(
        zip(df.sort("usage_start")["line_item_type"], df.sort("usage_start")["amortized_cost"], strict=False)
    )
    assert by_type == {"RIFee": 0.0, "DiscountedUsage": pytest.approx(0.128064), "Usage": pytest.approx(161.842418)}
    vm = df.filter(pl.col("line_item_type") == "DiscountedUsage")
    assert vm["instance_type"].item() == "Standard_D4s_v5"
    assert json.loads(vm["tags"].item()) == {"Environment": "prod", "Owner": "team-a"}


def _aws_focus_parquet(path, rows: int):
    """Shaped like AWS Data Exports' FOCUS 1.0 Parquet: decimal costs, zoned timestamps, Tags as a Parquet MAP."""
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    hour = timedelta(hours=1)
    charge_start = [datetime(2026, 9, 1, tzinfo=timezone.utc) + (i % 72) * hour for i in range(rows)]
    money = pa.decimal128(38, 10)
    table = pa.table(
        {
            "ProviderName": ["AWS"] * rows,
            "BillingAccountId": ["333333333333"] * rows,
            "SubAccountId": ["333333333334"] * rows,
            "BillingPeriodStart": pa.array(
                [datetime(2026, 9, 1, tzinfo=timezone.utc)] * rows, pa.timestamp("ms", "UTC")
            ),
            "ChargePeriodStart": pa.array(charge_start, pa.timestamp("ms", "UTC")),
            "ChargePeriodEnd": pa.array([c + hour for c in charge_start], pa.timestamp("ms", "UTC")),
            "ChargeCategory": ["Usage" if i % 5 else "Tax" for i in range(rows)],
            "BilledCost": pa.array([Decimal(f"{(i % 97) / 7:.10f}") for i in range(rows)], money),
            "EffectiveCost": pa.array([Decimal(f"{(i % 97) / 8:.10f}") for i in range(rows)], money),
            "ListCost": pa.array([Decimal(f"{(i % 97) / 6:.10f}") for i in range(rows)], money),
            "BillingCurrency": ["USD"] * rows,
            "ServiceName": ["Amazon Elastic Compute Cloud"] * rows,
            "x_ServiceCode": ["AmazonEC2"] * rows,
            "x_UsageType": ["USE1-BoxUsage:m5.large"] * rows,
            "RegionId": ["us-east-1"] * rows,
            "Tags": pa.array(
                [[("user:team", "web"), ("aws:createdBy", "ci")] if i % 2 else [] for i in range(rows)],
                pa.map_(pa.string(), pa.string()),
            ),
        }
    )
    pq.write_table(table, path)
    return table


def test_an_aws_focus_parquet_export_with_decimal_costs_and_map_tags(blocks_env, tmp_path):
    src = tmp_path / "focus-2026-09.parquet"
    table = _aws_focus_parquet(src, 360)
    lake = str(tmp_path / "lake")
    summary = ingest_delivery("initech", str(src), lake_uri=lake)
    assert summary.matches and summary.rows == 360 and summary.hours == 72
    source = pl.from_arrow(table.select(["ChargePeriodStart", "BilledCost"]))
    per_day = source.group_by(pl.col("ChargePeriodStart").dt.date().cast(pl.String)).agg(
        pl.col("BilledCost").cast(pl.Float64).sum()
    )
    assert summary.unblended_by_day == {d: pytest.approx(c, abs=1e-6) for d, c in per_day.iter_rows()}
    df = pl.read_parquet(f"{lake}/cur_line_items/tenant_id=initech/**/*.parquet", hive_partitioning=False)
    assert set(df["line_item_type"]) == {"Usage", "Tax"} and set(df["instance_type"]) == {"m5.large"}
    tagged = df.filter(pl.col("tags") != "{}")
    assert tagged.height == 180 and json.loads(tagged["tags"][0]) == {"user:team": "web", "aws:createdBy": "ci"}


@pytest.mark.parametrize(
    "tenant_id, fmt, tag_column", [("globex", "cur2", "resource_tags"), ("initech", "focus", "Tags")]
)
def test_parquet_map_columns_as_aws_writes_them_keep_every_tag(blocks_env, tmp_path, tenant_id, fmt, tag_column):
    """AWS writes CUR 2.0's product/resource_tags/cost_category and FOCUS Tags as Parquet MAP columns."""
    from collections import Counter

    import pyarrow.parquet as pq

    from blocks_pipelines.sample_data import generate_tenant_cur

    out = tmp_path / "src"
    s = generate_tenant_cur(
        tenants()[tenant_id],
        fmt=fmt,
        out_uri=str(out),
        months=1,
        start="2026-11",
        seed=3,
        end=datetime(2026, 11, 2, tzinfo=timezone.utc),
        scale=0.2,
    )
    source = pq.read_table(s.files)
    summary = ingest_delivery(tenant_id, str(out), lake_uri=str(tmp_path / "lake"))
    assert summary.matches
    lake = lake_frame(tenant_id, str(tmp_path / "lake"))

    def canonical_key(k: str) -> str:
        return k.replace("user_", "user:", 1) if fmt == "cur2" and k.startswith("user_") else k

    expected = Counter(
        json.dumps({canonical_key(k): v for k, v in (m or []) if v}, sort_keys=True)
        for m in source.column(tag_column).to_pylist()
    )
    got = Counter(json.dumps(json.loads(t), sort_keys=True) for t in lake["tags"])
    assert got == expected and len(expected) > 1
    if fmt == "cur2":  # attributes only the product map holds
        assert lake.filter(pl.col("line_item_type") == "Usage")["service_name"].null_count() == 0
        assert (lake["cost_categories"] != "{}").any()


GCP_FOCUS = """\
BillingAccountId,BillingAccountName,BillingCurrency,BillingPeriodStart,BillingPeriodEnd,ChargeCategory,\
ChargePeriodStart,ChargePeriodEnd,BilledCost,EffectiveCost,ListCost,ProviderName,ServiceName,ServiceCategory,\
RegionId,ResourceId,SubAccountId,Tags
01A2B3-C4D5E6-F7A8B9,Example,USD,2026-05-01 00:00:00 UTC,2026-06-01 00:00:00 UTC,Usage,2026-05-01 23:00:00 UTC,\
2026-05-02 00:00:00 UTC,12.5,11.25,12.5,Google Cloud,Compute Engine,Compute,europe-west1,projects/p1/instances/vm-1,\
p1,"{""env"":""prod""}"
01A2B3-C4D5E6-F7A8B9,Example,USD,2026-05-01 00:00:00 UTC,2026-06-01 00:00:00 UTC,Credit,2026-05-02 00:00:00 UTC,\
2026-05-02 01:00:00 UTC,-2.5,-2.5,0,Google Cloud,Compute Engine,Compute,europe-west1,,p1,
"""
OCI_FOCUS = """\
BillingAccountId,BillingCurrency,BillingPeriodStart,ChargeCategory,ChargePeriodStart,ChargePeriodEnd,BilledCost,\
EffectiveCost,ListCost,ProviderName,ServiceName,RegionId,SubAccountId,Tags
ocid1.tenancy.oc1..aaaa,USD,2026-05-01T00:00Z,Usage,2026-05-02T22:00Z,2026-05-02T23:00Z,3.125,3.125,4,Oracle,\
Compute,eu-frankfurt-1,ocid1.compartment.oc1..bbbb,"{""Oracle-Tags.CreatedBy"":""ci""}"
ocid1.tenancy.oc1..aaaa,USD,2026-05-01T00:00Z,Tax,2026-05-02T23:00Z,2026-05-03T00:00Z,0.5,0.5,0,Oracle,Compute,\
eu-frankfurt-1,ocid1.compartment.oc1..bbbb,
"""


def test_gcp_and_oci_focus_exports_keep_their_provider_and_per_day_totals(blocks_env, tmp_path):
    """BigQuery's CSV timestamps (`... UTC`) and OCI's minute-precision ones; no AWS payer to check."""
    folder = tmp_path / "focus"
    folder.mkdir()
    (folder / "gcp.csv").write_text(GCP_FOCUS)
    (folder / "oci.csv").write_text(OCI_FOCUS)
    lake = str(tmp_path / "lake")
    initech = with_billing_accounts(tenants()["initech"], gcp=["01a2b3-c4d5e6-f7a8b9"], oci=["ocid1.tenancy.oc1..aaaa"])
    summary = ingest_delivery(initech, str(folder), lake_uri=lake)
    assert summary.matches and summary.rows == 4
    assert summary.unblended_by_day == {"2026-05-01": pytest.approx(12.5), "2026-05-02": pytest.approx(1.125)}
    assert summary.cost_by_line_item_type == {
        "Usage": pytest.approx(15.625),
        "Credit": pytest.approx(-2.5),
        "Tax": pytest.approx(0.5),
    }
    df = pl.read_parquet(f"{lake}/cur_line_items/tenant_id=initech/**/*.parquet", hive_partitioning=False)
    assert df.group_by("provider").len().sort("provider").rows() == [("Google Cloud", 2), ("Oracle", 2)]
    assert json.loads(df.filter(pl.col("provider") == "Oracle").sort("usage_start")["tags"][0]) == {
        "Oracle-Tags.CreatedBy": "ci"
    }


def test_a_data_exports_manifest_without_columns_takes_the_format_from_the_data(blocks_env, tmp_path):
    """Only a manifest's column list says FOCUS vs CUR 2.0; without it the data file's columns decide."""
    root = tmp_path / "exports"
    frame = focus_frame(50, "2026-10", "333333333333", ["333333333334"])
    write_export_delivery(str(root), "initech-focus", [frame], "2026-10", tmp_path / "w")
    manifest = next(root.rglob("*-Manifest.json"))
    doc = json.loads(manifest.read_text())
    del doc["columns"]
    manifest.write_text(json.dumps(doc))
    summary = ingest_delivery("initech", str(manifest), lake_uri=str(tmp_path / "lake"))
    assert summary.matches and summary.rows == 50
    assert summary.deliveries[0]["format"] == "focus"


def test_two_deliveries_of_a_month_without_manifests_are_refused_not_summed(blocks_env, tmp_path):
    from blocks_pipelines.ingestion.errors import AmbiguousSourceError

    acme = tenants()["acme_corp"]
    report = tmp_path / "copy"
    for n, assembly in ((400, "aaaa-1111"), (500, "bbbb-2222")):  # AWS's morning and evening deliveries
        frame = cur1_frame(n, "2026-10", "111111111111", ACME_ACCOUNTS)
        write_legacy_delivery(
            str(report), "acme-cur-hourly", [frame], "2026-10", tmp_path / assembly, assembly_id=assembly
        )
    # with its manifests the copy is read as AWS wrote it: the newest delivery of the month
    newest = ingest_delivery(acme, str(report), lake_uri=str(tmp_path / "lake0"))
    assert newest.rows == 500 and newest.deliveries[0]["delivery_id"] == "bbbb-2222"
    for manifest in report.rglob("*-Manifest.json"):
        manifest.unlink()
    with pytest.raises(AmbiguousSourceError, match="2 deliveries of 20261001-20261101") as err:
        ingest_delivery(acme, str(report), lake_uri=str(tmp_path / "lake1"))
    assert "copy the report's manifests" in str(err.value)
    assert not (tmp_path / "lake1").exists()  # nothing written
    # one delivery folder alone is fine
    one = ingest_delivery(
        acme, str(report / "acme-cur-hourly" / "20261001-20261101" / "bbbb-2222"), lake_uri=str(tmp_path / "lake2")
    )
    assert one.rows == 500 and one.matches
