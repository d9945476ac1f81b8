"""Readers and normalization against real-format CUR samples (koku) and the CID amortization rule."""

import json
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from conftest import REAL_CUR

from blocks_pipelines.ingestion.deliveries import peek_invoice_id
from blocks_pipelines.ingestion.formats import SourceContext, detect_format, normalize
from blocks_pipelines.ingestion.schema import CANONICAL_SCHEMA
from blocks_pipelines.ingestion.timeparse import parse_utc


def _norm(path, fmt=None):
    lf = pl.scan_csv(path, infer_schema=False)
    fmt = fmt or detect_format(lf.collect_schema().names())
    return fmt, normalize(lf, fmt, SourceContext("t1", "d1", str(path))).collect()


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "text",
    [
        "2023-06-01T05:00:00Z",
        "2023-06-01 05:00:00",
        "2023-06-01T05:00:00.000Z",
        "2023-06-01 05:00:00.000",
        # FOCUS exports of other providers
        "2023-06-01T05:00Z",
        "2023-06-01 05:00:00 UTC",
        "2023-06-01T05:00:00+00:00",
        "2023-06-01T07:00:00+02:00",
        "2023-06-01T00:30:00-0430",
        "2023-06-01T05:00:00.123456Z",
    ],
)
def test_every_cur_timestamp_form_reads_as_utc(text):
    out = pl.select(parse_utc(pl.lit(text), pl.String)).item()
    assert out == utc(2023, 6, 1, 5)


@pytest.mark.parametrize("text", ["06/01/2023 5am", "2023-06-01T05:00:00+2", "2023-13-01T00:00:00Z", "yesterday"])
def test_unparseable_timestamp_reads_as_null_for_the_checker(text):
    assert pl.select(parse_utc(pl.lit(text), pl.String)).item() is None


def test_a_date_alone_is_its_midnight_utc():
    assert pl.select(parse_utc(pl.lit("2023-06-01"), pl.String)).item() == utc(2023, 6, 1)


def test_legacy_csv_with_savings_plan_rows_and_cost_categories():
    fmt, df = _norm(REAL_CUR / "koku-2023-06-01.csv")
    raw = pl.read_csv(REAL_CUR / "koku-2023-06-01.csv", infer_schema=False)
    assert fmt == "cur1"
    assert dict(df.schema) == CANONICAL_SCHEMA
    assert df["usage_start"].to_list() == [utc(2023, 6, 1, h) for h in range(3)]
    assert df["billing_period"].unique().to_list() == ["2023-06"]
    assert df["currency"].unique().to_list() == ["NOK"]
    # account ids stay text: leading zeros survive
    assert df["payer_account_id"].unique().to_list() == ["0099999999999"]
    # SavingsPlanCoveredUsage amortizes to the SP effective cost, not the unblended cost
    assert df["amortized_cost"].to_list() == raw["savingsPlan/SavingsPlanEffectiveCost"].cast(pl.Float64).to_list()
    assert df["unblended_cost"].sum() == pytest.approx(raw["lineItem/UnblendedCost"].cast(pl.Float64).sum())
    cats = json.loads(df["cost_categories"][0])
    assert cats["cost_env"] == "prod" and cats["qe_source"] == "aws-single"
    assert df["invoice_id"].unique().to_list() == ["987654321"]
    assert df["region"].unique().to_list() == ["us-west-1"]


def test_not_final_variant_has_no_invoice():
    _, df = _norm(REAL_CUR / "koku-2023-06-01-not-final.csv")
    assert df["invoice_id"].null_count() == df.height
    assert peek_invoice_id(str(REAL_CUR / "koku-2023-06-01-not-final.csv")) is None
    assert peek_invoice_id(str(REAL_CUR / "koku-2023-06-01.csv")) == "987654321"


def test_alt_snake_case_columns_map_to_the_same_fields():
    fmt, df = _norm(REAL_CUR / "koku-2022-07-01-alt-columns.csv")
    assert fmt == "cur1"  # legacy content with Athena-style names: no CUR 2.0 map columns
    assert df["usage_start"].to_list() == [utc(2022, 7, 1, 0), utc(2022, 7, 1, 1)]
    assert df["service"].to_list() == ["mra", "mra"]
    assert df["region"].to_list() == ["us-east-1", "us-east-1"]
    assert json.loads(df["tags"][0]) == {"aws:created_by": "IAMUser:fake:and"}


def test_gzip_legacy_csv_with_blank_optional_columns(tmp_path):
    import gzip

    plain = tmp_path / "cur.csv"
    plain.write_bytes(gzip.decompress((REAL_CUR / "koku-test_cur.csv.gz").read_bytes()))
    fmt, df = _norm(plain)
    raw = pl.read_csv(plain, infer_schema=False)
    assert df.height == raw.height == 19
    assert df["unblended_cost"].sum() == pytest.approx(raw["lineItem/UnblendedCost"].cast(pl.Float64).sum(), abs=1e-12)
    assert df["reservation_arn"].null_count() == 19  # blank optional values become nulls
    assert df["usage_amount"].null_count() == 0


def _legacy_rows(rows):
    base = {
        "bill/PayerAccountId": "111111111111",
        "lineItem/UsageAccountId": "111111111112",
        "lineItem/UsageStartDate": "2026-11-01T00:00:00Z",
        "lineItem/CurrencyCode": "USD",
    }
    return pl.DataFrame([{**base, **r} for r in rows]).lazy()


def test_amortized_cost_follows_the_cid_rule():
    rows = [
        {"lineItem/LineItemType": "Usage", "lineItem/UnblendedCost": "5"},
        {
            "lineItem/LineItemType": "SavingsPlanCoveredUsage",
            "lineItem/UnblendedCost": "10",
            "savingsPlan/SavingsPlanEffectiveCost": "7",
        },
        {
            "lineItem/LineItemType": "SavingsPlanNegation",
            "lineItem/UnblendedCost": "-10",
            "pricing/publicOnDemandCost": "10",
        },
        {
            "lineItem/LineItemType": "SavingsPlanRecurringFee",
            "lineItem/UnblendedCost": "8",
            "savingsPlan/TotalCommitmentToDate": "8",
            "savingsPlan/UsedCommitment": "7",
        },
        {"lineItem/LineItemType": "SavingsPlanUpfrontFee", "lineItem/UnblendedCost": "100"},
        {"lineItem/LineItemType": "DiscountedUsage", "lineItem/UnblendedCost": "0", "reservation/EffectiveCost": "3"},
        {
            "lineItem/LineItemType": "RIFee",
            "lineItem/UnblendedCost": "9",
            "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod": "1",
            "reservation/UnusedRecurringFee": "2",
        },
        {"lineItem/LineItemType": "Fee", "lineItem/UnblendedCost": "50", "reservation/ReservationARN": "arn:ri"},
        {"lineItem/LineItemType": "Tax", "lineItem/UnblendedCost": "4"},
    ]
    df = normalize(_legacy_rows(rows), "cur1", SourceContext("t1", "d1", "x.csv")).collect()
    assert df["amortized_cost"].to_list() == [5.0, 7.0, 0.0, 1.0, 0.0, 3.0, 3.0, 0.0, 4.0]
    negation = df.filter(pl.col("line_item_type") == "SavingsPlanNegation")
    assert negation["public_on_demand_cost"].to_list() == [0.0]
    assert df["charge_class"].to_list()[:3] == ["usage", "savings_plan", "savings_plan"]
    # an export without lineItem/UsageEndDate (an optional column): each row ends an hour after it starts
    assert set(df["usage_end"] - df["usage_start"]) == {timedelta(hours=1)}


def test_focus_rows_keep_their_provider_and_derive_line_item_types():
    lf = pl.LazyFrame(
        {
            "ProviderName": ["AWS", "Microsoft", "Google Cloud", "Oracle"],
            "BillingAccountId": ["111111111111", "ms-ba", "gcp-ba", "oci-ba"],
            "ChargePeriodStart": ["2026-11-01T00:00:00Z"] * 4,
            "ChargePeriodEnd": ["2026-11-01T01:00:00Z"] * 4,
            "ChargeCategory": ["Usage", "usage", "TAX", "Credit"],  # providers differ in case
            "CommitmentDiscountType": ["Savings Plan", None, None, None],
            "CommitmentDiscountStatus": ["Used", None, None, None],
            "CommitmentDiscountId": ["arn:sp", None, None, None],
            "BilledCost": ["2", "3", "0.5", "-1"],
            "EffectiveCost": ["1.5", "3", "0.5", "-1"],
            "BillingCurrency": ["USD"] * 4,
            "Tags": ['{"team":"web"}', None, None, None],
        }
    )
    assert detect_format(lf.collect_schema().names()) == "focus"
    df = normalize(lf, "focus", SourceContext("t1", "d1", "f.csv")).collect()
    assert df["provider"].to_list() == ["AWS", "Microsoft", "Google Cloud", "Oracle"]
    assert df["line_item_type"].to_list() == ["SavingsPlanCoveredUsage", "Usage", "Tax", "Credit"]
    assert df["amortized_cost"].to_list() == [1.5, 3.0, 0.5, -1.0]
    assert df["savings_plan_arn"].to_list() == ["arn:sp", None, None, None]
    assert json.loads(df["tags"][0]) == {"team": "web"}


def test_cur2_parquet_maps_become_json_text_with_legacy_tag_keys():
    from tests.synthetic.cur_frames import cur2_frame

    raw = cur2_frame(40, "2026-11", "111111111111", ["111111111112"])
    assert detect_format(raw.columns) == "cur2"
    df = normalize(raw.lazy(), "cur2", SourceContext("t1", "d1", "x.parquet")).collect()
    tags = json.loads(df["tags"][0])
    assert set(tags) == {"user:team", "user:env"}
    assert df["region"][0] == raw["product_region_code"][0]
    assert df["unblended_cost"].sum() == pytest.approx(raw["line_item_unblended_cost"].sum())


def test_tag_values_with_quotes_and_backslashes_stay_valid_json():
    kv = lambda k, v: {"key": k, "value": v}  # noqa: E731
    lf = pl.LazyFrame(
        {
            "line_item_line_item_type": ["Usage", "Usage"],
            "line_item_usage_start_date": ["2026-11-01T00:00:00Z"] * 2,
            "line_item_unblended_cost": [1.0, 2.0],
            "line_item_currency_code": ["USD"] * 2,
            "bill_payer_account_id": ["111111111111"] * 2,
            "line_item_usage_account_id": ["111111111112"] * 2,
            "resource_tags": [
                [kv("user_name", 'say "hi"\\n'), kv("user_empty", ""), kv("aws_created_by", "x},{y")],
                None,
            ],
            "billing_period": ["2026-11"] * 2,
        }
    )
    df = normalize(lf, "cur2", SourceContext("t1", "d1", "x.parquet")).collect()
    assert json.loads(df["tags"][0]) == {"user:name": 'say "hi"\\n', "aws:created_by": "x},{y"}
    assert df["tags"][1] == "{}"


def test_a_file_mixing_timestamp_forms_is_read_with_the_general_parser(blocks_env, tmp_path):
    from blocks_pipelines.ingestion.ingest import ingest_delivery
    from blocks_pipelines.settings import get_settings
    from blocks_pipelines.tenants.config import load_registry
    from tests.synthetic.cur_frames import cur1_frame

    acme = {t.id: t for t in load_registry(get_settings().tenants_dir)}["acme_corp"]
    df = cur1_frame(600, "2026-10", "111111111111", ["111111111112"])
    # the sampled first rows use one form, a later row another: the fast fixed-format parse must fall back
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 500)
        .then(pl.col("lineItem/UsageStartDate").str.replace("T", " ").str.replace("Z", ".000"))
        .otherwise(pl.col("lineItem/UsageStartDate"))
        .alias("lineItem/UsageStartDate")
    )
    path = tmp_path / "mixed.csv"
    df.write_csv(path)
    summary = ingest_delivery(acme, str(path))
    assert summary.rows == 600 and summary.matches


def test_focus_instance_type_from_x_columns_sku_details_or_usage_type():
    lf = pl.LazyFrame(
        {
            "ProviderName": ["AWS"] * 4,
            "BillingAccountId": ["111111111111"] * 4,
            "ChargePeriodStart": ["2026-11-01T00:00:00Z"] * 4,
            "ChargePeriodEnd": ["2026-11-01T01:00:00Z"] * 4,
            "ChargeCategory": ["Usage"] * 4,
            "BilledCost": ["1", "1", "1", "1"],
            "EffectiveCost": ["1", "1", "1", "1"],
            "BillingCurrency": ["USD"] * 4,
            "x_InstanceType": ["c6i.xlarge", None, None, None],
            "SkuPriceDetails": [None, '{"InstanceType": "r5.2xlarge"}', None, None],
            "x_UsageType": [
                "EUW1-BoxUsage:m5.large",
                None,
                "USE1-InstanceUsage:db.r5.large",
                "USE1-TimedStorage-ByteHrs",
            ],
        }
    )
    df = normalize(lf, "focus", SourceContext("t1", "d1", "f.csv")).collect()
    assert df["instance_type"].to_list() == ["c6i.xlarge", "r5.2xlarge", "db.r5.large", None]
    # Parquet exports write SkuPriceDetails as a MAP column
    entries = pl.List(pl.Struct({"key": pl.String, "value": pl.String}))
    as_map = lf.with_columns(
        pl.Series("SkuPriceDetails", [None, [{"key": "InstanceType", "value": "r5.2xlarge"}], [], None], entries).cast(
            pl.Map(pl.String, pl.String)
        )
    )
    df = normalize(as_map, "focus", SourceContext("t1", "d1", "f.parquet")).collect()
    assert df["instance_type"].to_list() == ["c6i.xlarge", "r5.2xlarge", "db.r5.large", None]


def test_cur2_csv_map_columns_get_legacy_tag_keys(tmp_path):
    from tests.synthetic.cur_frames import cur2_frame

    raw = cur2_frame(10, "2026-11", "111111111111", ["111111111112"])
    maps = [c for c, t in raw.schema.items() if isinstance(t, pl.List)]  # AWS writes map columns as JSON in CSV
    as_text = raw.with_columns(
        pl.col(c).map_elements(lambda m: json.dumps({e["key"]: e["value"] for e in m}), return_dtype=pl.String)
        for c in maps
    )
    lf = as_text.select(pl.all().cast(pl.String)).lazy()
    df = normalize(lf, "cur2", SourceContext("t1", "d1", "x.csv.gz")).collect()
    tags = json.loads(df["tags"][0])
    assert set(tags) == {"user:team", "user:env"}
    # product attributes only the `product` map holds are read from its JSON text too
    assert df["service_name"].unique().to_list() == ["Amazon Elastic Compute Cloud"]
    without_top_level = lf.drop("product_region_code")
    regions = normalize(without_top_level, "cur2", SourceContext("t1", "d1", "x.csv.gz")).collect()["region"]
    assert regions.to_list() == raw["product_region_code"].to_list()
    # product attributes only the `product` map holds are read from its JSON text too
    assert df["service_name"].unique().to_list() == ["Amazon Elastic Compute Cloud"]
    without_top_level = lf.drop("product_region_code")
    regions = normalize(without_top_level, "cur2", SourceContext("t1", "d1", "x.csv.gz")).collect()["region"]
    assert regions.to_list() == raw["product_region_code"].to_list()


def _tagged_rows(n: int) -> pl.LazyFrame:
    kv = lambda k, v: {"key": k, "value": v}  # noqa: E731
    return pl.LazyFrame(
        {
            "line_item_line_item_type": ["Usage"] * n,
            "line_item_usage_start_date": ["2026-11-01T00:00:00Z"] * n,
            "line_item_unblended_cost": [1.0] * n,
            "line_item_currency_code": ["USD"] * n,
            "bill_payer_account_id": ["111111111111"] * n,
            "line_item_usage_account_id": ["111111111112"] * n,
            # every third row shares a tag set, the rest are distinct: both paths of the per-batch lookup
            "resource_tags": [
                [kv("user_team", f"team-{i % 3 if i % 2 else i}"), kv("user_env", "prod")] for i in range(n)
            ],
            "billing_period": ["2026-11"] * n,
        }
    )


def test_looked_up_tags_equal_the_per_row_json():
    from blocks_pipelines.ingestion.formats import plan

    lf = _tagged_rows(5_000)
    ctx = SourceContext("t1", "d1", "x.parquet")
    schema = dict(lf.collect_schema())
    looked_up = plan(schema, "cur2", ctx, lookups=True)
    per_row = plan(schema, "cur2", ctx, lookups=False)
    assert looked_up.lookups and not per_row.lookups
    a = looked_up.source(lf).select(looked_up.exprs).collect()["tags"]
    b = per_row.source(lf).select(per_row.exprs).collect()["tags"]
    assert a.to_list() == b.to_list()
    assert json.loads(a[4]) == {"user:team": "team-4", "user:env": "prod"}


def test_a_hash_collision_never_gives_a_row_another_rows_tags(monkeypatch):
    """Every row hashing to one key is the worst collision: each row must still get its own tags."""
    lf = _tagged_rows(50)
    monkeypatch.setattr(pl.Series, "hash", lambda self, *a, **k: pl.Series(self.name, [0] * self.len(), pl.UInt64))
    df = normalize(lf, "cur2", SourceContext("t1", "d1", "x.parquet")).collect()
    assert [json.loads(t)["user:team"] for t in df["tags"]] == [f"team-{i % 3 if i % 2 else i}" for i in range(50)]
