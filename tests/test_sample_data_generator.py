"""The sample CUR generator: real column names, internal consistency of commitments, layouts and determinism."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DEMO_TENANTS, REAL_CUR

from blocks_pipelines.sample_data import SavingsPlanSpec, generate_tenant_cur
from blocks_pipelines.sample_data.formats import CUR1_COLUMNS, legacy_parquet_name
from blocks_pipelines.tenants.config import load_registry

END = datetime(2026, 11, 3, 5, tzinfo=timezone.utc)  # October closed, November open for 2 days and 5 hours
SCALE = 0.3
TAG_PREFIXES = ("resourceTags/", "costCategory/")


@pytest.fixture(scope="module")
def tenants():
    return {t.id: t for t in load_registry(DEMO_TENANTS)}


@pytest.fixture(scope="module")
def cur1(tenants, tmp_path_factory):
    out = tmp_path_factory.mktemp("cur1")
    summary = generate_tenant_cur(
        tenants["acme_corp"], fmt="cur1-csv", out_uri=str(out), months=2, seed=11, end=END, scale=SCALE
    )
    return summary, out


@pytest.fixture(scope="module")
def cur1_rows(cur1) -> pl.DataFrame:
    summary, _ = cur1
    frames = [pl.read_csv(f, infer_schema=False) for f in summary.files]
    df = pl.concat(frames)
    floats = [c.name for c in CUR1_COLUMNS if c.kind == "float"]
    return df.with_columns(pl.col(floats).cast(pl.Float64))


def real_cur1_headers() -> set[str]:
    names: set[str] = set()
    for f in sorted(REAL_CUR.glob("koku-20*.csv")) + sorted(REAL_CUR.glob("*.csv.gz")):
        opener = gzip.open if f.suffix == ".gz" else open
        with opener(f, "rt", newline="") as fh:
            header = next(csv.reader(fh))
        if any("/" in h for h in header):
            names |= set(header)
    return names


def cid_amortized(df: pl.DataFrame) -> pl.Expr:
    """Amortized cost by the Cloud Intelligence Dashboards rule (REFERENCE.md), from written legacy columns."""
    t = pl.col("lineItem/LineItemType")
    return (
        pl.when(t == "SavingsPlanCoveredUsage")
        .then(pl.col("savingsPlan/SavingsPlanEffectiveCost"))
        .when(t == "SavingsPlanRecurringFee")
        .then(pl.col("savingsPlan/TotalCommitmentToDate") - pl.col("savingsPlan/UsedCommitment"))
        .when(t.is_in(["SavingsPlanNegation", "SavingsPlanUpfrontFee"]))
        .then(0.0)
        .when(t == "DiscountedUsage")
        .then(pl.col("reservation/EffectiveCost"))
        .when(t == "RIFee")
        .then(
            pl.col("reservation/UnusedAmortizedUpfrontFeeForBillingPeriod") + pl.col("reservation/UnusedRecurringFee")
        )
        .otherwise(pl.col("lineItem/UnblendedCost"))
    )


# --- column names against real formats ------------------------------------------------------------------------
def test_cur1_csv_header_uses_real_legacy_names(cur1):
    summary, _ = cur1
    with gzip.open(summary.files[0], "rt", newline="") as fh:
        header = next(csv.reader(fh))
    real = real_cur1_headers()
    unknown = [h for h in header if h not in real and not h.startswith(TAG_PREFIXES)]
    # the AWS data dictionary spells it SavingsPlanARN; the koku export spells it SavingsPlanArn
    assert unknown == ["savingsPlan/SavingsPlanARN"]
    for required in (
        "identity/LineItemId",
        "identity/TimeInterval",
        "bill/InvoiceId",
        "bill/PayerAccountId",
        "lineItem/UsageStartDate",
        "lineItem/LineItemType",
        "pricing/publicOnDemandCost",
        "savingsPlan/SavingsPlanEffectiveCost",
        "savingsPlan/TotalCommitmentToDate",
        "savingsPlan/UsedCommitment",
        "reservation/EffectiveCost",
        "product/region",
        "resourceTags/user:team",
        "resourceTags/user:cost-center",
        "costCategory/Environment",
    ):
        assert required in header


def test_legacy_parquet_names_match_real_athena_export():
    alt = set((REAL_CUR / "koku-2022-07-01-alt-columns.csv").open().readline().strip().split(","))
    real = real_cur1_headers()
    converted = {legacy_parquet_name(n) for n in real}
    assert legacy_parquet_name("savingsPlan/SavingsPlanARN") in alt  # savings_plan_savings_plan_a_r_n
    assert legacy_parquet_name("resourceTags/user:insights_project") in alt
    for c in CUR1_COLUMNS:
        if c.name.startswith(TAG_PREFIXES):
            continue
        name = legacy_parquet_name(c.name)
        assert name in alt or name in converted, f"{c.name} -> {name} matches no real Parquet column"


def test_cur1_parquet_has_snake_case_columns_and_types(tenants, tmp_path):
    s = generate_tenant_cur(
        tenants["acme_corp"],
        fmt="cur1-parquet",
        out_uri=str(tmp_path),
        months=1,
        start="2026-11",
        seed=3,
        end=datetime(2026, 11, 1, 6, tzinfo=timezone.utc),
        scale=0.2,
    )
    assert s.files[0].endswith("acme-cur-hourly-1.snappy.parquet")
    schema = pq.read_schema(s.files[0])
    assert schema.names == [legacy_parquet_name(c.name) for c in CUR1_COLUMNS]
    assert str(schema.field("line_item_usage_start_date").type).startswith("timestamp[ms")
    assert str(schema.field("line_item_unblended_cost").type) == "double"


def test_cur2_columns_maps_and_billing_period(tenants, tmp_path):
    s = generate_tenant_cur(
        tenants["globex"],
        fmt="cur2",
        out_uri=str(tmp_path),
        months=1,
        start="2026-11",
        seed=3,
        end=datetime(2026, 11, 1, 12, tzinfo=timezone.utc),
        scale=0.2,
    )
    table = pq.read_table(s.files[0])
    names = set(table.column_names)
    listed = {
        "line_item_usage_start_date",
        "line_item_usage_end_date",
        "line_item_line_item_type",
        "line_item_unblended_cost",
        "line_item_usage_account_id",
        "line_item_product_code",
        "line_item_usage_type",
        "line_item_resource_id",
        "bill_payer_account_id",
        "bill_invoice_id",
        "billing_period",
        "pricing_public_on_demand_cost",
        "reservation_effective_cost",
        "savings_plan_savings_plan_effective_cost",
        "savings_plan_savings_plan_a_r_n",
        "savings_plan_total_commitment_to_date",
        "savings_plan_used_commitment",
        "product_product_family",
        "product_servicecode",
        "product_instance_type",
        "product",
        "resource_tags",
        "cost_category",
    }
    assert listed <= names
    assert not any("/" in n for n in names)
    for m in ("product", "resource_tags", "cost_category"):
        t = table.schema.field(m).type
        assert pa.types.is_map(t) and t.key_type == pa.string() and t.item_type == pa.string()
    rows = table.slice(0, 2000).to_pylist()
    assert all(dict(r["product"]).get("region") for r in rows if r["line_item_line_item_type"] == "Usage")
    tag_keys = {k for r in rows for k, _ in (r["resource_tags"] or [])}
    assert tag_keys and all(k.startswith("user_") for k in tag_keys)
    assert {"user_team", "user_cost_center"} <= tag_keys
    assert set(table.column("billing_period").to_pylist()) == {"2026-11"}
    assert "BILLING_PERIOD=2026-11" in s.files[0]


def test_focus_columns_and_costs(tenants, tmp_path):
    end = datetime(2026, 11, 2, tzinfo=timezone.utc)
    focus = generate_tenant_cur(
        tenants["initech"],
        fmt="focus",
        out_uri=str(tmp_path / "f"),
        months=1,
        start="2026-11",
        seed=5,
        end=end,
        scale=0.2,
    )
    legacy = generate_tenant_cur(
        tenants["initech"],
        fmt="cur1-csv",
        out_uri=str(tmp_path / "c"),
        months=1,
        start="2026-11",
        seed=5,
        end=end,
        scale=0.2,
    )
    f = pl.read_parquet(focus.files)
    for col in (
        "BilledCost",
        "EffectiveCost",
        "ListCost",
        "ContractedCost",
        "ChargeCategory",
        "ChargeClass",
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "BillingPeriodStart",
        "BillingPeriodEnd",
        "BillingAccountId",
        "SubAccountId",
        "ProviderName",
        "PublisherName",
        "InvoiceIssuerName",
        "ServiceName",
        "ServiceCategory",
        "RegionId",
        "ResourceId",
        "SkuId",
        "CommitmentDiscountId",
        "CommitmentDiscountType",
        "CommitmentDiscountCategory",
        "CommitmentDiscountStatus",
        "PricingQuantity",
        "PricingUnit",
        "ConsumedQuantity",
        "BillingCurrency",
        "Tags",
        "x_UsageType",
        "x_Operation",
        "x_ServiceCode",
        "x_CostCategories",
        "x_Discounts",
    ):
        assert col in f.columns
    assert len(f.columns) == 48  # 43 FOCUS 1.0 columns + 5 AWS columns
    c = pl.read_csv(legacy.files, infer_schema=False).with_columns(
        pl.col(x.name).cast(pl.Float64) for x in CUR1_COLUMNS if x.kind == "float"
    )
    assert f["BilledCost"].sum() == pytest.approx(c["lineItem/UnblendedCost"].sum(), rel=1e-9)
    assert f["EffectiveCost"].sum() == pytest.approx(c.select(cid_amortized(c)).to_series().sum(), rel=1e-9)
    assert set(f["ChargeCategory"].unique()) >= {"Usage", "Purchase", "Tax", "Credit"}
    sp = f.filter(pl.col("CommitmentDiscountType") == "Savings Plan", pl.col("ChargeCategory") == "Usage")
    assert sp.height > 0 and (sp["BilledCost"] == 0).all() and (sp["CommitmentDiscountStatus"] == "Used").all()
    assert f.height == c.filter(pl.col("lineItem/LineItemType") != "SavingsPlanNegation").height


# --- commitments and amortization --------------------------------------------------------------------------
def test_savings_plan_rows_balance_per_hour(cur1_rows):
    df = cur1_rows
    t = pl.col("lineItem/LineItemType")
    keys = ["lineItem/UsageStartDate", "lineItem/UsageAccountId", "savingsPlan/SavingsPlanARN"]
    covered = (
        df.filter(t == "SavingsPlanCoveredUsage")
        .group_by(keys)
        .agg(
            pl.col("lineItem/UnblendedCost").sum().alias("cov"),
            pl.col("savingsPlan/SavingsPlanEffectiveCost").sum().alias("eff"),
        )
    )
    negation = (
        df.filter(t == "SavingsPlanNegation").group_by(keys).agg(pl.col("lineItem/UnblendedCost").sum().alias("neg"))
    )
    both = covered.join(negation, on=keys, how="full", coalesce=True)
    assert both.height > 100
    assert both.select((pl.col("cov") + pl.col("neg")).abs().max()).item() < 1e-6

    fee = df.filter(t == "SavingsPlanRecurringFee")
    used = covered.group_by("lineItem/UsageStartDate", "savingsPlan/SavingsPlanARN").agg(pl.col("eff").sum())
    check = fee.join(used, on=["lineItem/UsageStartDate", "savingsPlan/SavingsPlanARN"], how="left").with_columns(
        pl.col("eff").fill_null(0.0)
    )
    assert (check["savingsPlan/UsedCommitment"] - check["eff"]).abs().max() < 1e-6
    unused = check["savingsPlan/TotalCommitmentToDate"] - check["savingsPlan/UsedCommitment"]
    assert (unused >= -1e-9).all()
    assert (check["savingsPlan/TotalCommitmentToDate"] - check["lineItem/UnblendedCost"]).abs().max() < 1e-9
    # covered usage is billed at public on-demand and amortized at the SP rate
    cov_rows = df.filter(t == "SavingsPlanCoveredUsage")
    ratio = cov_rows["savingsPlan/SavingsPlanEffectiveCost"] / cov_rows["pricing/publicOnDemandCost"]
    assert ratio.min() == pytest.approx(0.72, abs=1e-6) and ratio.max() == pytest.approx(0.72, abs=1e-6)


def test_existing_plan_covers_part_of_eligible_usage(cur1_rows):
    df = cur1_rows.filter(pl.col("bill/BillingPeriodStartDate") == "2026-10-01T00:00:00Z")
    t = pl.col("lineItem/LineItemType")
    eligible = df.filter(
        t.is_in(["Usage", "SavingsPlanCoveredUsage"]),
        pl.col("pricing/term") == "OnDemand",
        pl.col("lineItem/UsageType").str.contains("BoxUsage|Fargate|Lambda-GB-Second"),
    )
    covered = eligible.filter(t == "SavingsPlanCoveredUsage")["pricing/publicOnDemandCost"].sum()
    coverage = covered / eligible["pricing/publicOnDemandCost"].sum()
    assert 0.40 <= coverage <= 0.60
    fee = df.filter(t == "SavingsPlanRecurringFee")
    utilization = fee["savingsPlan/UsedCommitment"].sum() / fee["savingsPlan/TotalCommitmentToDate"].sum()
    assert 0.85 <= utilization <= 1.0


def test_amortized_cost_by_cid_rule(cur1_rows):
    df = cur1_rows.with_columns(cid_amortized(cur1_rows).alias("amortized"))
    t = pl.col("lineItem/LineItemType")
    for period, month in df.group_by("bill/BillingPeriodStartDate"):
        # no-upfront commitments: amortization moves cost between rows but the total equals the invoice
        assert month["amortized"].sum() == pytest.approx(month["lineItem/UnblendedCost"].sum(), rel=1e-9), period
        # the benefit visible in amortized cost = on-demand minus SP / RI / Spot prices of the usage
        usage = month.filter(t.is_in(["Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"]))
        benefit = usage["pricing/publicOnDemandCost"].sum() - usage["amortized"].sum()
        expected = (
            usage.filter(t == "SavingsPlanCoveredUsage")
            .select(pl.col("pricing/publicOnDemandCost").sum() * 0.28)
            .item()
            + usage.filter(t == "DiscountedUsage")
            .select((pl.col("pricing/publicOnDemandCost") - pl.col("reservation/EffectiveCost")).sum())
            .item()
            + usage.filter(pl.col("pricing/term") == "Spot")
            .select((pl.col("pricing/publicOnDemandCost") - pl.col("lineItem/UnblendedCost")).sum())
            .item()
        )
        assert benefit == pytest.approx(expected, rel=1e-6)
        assert benefit > 0


def test_reserved_instance_fee_matches_discounted_usage(cur1_rows):
    t = pl.col("lineItem/LineItemType")
    oct_ = cur1_rows.filter(pl.col("bill/BillingPeriodStartDate") == "2026-10-01T00:00:00Z")
    fee = oct_.filter(t == "RIFee").row(0, named=True)
    used = oct_.filter(t == "DiscountedUsage")
    assert used.height > 0 and (used["lineItem/UnblendedCost"] == 0).all()
    rate = fee["lineItem/UnblendedRate"]
    assert fee["reservation/UnusedQuantity"] > 0  # one reservation more than the fleet
    assert fee["lineItem/UsageAmount"] == pytest.approx(
        used["lineItem/UsageAmount"].sum() + fee["reservation/UnusedQuantity"]
    )
    assert fee["reservation/UnusedRecurringFee"] == pytest.approx(fee["reservation/UnusedQuantity"] * rate)
    assert used["reservation/EffectiveCost"].sum() + fee["reservation/UnusedRecurringFee"] == pytest.approx(
        fee["lineItem/UnblendedCost"]
    )


# --- realism -------------------------------------------------------------------------------------------------
def test_estate_has_what_the_rules_look_for(cur1_rows):
    df = cur1_rows
    ut = df["lineItem/UsageType"]
    assert ut.str.contains("PublicIPv4:IdleAddress").any()
    assert (
        ut.str.contains("SpotUsage").any() and (df.filter(ut.str.contains("SpotUsage"))["pricing/term"] == "Spot").all()
    )
    for family in ("m4", "c4", "r4", "t2", "m5", "m6i", "m7g", "c6i", "r6i", "t3"):
        assert (df["product/instanceFamily"] == family).any(), family
    unattached = df.filter(pl.col("resourceTags/user:volume-state") == "available")
    assert unattached.height > 0 and unattached["lineItem/UsageType"].str.contains("EBS:VolumeUsage").all()
    assert (
        df.filter(pl.col("resourceTags/user:created-date") < "2024-01-01")["lineItem/UsageType"]
        .str.contains("SnapshotUsage")
        .all()
    )
    nat_bytes = (
        df.filter(ut.str.ends_with("NatGateway-Bytes"))
        .group_by("lineItem/ResourceId")
        .agg(pl.col("lineItem/UsageAmount").mean())
    )
    assert nat_bytes["lineItem/UsageAmount"].min() < 0.01 < nat_bytes["lineItem/UsageAmount"].max()
    for needed in (
        "Fargate-vCPU-Hours:perCPU",
        "Fargate-GB-Hours",
        "Lambda-GB-Second",
        "Request",
        "TimedStorage-ByteHrs",
        "Requests-Tier1",
        "DataTransfer-Out-Bytes",
        "NatGateway-Hours",
        "InstanceUsage:db.",
        "EBS:SnapshotUsage",
    ):
        assert ut.str.contains(needed, literal=True).any(), needed
    assert set(df["lineItem/LineItemType"].unique()) >= {
        "Usage",
        "DiscountedUsage",
        "SavingsPlanCoveredUsage",
        "SavingsPlanNegation",
        "SavingsPlanRecurringFee",
        "RIFee",
        "Tax",
        "Credit",
    }
    accounts = {a.account_id for a in load_registry(DEMO_TENANTS)[0].organization.linked_accounts}
    assert set(df["lineItem/UsageAccountId"].unique()) == accounts
    assert df["resourceTags/user:team"].null_count() > 0  # some resources are untagged


def test_daily_and_weekly_cycles(cur1_rows):
    ec2 = cur1_rows.filter(
        pl.col("lineItem/UsageType").str.contains("BoxUsage"),
        pl.col("bill/BillingPeriodStartDate") == "2026-10-01T00:00:00Z",
    )
    hourly = (
        ec2.with_columns(pl.col("lineItem/UsageStartDate").str.to_datetime("%Y-%m-%dT%H:%M:%SZ").alias("ts"))
        .group_by("ts")
        .agg(pl.col("pricing/publicOnDemandCost").sum().alias("cost"))
    )
    by_hour = hourly.group_by(pl.col("ts").dt.hour().alias("h")).agg(pl.col("cost").mean()).sort("h")
    assert by_hour["cost"].max() > 1.2 * by_hour["cost"].min()
    weekday = hourly.filter(pl.col("ts").dt.weekday() <= 5)["cost"].mean()
    weekend = hourly.filter(pl.col("ts").dt.weekday() >= 6)["cost"].mean()
    assert weekday > 1.05 * weekend


def test_invoice_id_only_on_closed_months_and_open_month_stops_at_end(cur1_rows, cur1):
    summary, _ = cur1
    assert [m.closed for m in summary.months] == [True, False]
    oct_ = cur1_rows.filter(pl.col("bill/BillingPeriodStartDate") == "2026-10-01T00:00:00Z")
    nov = cur1_rows.filter(pl.col("bill/BillingPeriodStartDate") == "2026-11-01T00:00:00Z")
    assert oct_["bill/InvoiceId"].null_count() == 0 and oct_["bill/InvoiceId"].n_unique() == 1
    assert nov["bill/InvoiceId"].null_count() == nov.height
    hourly = nov.filter(pl.col("lineItem/LineItemType") == "Usage")
    assert hourly["lineItem/UsageEndDate"].max() == "2026-11-03T05:00:00Z"
    assert summary.months[0].unblended_cost == pytest.approx(oct_["lineItem/UnblendedCost"].sum(), rel=1e-9)


# --- layout, manifests, determinism, restatement ---------------------------------------------------------------
def test_cur1_manifests_list_exactly_the_files_written(cur1):
    summary, out = cur1
    for month in summary.months:
        asm_manifest, period_manifest = (Path(m) for m in month.manifests)
        assert asm_manifest.parent.name == month.delivery_id
        assert period_manifest.parent == asm_manifest.parent.parent
        manifest = json.loads(period_manifest.read_text())
        assert manifest == json.loads(asm_manifest.read_text())
        assert manifest["assemblyId"] == month.delivery_id and manifest["bucket"] == "local"
        on_disk = sorted(p.relative_to(out).as_posix() for p in asm_manifest.parent.glob("*.csv.gz"))
        assert sorted(manifest["reportKeys"]) == on_disk
        assert manifest["compression"] == "GZIP"
        start = month.billing_period.replace("-", "") + "01T000000.000Z"
        assert manifest["billingPeriod"]["start"] == start
        assert [f"{c['category']}/{c['name']}" for c in manifest["columns"]] == [c.name for c in CUR1_COLUMNS]


@pytest.mark.parametrize("fmt", ["cur1-csv", "cur2"])
def test_split_into_several_files_and_deterministic(tenants, tmp_path, fmt):
    kwargs = dict(
        fmt=fmt,
        months=1,
        start="2026-11",
        seed=9,
        scale=0.2,
        end=datetime(2026, 11, 2, tzinfo=timezone.utc),
        rows_per_file=1500,
    )
    a = generate_tenant_cur(tenants["acme_corp"], out_uri=str(tmp_path / "a"), **kwargs)
    generate_tenant_cur(tenants["acme_corp"], out_uri=str(tmp_path / "b"), **kwargs)
    assert len(a.files) > 1
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a)
    read = (lambda f: pl.read_csv(f, infer_schema=False)) if fmt == "cur1-csv" else pl.read_parquet
    assert sum(read(f).height for f in a.files) == a.rows
    kwargs["seed"] = 10
    c = generate_tenant_cur(tenants["acme_corp"], out_uri=str(tmp_path / "c"), **kwargs)
    assert c.months[0].delivery_id != a.months[0].delivery_id
    assert c.months[0].unblended_cost != a.months[0].unblended_cost


def test_restatement_is_a_new_delivery_with_late_adjustments(tenants, tmp_path):
    kwargs = dict(
        fmt="cur2",
        out_uri=str(tmp_path),
        months=1,
        start="2026-10",
        seed=4,
        scale=0.1,
        end=datetime(2026, 11, 25, tzinfo=timezone.utc),
    )
    first = generate_tenant_cur(tenants["globex"], **kwargs)
    again = generate_tenant_cur(tenants["globex"], restatement=True, **kwargs)
    m1, m2 = first.months[0], again.months[0]
    assert m1.billing_period == m2.billing_period == "2026-10"
    assert m1.delivery_id != m2.delivery_id
    assert m1.unblended_cost != pytest.approx(m2.unblended_cost)
    manifest = json.loads(Path(m2.manifests[0]).read_text())
    assert manifest["executionId"] == m2.delivery_id
    assert [f.replace("s3://local/", str(tmp_path) + "/") for f in manifest["dataFiles"]] == m2.files
    restated = pl.read_parquet(m2.files)
    late = restated.filter(
        pl.col("line_item_line_item_type").is_in(["Credit", "Refund"]),
        pl.col("line_item_line_item_description").str.contains("after month close|Late refund"),
    )
    assert late.height == 2 and (late["line_item_unblended_cost"] < 0).all()
    assert restated["bill_invoice_id"].n_unique() == 1 and restated["bill_invoice_id"][0] is not None


def test_extra_savings_plan_raises_coverage_after_purchase(tenants, tmp_path):
    tenant = tenants["acme_corp"]
    bought = datetime(2026, 11, 2, 0, tzinfo=timezone.utc)
    plan = SavingsPlanSpec("arn:aws:savingsplans::111111111111:savingsplan/blocks-test-1", 1.5, bought)
    s = generate_tenant_cur(
        tenant,
        fmt="cur1-csv",
        out_uri=str(tmp_path),
        months=1,
        start="2026-11",
        seed=2,
        scale=0.3,
        end=datetime(2026, 11, 3, tzinfo=timezone.utc),
        extra_savings_plans=[plan],
    )
    df = pl.read_csv(s.files, infer_schema=False).with_columns(pl.col("pricing/publicOnDemandCost").cast(pl.Float64))
    eligible = df.filter(
        pl.col("lineItem/LineItemType").is_in(["Usage", "SavingsPlanCoveredUsage"]),
        pl.col("pricing/term") == "OnDemand",
        pl.col("lineItem/UsageType").str.contains("BoxUsage|Fargate|Lambda-GB-Second"),
    )
    after = pl.col("lineItem/UsageStartDate") >= "2026-11-02T00:00:00Z"

    def coverage(frame: pl.DataFrame) -> float:
        cov = frame.filter(pl.col("lineItem/LineItemType") == "SavingsPlanCoveredUsage")
        return cov["pricing/publicOnDemandCost"].sum() / frame["pricing/publicOnDemandCost"].sum()

    assert coverage(eligible.filter(after)) > coverage(eligible.filter(~after)) + 0.05
    new_plan = df.filter(pl.col("savingsPlan/SavingsPlanARN") == plan.arn)
    assert new_plan["lineItem/UsageStartDate"].min() == "2026-11-02T00:00:00Z"
    assert len(s.savings_plans) == 2


def test_writes_to_s3_through_moto(tenants, aws_env):
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    s3.create_bucket(Bucket="blocks-cur-test")
    s = generate_tenant_cur(
        tenants["initech"],
        fmt="focus",
        out_uri="s3://blocks-cur-test/exports",
        months=1,
        start="2026-11",
        seed=1,
        scale=0.2,
        end=datetime(2026, 11, 1, 6, tzinfo=timezone.utc),
    )
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="blocks-cur-test")["Contents"]}
    export = tenants["initech"].cur_source.report_name
    manifest_key = f"exports/{export}/metadata/BILLING_PERIOD=2026-11/{export}-Manifest.json"
    assert manifest_key in keys
    manifest = json.loads(s3.get_object(Bucket="blocks-cur-test", Key=manifest_key)["Body"].read())
    data_keys = {k for k in keys if k.endswith(".parquet")}
    assert {u.removeprefix("s3://blocks-cur-test/") for u in manifest["dataFiles"]} == data_keys
    assert all(
        k.startswith(f"exports/{export}/data/BILLING_PERIOD=2026-11/{s.months[0].delivery_id}/") for k in data_keys
    )


def test_bad_arguments_say_what_to_fix(tenants, tmp_path):
    t = tenants["acme_corp"]
    with pytest.raises(ValueError, match="expected YYYY-MM"):
        generate_tenant_cur(t, fmt="cur2", out_uri=str(tmp_path), months=1, seed=1, start="2026-13")
    with pytest.raises(ValueError, match="format 'cur3'"):
        generate_tenant_cur(t, fmt="cur3", out_uri=str(tmp_path), months=1, seed=1)
    with pytest.raises(ValueError, match="no hours to generate"):
        generate_tenant_cur(
            t,
            fmt="cur2",
            out_uri=str(tmp_path),
            months=1,
            seed=1,
            start="2027-01",
            end=datetime(2026, 11, 1, tzinfo=timezone.utc),
        )
    with pytest.raises(ValueError, match="hourly_commitment must be > 0"):
        SavingsPlanSpec("arn:x", 0.0, datetime(2026, 11, 1, tzinfo=timezone.utc))
