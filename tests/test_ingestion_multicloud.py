"""Multi-cloud FOCUS (1.2 and 1.3 rows of AWS, Azure, GCP and OCI), per-provider billing accounts, null markers
and the error messages a real export can run into. Every file is built here, shaped as its provider writes it."""

import csv
import hashlib
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import polars as pl
import pytest

from blocks_pipelines.ingestion import errors as E
from blocks_pipelines.ingestion.ingest import ingest_delivery
from blocks_pipelines.lake import months
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry
from tests.synthetic.cur_frames import cur1_frame

AZURE_ACCOUNT = "/providers/Microsoft.Billing/billingAccounts/8a1b2c3d-0000-4a00-9000-000000000001"
OCI_TENANCY = "ocid1.tenancy.oc1..aaaaaaaa5kzqexample"
GCP_ACCOUNT = "01A2B3-C4D5E6-F7A8B9"
AWS_PAYER = "333333333333"  # initech's


def _initech(**accounts):
    t = {t.id: t for t in load_registry(get_settings().tenants_dir)}["initech"]
    return t.model_validate({**t.model_dump(mode="json"), "billing_accounts": accounts}) if accounts else t


@pytest.fixture
def initech(blocks_env):
    return _initech(azure=[AZURE_ACCOUNT], oci=[OCI_TENANCY], gcp=[GCP_ACCOUNT])


def _lake(lake_uri):
    return pl.read_parquet(months.current_files(lake_uri, "initech"), hive_partitioning=False)


def _snapshot(lake_uri):
    from pathlib import Path

    root = Path(lake_uri)
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}


def _write_csv(path, rows: list[dict]):
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, columns)
        w.writeheader()
        w.writerows(rows)
    return path


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


MAY = datetime(2026, 5, 1, tzinfo=timezone.utc)

# (provider family, ProviderName, InvoiceIssuerName, BillingAccountId, SubAccountId, BillingAccountType,
# SubAccountType, invoice id), as each provider's FOCUS 1.2 export writes them
PROVIDERS_12 = [
    (
        "aws",
        "AWS",
        "Amazon Web Services EMEA SARL",
        AWS_PAYER,
        "333333333302",
        "Billing Account",
        "Linked Account",
        "EUINIE26-0001",
    ),
    (
        "azure",
        "Microsoft",
        "Microsoft",
        AZURE_ACCOUNT,
        "/subscriptions/9a8b7c6d-0000-4000-8000-00000000000a",
        "Billing Account",
        "Subscription",
        "G012345678",
    ),
    (
        "oci",
        "Oracle",
        "Oracle",
        OCI_TENANCY,
        "ocid1.compartment.oc1..aaaaaaaaprod",
        "Tenancy",
        "Compartment",
        "OCI-INV-77",
    ),
]


def _focus12_rows(n_per_provider: int = 40) -> list[dict]:
    rows = []
    for family, provider, issuer, account, sub, account_type, sub_type, invoice in PROVIDERS_12:
        for i in range(n_per_provider):
            start = MAY + timedelta(hours=(i * 7) % 72)
            billed = Decimal(f"{((i * 7919) % 1000 + 1) / 997:.10f}")
            category = "Tax" if i % 13 == 0 else ("Credit" if i % 11 == 0 else "Usage")
            if category == "Credit":
                billed = -billed
            rows.append(
                {
                    "ProviderName": provider,
                    "PublisherName": provider,
                    "InvoiceIssuerName": issuer,
                    "InvoiceId": invoice if i % 2 else f"{invoice}-B",  # two invoices per provider
                    "BillingAccountId": account,
                    "BillingAccountName": f"{family} billing",
                    "BillingAccountType": account_type,
                    "SubAccountId": sub,
                    "SubAccountType": sub_type,
                    "BillingPeriodStart": _iso(MAY),
                    "BillingPeriodEnd": _iso(datetime(2026, 6, 1, tzinfo=timezone.utc)),
                    "ChargePeriodStart": _iso(start),
                    "ChargePeriodEnd": _iso(start + timedelta(hours=1)),
                    "ChargeCategory": category,
                    "ChargeClass": "",
                    "BilledCost": str(billed),
                    "EffectiveCost": str(billed),
                    "ListCost": str(abs(billed) * 2),
                    "ContractedCost": str(billed),
                    "BillingCurrency": "USD",
                    "PricingCurrency": "EUR" if family == "azure" else "USD",
                    "PricingCurrencyEffectiveCost": str(billed * Decimal("0.9")),
                    "PricingCurrencyListUnitPrice": "0.096",
                    "PricingCurrencyContractedUnitPrice": "0.08",
                    "ServiceName": {
                        "aws": "Amazon Elastic Compute Cloud",
                        "azure": "Virtual Machines",
                        "oci": "Compute",
                    }[family],
                    "ServiceCategory": "Compute",
                    "RegionId": {"aws": "eu-west-1", "azure": "westeurope", "oci": "eu-frankfurt-1"}[family],
                    "ResourceId": f"{family}-vm-{i % 5}",
                    "SkuMeter": "EU-BoxUsage:m5.large" if family == "aws" else "",
                    "ConsumedQuantity": "1",
                    "ConsumedUnit": "Hours",
                    "PricingQuantity": "1",
                    "PricingUnit": "Hours",
                    "CommitmentDiscountId": "",
                    "CommitmentDiscountType": "",
                    "CommitmentDiscountStatus": "",
                    "Tags": json.dumps({"env": "prod", "n": str(i % 3)}),
                    "x_ServiceCode": "AmazonEC2" if family == "aws" else "",
                }
            )
    return rows


def _day_totals(rows: list[dict]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for r in rows:
        out[r["ChargePeriodStart"][:10]] = out.get(r["ChargePeriodStart"][:10], Decimal(0)) + Decimal(r["BilledCost"])
    return out


def _invoice_totals(rows: list[dict]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for r in rows:
        if r["InvoiceId"] not in ("", "NULL"):
            out[r["InvoiceId"]] = out.get(r["InvoiceId"], Decimal(0)) + Decimal(r["BilledCost"])
    return out


def _assert_totals(summary, rows):
    assert summary.matches and summary.rows == len(rows)
    assert summary.unblended_by_day == {d: pytest.approx(float(c), abs=1e-6) for d, c in _day_totals(rows).items()}
    expected = _invoice_totals(rows)
    assert {i.invoice_id: i.source_billed for i in summary.invoices} == {
        k: pytest.approx(float(v), abs=1e-9) for k, v in expected.items()
    }
    assert all(i.matches for i in summary.invoices) and len(summary.invoices) == len(expected)


def test_a_mixed_aws_azure_oci_focus_12_file_keeps_each_rows_provider(initech, tmp_path):
    rows = _focus12_rows()
    # a marketplace SaaS row billed through the Azure account: its provider is the vendor, the account Azure's
    rows.append(
        {
            **rows[45],
            "ProviderName": "Datadog",
            "PublisherName": "Datadog",
            "InvoiceId": "G012345678",
            "ServiceName": "Datadog Pro",
            "BilledCost": "12.5",
            "EffectiveCost": "12.5",
            "ListCost": "12.5",
        }
    )
    src = _write_csv(tmp_path / "focus-1.2-multicloud.csv", rows)
    lake_uri = str(tmp_path / "lake")
    summary = ingest_delivery(initech, str(src), lake_uri=lake_uri)
    _assert_totals(summary, rows)
    lake = _lake(lake_uri)
    by_provider = dict(lake.group_by("provider").agg(pl.col("unblended_cost").sum()).iter_rows())
    expected: dict[str, Decimal] = {}
    for r in rows:
        expected[r["ProviderName"]] = expected.get(r["ProviderName"], Decimal(0)) + Decimal(r["BilledCost"])
    assert by_provider == {p: pytest.approx(float(c), abs=1e-6) for p, c in expected.items()}
    accounts = dict(lake.select("provider", "payer_account_id").unique().iter_rows())
    assert accounts == {"AWS": AWS_PAYER, "Microsoft": AZURE_ACCOUNT, "Oracle": OCI_TENANCY, "Datadog": AZURE_ACCOUNT}
    # the FOCUS 1.2 columns land in the canonical schema
    azure = lake.filter(pl.col("provider") == "Microsoft")
    assert set(azure["billing_account_type"]) == {"Billing Account"} and set(azure["sub_account_type"]) == {
        "Subscription"
    }
    assert set(azure["pricing_currency"]) == {"EUR"} and set(azure["currency"]) == {"USD"}
    assert azure["pricing_currency_list_unit_price"].to_list() == [0.096] * azure.height
    assert set(lake.filter(pl.col("provider") == "AWS")["invoice_issuer"]) == {"Amazon Web Services EMEA SARL"}
    aws = lake.filter(pl.col("provider") == "AWS")
    assert set(aws["usage_type"]) == {"EU-BoxUsage:m5.large"} and set(aws["instance_type"]) == {"m5.large"}
    assert set(lake["service_provider"]) == {"AWS", "Microsoft", "Oracle", "Datadog"}


def test_a_row_billed_to_another_azure_account_is_refused_naming_the_provider(initech, tmp_path):
    lake_uri = str(tmp_path / "lake")
    rows = _focus12_rows(10)
    ingest_delivery(initech, str(_write_csv(tmp_path / "good.csv", rows)), lake_uri=lake_uri)
    before = _snapshot(lake_uri)
    stranger = "/providers/Microsoft.Billing/billingAccounts/77777777-0000-4000-8000-000000000777"
    rows[12] = {**rows[12], "BillingAccountId": stranger}
    src = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(E.WrongPayerError) as err:
        ingest_delivery(initech, str(src), lake_uri=lake_uri)
    msg = str(err.value)
    assert f"Azure billing account {stranger}" in msg and "row 13" in msg and "'BillingAccountId'" in msg
    assert AZURE_ACCOUNT in msg  # the ones registered
    assert f"blocks tenants add-account initech --azure-billing-account {stranger}" in msg
    assert "--payer" not in msg
    assert _snapshot(lake_uri) == before
    # without OCI accounts registered, OCI rows are refused too: the check applies per provider
    refused = r"OCI tenancy ocid1\S+ \(Oracle\) is not registered to tenant initech \(registered: none\)"
    with pytest.raises(E.WrongPayerError, match=refused):
        ingest_delivery(
            _initech(azure=[AZURE_ACCOUNT]),
            str(_write_csv(tmp_path / "good2.csv", _focus12_rows(10))),
            lake_uri=lake_uri,
        )
    assert _snapshot(lake_uri) == before


@pytest.mark.parametrize(
    "account, provider", [("3333333333330", "AWS"), ("33333333333", "AWS"), ("01A2B3-C4D5E6-F7A8B", "Google Cloud")]
)
def test_a_malformed_account_id_in_the_file_says_the_files_id_is_malformed(initech, tmp_path, account, provider):
    rows = _focus12_rows(5)
    rows[3] = {**rows[3], "BillingAccountId": account, "ProviderName": provider}
    src = _write_csv(tmp_path / "damaged.csv", rows)
    with pytest.raises(E.MalformedAccountIdError) as err:
        ingest_delivery(initech, str(src), lake_uri=str(tmp_path / "lake"))
    msg = str(err.value)
    assert (
        f"the file's {'AWS payer account' if provider == 'AWS' else 'Google Cloud billing account'} id "
        f"'{account}' is malformed" in msg
    )
    assert f"this one has {len(account)} {'digits' if account.isdigit() else 'characters'}" in msg
    assert "row 4" in msg and str(src) in msg
    assert "tenants add" not in msg  # no command could register it
    assert not (tmp_path / "lake").exists()


def test_a_malformed_payer_in_a_legacy_cur_is_not_sent_to_tenants_add(initech, tmp_path):
    df = cur1_frame(50, "2026-10", AWS_PAYER, ["333333333302"])
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit("3333333333330"))
        .otherwise(pl.col("bill/PayerAccountId"))
        .alias("bill/PayerAccountId")
    )
    src = tmp_path / "cur.csv"
    df.write_csv(src)
    with pytest.raises(E.MalformedAccountIdError) as err:
        ingest_delivery(initech, str(src), lake_uri=str(tmp_path / "lake"))
    msg = str(err.value)
    assert "the file's AWS payer account id '3333333333330' is malformed: AWS payer account ids are 12 digits" in msg
    assert "row 8" in msg and "'bill/PayerAccountId'" in msg and "--payer" not in msg


def _focus13_gcp_rows() -> list[dict]:
    """Google Cloud's FOCUS 1.3 shape: ServiceProviderName/HostProviderName instead of ProviderName, a contract
    commitment applied, and split cost allocation of a shared GKE cluster."""
    base = {
        "BillingAccountId": GCP_ACCOUNT,
        "BillingAccountType": "Billing Account",
        "SubAccountId": "proj-prod",
        "SubAccountType": "Project",
        "InvoiceIssuerName": "Google",
        "InvoiceId": "5012345678",
        "BillingPeriodStart": "2026-05-01 00:00:00 UTC",
        "BillingPeriodEnd": "2026-06-01 00:00:00 UTC",
        "BillingCurrency": "USD",
        "ServiceCategory": "Compute",
        "RegionId": "europe-west1",
    }
    contract = json.dumps(
        {"Elements": [{"ContractId": "ctr-1", "ContractCommitmentId": "cc-1", "ContractCommitmentAppliedCost": 4.5}]}
    )
    rows = []
    for i in range(24):
        start = datetime(2026, 5, 3, tzinfo=timezone.utc) + timedelta(hours=i * 2)
        billed = f"{(i % 7 + 1) * 1.125:.6f}"
        rows.append(
            {
                **base,
                "ServiceProviderName": "Google Cloud",
                "HostProviderName": "Google Cloud",
                "ChargePeriodStart": start.strftime("%Y-%m-%d %H:%M:%S UTC"),
                "ChargePeriodEnd": (start + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S UTC"),
                "ChargeCategory": "Usage",
                "BilledCost": billed,
                "EffectiveCost": billed,
                "ListCost": billed,
                "ServiceName": "Kubernetes Engine",
                "ResourceId": "projects/proj-prod/clusters/shared",
                "ContractApplied": contract if i % 4 == 0 else "",
                "AllocatedMethodId": "gke-cost-allocation",
                "AllocatedMethodDetails": json.dumps(
                    {"Elements": [{"AllocatedRatio": 0.25, "UsageUnit": "vCPU-Hours"}]}
                ),
                "AllocatedResourceId": f"projects/proj-prod/clusters/shared/namespaces/team-{i % 3}",
                "AllocatedResourceName": f"team-{i % 3}",
                "AllocatedTags": json.dumps({"team": f"t{i % 3}"}),
                "Tags": json.dumps({"goog-k8s-cluster-name": "shared"}),
            }
        )
    # a marketplace vendor's charge hosted on Google Cloud, on the same billing account and invoice
    rows.append(
        {
            **rows[0],
            "ServiceProviderName": "Elastic",
            "HostProviderName": "Google Cloud",
            "ServiceName": "Elastic Cloud",
            "BilledCost": "40.000000",
            "EffectiveCost": "40.000000",
            "ListCost": "40.000000",
            "ContractApplied": "",
            "AllocatedMethodId": "",
            "AllocatedMethodDetails": "",
            "AllocatedResourceId": "",
            "AllocatedResourceName": "",
            "AllocatedTags": "",
        }
    )
    return rows


def test_a_gcp_focus_13_export_reads_its_new_columns(initech, tmp_path):
    rows = _focus13_gcp_rows()
    src = _write_csv(tmp_path / "gcp-focus-1.3.csv", rows)
    lake_uri = str(tmp_path / "lake")
    summary = ingest_delivery(initech, str(src), lake_uri=lake_uri)
    _assert_totals(summary, rows)
    lake = _lake(lake_uri).sort("usage_start", "provider")
    assert lake.group_by("provider").len().sort("provider").rows() == [("Elastic", 1), ("Google Cloud", 24)]
    assert set(lake["host_provider"]) == {"Google Cloud"} and set(lake["payer_account_id"]) == {GCP_ACCOUNT}
    gke = lake.filter(pl.col("provider") == "Google Cloud")
    first = gke.row(0, named=True)
    assert json.loads(first["contract_applied"])["Elements"][0]["ContractCommitmentId"] == "cc-1"
    assert gke["contract_applied"].null_count() == 18
    assert first["allocated_method_id"] == "gke-cost-allocation"
    assert json.loads(first["allocated_method_details"]) == {
        "Elements": [{"AllocatedRatio": 0.25, "UsageUnit": "vCPU-Hours"}]
    }
    assert first["allocated_resource_name"] == "team-0" and json.loads(first["allocated_tags"]) == {"team": "t0"}
    assert first["allocated_resource_id"].endswith("/namespaces/team-0")
    assert set(lake["sub_account_type"]) == {"Project"}
    elastic = lake.filter(pl.col("provider") == "Elastic").row(0, named=True)
    assert elastic["allocated_tags"] == "{}" and elastic["allocated_method_id"] is None  # not a split cost
    assert elastic["service_provider"] == "Elastic"


def _aws_focus12_parquet(path, rows: int):
    """AWS Data Exports' FOCUS 1.2 with AWS columns: double costs, ms timestamps, map columns, x_Discounts,
    x_Operation, x_ServiceCode, SkuMeter instead of x_UsageType, InvoiceId filled once the month is invoiced."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    hour = timedelta(hours=1)
    start = [datetime(2026, 9, 1, tzinfo=timezone.utc) + (i % 96) * hour for i in range(rows)]
    ms = pa.timestamp("ms", "UTC")
    billed = [round(((i * 31) % 89) / 9.0, 10) for i in range(rows)]
    strings = pa.map_(pa.string(), pa.string())
    table = pa.table(
        {
            "AvailabilityZone": ["us-east-1a"] * rows,
            "BilledCost": pa.array(billed, pa.float64()),
            "BillingAccountId": [AWS_PAYER] * rows,
            "BillingAccountName": ["initech"] * rows,
            "BillingAccountType": ["Billing Account"] * rows,
            "BillingCurrency": ["USD"] * rows,
            "BillingPeriodEnd": pa.array([datetime(2026, 10, 1, tzinfo=timezone.utc)] * rows, ms),
            "BillingPeriodStart": pa.array([datetime(2026, 9, 1, tzinfo=timezone.utc)] * rows, ms),
            "CapacityReservationId": pa.array([None] * rows, pa.string()),
            "ChargeCategory": ["Usage" if i % 6 else "Tax" for i in range(rows)],
            "ChargePeriodEnd": pa.array([s + hour for s in start], ms),
            "ChargePeriodStart": pa.array(start, ms),
            "CommitmentDiscountId": pa.array([None] * rows, pa.string()),
            "ConsumedQuantity": pa.array([1.0] * rows, pa.float64()),
            "EffectiveCost": pa.array(billed, pa.float64()),
            "InvoiceId": [("EUINIE26-1001" if i % 3 else "EUINIE26-1002") for i in range(rows)],
            "InvoiceIssuerName": ["Amazon Web Services EMEA SARL"] * rows,
            "ListCost": pa.array([b * 1.3 for b in billed], pa.float64()),
            "PricingCurrency": ["USD"] * rows,
            "PricingCurrencyEffectiveCost": pa.array(billed, pa.float64()),
            "ProviderName": ["AWS"] * rows,
            "RegionId": ["us-east-1"] * rows,
            "ServiceName": ["Amazon Elastic Compute Cloud"] * rows,
            "SkuMeter": ["USE1-BoxUsage:c6i.xlarge"] * rows,
            "SkuPriceDetails": pa.array([[("InstanceType", "c6i.xlarge")]] * rows, strings),
            "SubAccountId": ["333333333302"] * rows,
            "SubAccountType": ["Linked Account"] * rows,
            "Tags": pa.array([[("user:team", "api")] if i % 2 else [] for i in range(rows)], strings),
            "x_Discounts": pa.array(
                [[("EDP", -0.01)] if i % 4 == 0 else None for i in range(rows)], pa.map_(pa.string(), pa.float64())
            ),
            "x_Operation": ["RunInstances"] * rows,
            "x_ServiceCode": ["AmazonEC2"] * rows,
        }
    )
    pq.write_table(table, path)
    return table


def test_an_aws_focus_12_parquet_export_with_x_columns(initech, tmp_path):
    src = tmp_path / "focus-1-2-aws-00001.snappy.parquet"
    table = _aws_focus12_parquet(src, 480)
    lake_uri = str(tmp_path / "lake")
    summary = ingest_delivery(initech, str(src), lake_uri=lake_uri)
    assert summary.matches and summary.rows == 480 and summary.hours == 96
    source = pl.from_arrow(table.select(["ChargePeriodStart", "BilledCost", "InvoiceId"]))
    per_day = source.group_by(pl.col("ChargePeriodStart").dt.date().cast(pl.String)).agg(pl.col("BilledCost").sum())
    assert summary.unblended_by_day == {d: pytest.approx(c, abs=1e-6) for d, c in per_day.iter_rows()}
    per_invoice = dict(source.group_by("InvoiceId").agg(pl.col("BilledCost").sum()).iter_rows())
    assert {i.invoice_id: i.lake_billed for i in summary.invoices} == {
        k: pytest.approx(v, abs=1e-6) for k, v in per_invoice.items()
    }
    assert all(i.matches for i in summary.invoices)
    lake = _lake(lake_uri)
    assert set(lake["service"]) == {"AmazonEC2"} and set(lake["operation"]) == {"RunInstances"}
    assert set(lake["usage_type"]) == {"USE1-BoxUsage:c6i.xlarge"} and set(lake["instance_type"]) == {"c6i.xlarge"}
    assert set(lake["billing_account_type"]) == {"Billing Account"} and set(lake["pricing_currency"]) == {"USD"}
    assert lake["pricing_currency_effective_cost"].sum() == pytest.approx(sum(table.column("BilledCost").to_pylist()))
    assert lake.filter(pl.col("tags") != "{}").height == 240


def test_null_markers_in_nullable_columns_read_as_null(initech, tmp_path):
    """As an Athena/Spark/pandas pipeline writes FOCUS to CSV: NULL, null, \\N and NaN where the spec allows null."""
    rows = _focus12_rows(12)
    for i, r in enumerate(rows):
        r["ResourceId"] = ("NULL", "null", "\\N", r["ResourceId"])[i % 4]
        r["RegionId"] = "\\N" if i % 5 == 0 else r["RegionId"]
        r["Tags"] = "NULL" if i % 3 == 0 else r["Tags"]
        r["CommitmentDiscountId"] = "NULL"
        r["InvoiceId"] = "NULL" if i % 6 == 0 else r["InvoiceId"]
        r["ConsumedQuantity"] = "NaN" if i % 2 else "2"
        r["PricingCurrencyEffectiveCost"] = "NaN" if i % 7 == 0 else r["PricingCurrencyEffectiveCost"]
        r["SubAccountId"] = "\\N" if i % 9 == 0 else r["SubAccountId"]
        r["ChargeClass"] = "NULL"
    src = _write_csv(tmp_path / "athena-unload.csv", rows)
    lake_uri = str(tmp_path / "lake")
    summary = ingest_delivery(initech, str(src), lake_uri=lake_uri)
    _assert_totals(summary, rows)
    lake = _lake(lake_uri)
    assert lake["resource_id"].null_count() == 27 and not lake["resource_id"].is_in(["NULL", "null", "\\N"]).any()
    assert lake["region"].null_count() == 8 and lake["reservation_arn"].null_count() == lake.height
    assert (lake["tags"] == "{}").sum() == 12 and lake["invoice_id"].null_count() == 6
    assert lake["usage_amount"].to_list().count(2.0) == 18 and not lake["usage_amount"].is_nan().any()
    assert lake["pricing_currency_effective_cost"].null_count() == 6
    assert not lake["pricing_currency_effective_cost"].is_nan().any()
    # a SubAccountId of \N falls back to the billing account, as a blank one does
    assert lake.filter(pl.col("usage_account_id") == pl.col("payer_account_id")).height == 4


@pytest.mark.parametrize(
    "column, marker, canonical",
    [
        ("BilledCost", "NULL", "unblended_cost"),
        ("ChargeCategory", "\\N", "line_item_type"),
        ("BillingCurrency", "null", "currency"),
        ("ChargePeriodStart", "NULL", "usage_start"),
    ],
)
def test_a_null_marker_in_a_required_column_names_file_row_and_column(initech, tmp_path, column, marker, canonical):
    rows = _focus12_rows(6)
    rows[9] = {**rows[9], column: marker}
    src = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(E.IngestError) as err:
        ingest_delivery(initech, str(src), lake_uri=str(tmp_path / "lake"))
    assert (err.value.file, err.value.row, err.value.column) == (str(src), 10, column)
    assert f"null marker {marker!r} where a {canonical} is required" in str(err.value)
    assert not (tmp_path / "lake").exists()


def test_null_markers_in_a_legacy_cur(initech, tmp_path):
    df = cur1_frame(60, "2026-10", AWS_PAYER, ["333333333302"])
    i = pl.int_range(pl.len())
    nullable = df.with_columns(
        pl.when(i % 2 == 0).then(pl.lit("NULL")).otherwise(pl.col("lineItem/ResourceId")).alias("lineItem/ResourceId"),
        pl.when(i % 3 == 0)
        .then(pl.lit("NaN"))
        .otherwise(pl.col("lineItem/UsageAmount").cast(pl.String))
        .alias("lineItem/UsageAmount"),
    )
    src = tmp_path / "cur.csv"
    nullable.write_csv(src)
    summary = ingest_delivery(initech, str(src), lake_uri=str(tmp_path / "lake"))
    assert summary.matches and summary.rows == 60
    lake = _lake(str(tmp_path / "lake"))
    assert lake["resource_id"].null_count() == 30 and lake.filter(pl.col("usage_amount") == 0).height >= 20
    required = df.with_columns(
        pl.when(i == 4)
        .then(pl.lit("\\N"))
        .otherwise(pl.col("lineItem/UsageAccountId"))
        .alias("lineItem/UsageAccountId")
    )
    required.write_csv(src)
    with pytest.raises(E.ParseError) as err:
        ingest_delivery(initech, str(src), lake_uri=str(tmp_path / "lake2"))
    assert (err.value.row, err.value.column) == (5, "lineItem/UsageAccountId")
    assert "null marker '\\\\N' where a usage_account_id is required" in str(err.value)


def test_a_file_of_no_known_format_names_its_columns_and_the_export_to_make(initech, tmp_path):
    src = tmp_path / "invoice-lines.csv"
    src.write_text("Date,Service,Amount,Currency\n2026-05-01,EC2,12.50,USD\n")
    with pytest.raises(E.FormatDetectionError) as err:
        ingest_delivery(initech, str(src), lake_uri=str(tmp_path / "lake"))
    msg = str(err.value)
    assert err.value.file == str(src)
    assert "columns seen: Date, Service, Amount, Currency (4 columns)" in msg
    assert "CUR 2.0 or FOCUS export" in msg and "FOCUS export" in msg.split("Fix:")[1]


def test_a_forced_format_never_says_it_was_detected(initech, tmp_path):
    src = _write_csv(tmp_path / "focus.csv", _focus12_rows(3))
    with pytest.raises(E.MissingColumnError) as err:
        ingest_delivery(initech, str(src), lake_uri=str(tmp_path / "lake"), fmt="cur2")
    msg = str(err.value)
    assert "format cur2 from --format; the columns are focus's" in msg and "pass --format focus" in msg
    assert "detect" not in msg
    # auto-detection, by contrast, says what it detected
    broken = tmp_path / "broken.csv"
    pl.read_csv(src, infer_schema=False).drop("BillingCurrency").write_csv(broken)
    with pytest.raises(E.MissingColumnError, match="detected as focus"):
        ingest_delivery(initech, str(broken), lake_uri=str(tmp_path / "lake"))


def test_each_providers_export_replaces_only_its_own_billing_accounts_rows(initech, tmp_path):
    """A multi-cloud tenant ingests its AWS export and its Azure/OCI FOCUS exports for the same month separately:
    each replaces the month for the billing accounts it holds, never the other providers' rows of the same days."""
    lake_uri = str(tmp_path / "lake")
    aws = [r for r in _focus12_rows(30) if r["ProviderName"] == "AWS"]
    others = [r for r in _focus12_rows(30) if r["ProviderName"] != "AWS"]
    first = ingest_delivery(initech, str(_write_csv(tmp_path / "aws.csv", aws)), lake_uri=lake_uri)
    second = ingest_delivery(initech, str(_write_csv(tmp_path / "azure-oci.csv", others)), lake_uri=lake_uri)
    assert first.matches and second.matches  # each compares its own accounts' rows with its source
    assert second.replaced_accounts == sorted([AZURE_ACCOUNT, OCI_TENANCY])

    def per_day(rows):
        return {d: pytest.approx(float(c), abs=1e-6) for d, c in _day_totals(rows).items()}

    def lake_per_day():
        lake = _lake(lake_uri)
        return dict(lake.group_by(pl.col("usage_date").cast(pl.String)).agg(pl.col("unblended_cost").sum()).iter_rows())

    assert lake_per_day() == per_day(aws + others)
    # Azure restates the month with fewer rows: the AWS and OCI rows stay, Azure's are replaced
    azure_restated = [r for r in others if r["ProviderName"] == "Microsoft"][:10]
    oci = [r for r in others if r["ProviderName"] == "Oracle"]
    restated = ingest_delivery(initech, str(_write_csv(tmp_path / "azure.csv", azure_restated)), lake_uri=lake_uri)
    assert restated.matches and restated.rows == 10
    assert lake_per_day() == per_day(aws + oci + azure_restated)
    assert _lake(lake_uri).group_by("provider").len().sort("provider").rows() == [
        ("AWS", 30),
        ("Microsoft", 10),
        ("Oracle", 30),
    ]
    # and the AWS export again: only its own rows are rewritten
    again = ingest_delivery(initech, str(_write_csv(tmp_path / "aws.csv", aws)), lake_uri=lake_uri)
    assert again.matches and lake_per_day() == per_day(aws + oci + azure_restated)


def test_a_null_invoice_id_does_not_make_a_month_final(tmp_path):
    """The sensor's is-this-month-invoiced peek reads NULL as no invoice id, as the ingester does."""
    from blocks_pipelines.ingestion.deliveries import peek_invoice_id

    rows = _focus12_rows(4)
    for r in rows:
        r["InvoiceId"] = "NULL"
    assert peek_invoice_id(str(_write_csv(tmp_path / "open.csv", rows))) is None
    rows[7]["InvoiceId"] = "G012345678"
    assert peek_invoice_id(str(_write_csv(tmp_path / "final.csv", rows))) == "G012345678"


def test_an_oci_id_of_an_unknown_form_is_registrable_as_other(blocks_env, tmp_path):
    """Azure and OCI ids come in several forms: one the platform does not know is not called damaged; the message
    offers the option that accepts it, and once registered the rows ingest."""
    rows = [r for r in _focus12_rows(6) if r["ProviderName"] == "Oracle"]
    for r in rows:
        r["BillingAccountId"] = "oci-billing-48213"
    src = _write_csv(tmp_path / "oci.csv", rows)
    with pytest.raises(E.WrongPayerError) as err:
        ingest_delivery(_initech(oci=[OCI_TENANCY]), str(src), lake_uri=str(tmp_path / "lake"))
    assert "blocks tenants add-account initech --other-billing-account oci-billing-48213" in str(err.value)
    summary = ingest_delivery(_initech(other=["oci-billing-48213"]), str(src), lake_uri=str(tmp_path / "lake"))
    assert summary.matches and summary.rows == 6
    # an AWS payer is never accepted through "other": the organization has one
    aws = [{**r, "BillingAccountId": "444444444444"} for r in _focus12_rows(3) if r["ProviderName"] == "AWS"]
    with pytest.raises(E.WrongPayerError, match="payer account 444444444444 is not tenant initech's payer"):
        ingest_delivery(
            _initech(other=["444444444444"]),
            str(_write_csv(tmp_path / "aws.csv", aws)),
            lake_uri=str(tmp_path / "lake"),
        )


def test_focus_13_json_columns_written_as_parquet_structs_lists_and_maps():
    """A Parquet FOCUS 1.3 export may type ContractApplied as a struct, AllocatedMethodDetails as a list of structs
    and AllocatedTags as a map: each lands as the JSON text a CSV export would hold."""
    from blocks_pipelines.ingestion.formats import SourceContext, normalize

    start = datetime(2026, 5, 1, tzinfo=timezone.utc)
    raw = pl.DataFrame(
        {
            "ServiceProviderName": ["Google Cloud"],
            "HostProviderName": ["Google Cloud"],
            "BillingAccountId": [GCP_ACCOUNT],
            "BillingCurrency": ["USD"],
            "ChargeCategory": ["Usage"],
            "ChargePeriodStart": [start],
            "ChargePeriodEnd": [start + timedelta(hours=1)],
            "BilledCost": [1.5],
            "ContractApplied": [{"ContractId": "ctr-1", "AppliedCost": 1.5}],
            "AllocatedMethodDetails": [[{"AllocatedRatio": 0.25, "UsageUnit": "vCPU-Hours"}]],
            "AllocatedTags": [[{"key": "team", "value": "t0"}]],
        }
    )
    row = normalize(raw.lazy(), "focus", SourceContext("t", "d", "f.parquet")).collect().row(0, named=True)
    assert json.loads(row["contract_applied"]) == {"ContractId": "ctr-1", "AppliedCost": 1.5}
    assert json.loads(row["allocated_method_details"]) == [{"AllocatedRatio": 0.25, "UsageUnit": "vCPU-Hours"}]
    assert json.loads(row["allocated_tags"]) == {"team": "t0"}
    assert (row["provider"], row["host_provider"]) == ("Google Cloud", "Google Cloud")
