"""dbt build on DuckDB over hand-computable canonical line items: every mart, its figures, its dbt tests.

One full build and one incremental build are shared by the whole module (dbt runs take seconds)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from hashlib import md5

import duckdb
import polars as pl
import pytest

import models_helpers as h
from blocks_pipelines.lake.layout import mart_uri
from blocks_pipelines.models.build import run_dbt_build
from blocks_pipelines.models.project import MARTS
from blocks_pipelines.models.warehouse import warehouse_path
from tests.synthetic.line_items import canonical_frame, write_line_items

pytestmark = pytest.mark.slow  # dbt builds, Dagster runs or generated API cases: make test-fast skips them

TENANT = "testco"
MART_COLUMNS = {  # docs/contracts.md, in order (hourly SP marts add usage_date last for Athena partitions)
    "spend_hourly": [
        "tenant_id",
        "usage_hour",
        "usage_date",
        "billing_period",
        "usage_account_id",
        "account_name",
        "ou_path",
        "region",
        "service",
        "usage_type",
        "charge_class",
        "line_item_type",
        "unblended_cost",
        "amortized_cost",
        "public_on_demand_cost",
        "usage_amount",
        "tags",
    ],
    "spend_daily": [
        "tenant_id",
        "usage_date",
        "billing_period",
        "usage_account_id",
        "account_name",
        "ou_path",
        "region",
        "service",
        "charge_class",
        "tags",
        "unblended_cost",
        "amortized_cost",
        "public_on_demand_cost",
    ],
    "savings_projection": [
        "tenant_id",
        "period_type",
        "period_start",
        "period_end",
        "baseline_cost",
        "projected_cost",
        "savings",
        "delta_pct",
        "achievable_cost",
    ],
    "sp_eligible_usage_hourly": [
        "tenant_id",
        "usage_hour",
        "eligible_on_demand_cost",
        "covered_on_demand_cost",
        "uncovered_on_demand_cost",
        "sp_effective_cost",
        "sp_rate_ratio",
        "usage_date",
    ],
    "sp_position_hourly": [
        "tenant_id",
        "usage_hour",
        "savings_plan_arn",
        "commitment",
        "used_commitment",
        "unused_commitment",
        "eligible_on_demand_cost",
        "covered_on_demand_cost",
        "coverage_pct",
        "utilization_pct",
        "usage_date",
    ],
    "recommendations": [
        "recommendation_id",
        "tenant_id",
        "category",
        "rec_type",
        "resource_id",
        "usage_account_id",
        "region",
        "service",
        "title",
        "rationale",
        "expected_monthly_savings",
        "steps",
        "status",
        "generated_at",
    ],
    "data_sources_daily": ["tenant_id", "usage_date", "source_format", "rows", "unblended_cost"],
    "savings_ledger": [
        "tenant_id",
        "billing_period",
        "period_start",
        "period_end",
        "data_through",
        "days_with_data",
        "is_month_to_date",
        "on_demand_equivalent",
        "customer_cost",
        "promised_savings",
        "promised_savings_pct",
        "blocks_cost",
        "realized_savings",
        "realized_esr_pct",
        "margin",
        "shortfall",
        "sp_eligible_on_demand",
        "sp_covered_on_demand",
        "sp_commitment_cost",
        "sp_coverage_pct",
        "sp_utilization_pct",
        "sp_savings",
        "sp_rate_ratio",
        "hindsight_hourly_commitment",
        "hindsight_sp_savings",
        "hindsight_regret",
    ],
}


@dataclass
class Built:
    lake: str
    line_items: pl.DataFrame
    result: object
    marts: dict[str, pl.DataFrame]


def read_marts(lake: str) -> dict[str, pl.DataFrame]:
    return {m: pl.read_parquet(mart_uri(lake, m, TENANT)) for m in MARTS}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    with h.isolated_platform(root) as (config, lake):
        h.install_tenant(config, h.make_tenant(TENANT))
        line_items = h.hand_fixture(TENANT)
        write_line_items(line_items, lake)
        write_line_items(h.other_tenant_rows("othercorp"), lake)
        result = run_dbt_build(TENANT)
        yield Built(lake, line_items, result, read_marts(lake) if result.success else {})


def test_build_succeeds_and_every_dbt_test_passes(built):
    assert built.result.success, "\n".join(built.result.failures)
    tests = {k: v for k, v in built.result.statuses.items() if k.startswith("test.")}
    assert any("totals_match_line_items_spend_hourly" in k for k in tests)
    assert any("delta_pct_matches_guarantee" in k for k in tests)
    assert set(tests.values()) == {"pass"}
    assert set(built.result.exported) == set(MARTS)


def test_dbt_unit_tests_of_the_rollup_marts_run_in_the_build_and_pass(built):
    units = {k.rsplit(".", 1)[-1]: v for k, v in built.result.statuses.items() if k.startswith("unit_test.")}
    assert units == {
        "savings_projection_discounts_usage_only_per_period": "pass",
        "savings_projection_prorates_the_proposal_over_days_with_data": "pass",
        "recommendations_rules_on_one_day": "pass",
    }


@pytest.mark.parametrize("mart", MARTS)
def test_marts_are_exported_with_the_contract_columns(built, mart):
    frame = built.marts[mart]
    assert frame.columns == MART_COLUMNS[mart]
    assert frame.height > 0
    assert frame["tenant_id"].unique().to_list() == [TENANT]  # the other tenant's rows never leak in


def test_spend_totals_equal_line_items_per_day(built):
    expected = built.line_items.group_by("usage_date").agg(
        pl.col("unblended_cost").sum(), pl.col("amortized_cost").sum(), pl.col("public_on_demand_cost").sum()
    )
    for mart in ("spend_hourly", "spend_daily"):
        got = (
            built.marts[mart]
            .group_by("usage_date")
            .agg(pl.col("unblended_cost").sum(), pl.col("amortized_cost").sum(), pl.col("public_on_demand_cost").sum())
        )
        joined = expected.join(got, on="usage_date", how="full", suffix="_mart")
        assert joined.height == len(h.DAYS) + 1  # the three October days and the old snapshot's day
        for col in ("unblended_cost", "amortized_cost", "public_on_demand_cost"):
            assert (joined[col] - joined[f"{col}_mart"]).abs().max() < 1e-9, (mart, col)


def test_spend_hourly_carries_registry_accounts_and_tags(built):
    names = dict(built.marts["spend_hourly"].select("usage_account_id", "account_name").unique().iter_rows())
    ous = dict(built.marts["spend_hourly"].select("usage_account_id", "ou_path").unique().iter_rows())
    assert names[h.PROD] == "prod-web" and ous[h.PROD] == "Root/Prod"
    assert names[h.DEV] == "dev-sandbox" and ous[h.DEV] == "Root/Dev"
    assert names[h.UNKNOWN_ACCOUNT] == h.UNKNOWN_ACCOUNT and ous[h.UNKNOWN_ACCOUNT] == "Unassigned"
    m4 = built.marts["spend_hourly"].filter(pl.col("usage_type") == "EUW1-BoxUsage:m4.xlarge")
    assert json.loads(m4["tags"][0]) == {"user:team": "web"}
    assert m4["usage_hour"].dtype == pl.Datetime("us") and m4["usage_hour"].min() == datetime(2026, 10, 1)


def test_projection_delta_is_the_guarantee_and_baseline_excludes_tax_and_credits(built):
    proj = built.marts["savings_projection"]
    assert set(proj["period_type"]) == {"day", "week", "month", "ytd"}
    assert ((proj["delta_pct"] - 20.0).abs() <= 0.1).all()
    discountable = built.line_items.filter(~pl.col("charge_class").is_in(["tax", "credit", "refund"]))
    oct1 = discountable.filter(pl.col("usage_date") == date(2026, 10, 1))["amortized_cost"].sum()
    day = proj.filter((pl.col("period_type") == "day") & (pl.col("period_start") == date(2026, 10, 1))).row(
        0, named=True
    )
    assert day["baseline_cost"] == pytest.approx(oct1)
    assert day["projected_cost"] == pytest.approx(0.8 * oct1)
    assert day["savings"] == pytest.approx(0.2 * oct1)
    assert day["achievable_cost"] is None  # no SP proposal in the state store yet
    week = proj.filter((pl.col("period_type") == "week") & (pl.col("period_start") == date(2026, 9, 28))).row(
        0, named=True
    )
    assert week["period_end"] == date(2026, 10, 4)
    oct_total = discountable.filter(pl.col("billing_period") == "2026-10")["amortized_cost"].sum()
    assert week["baseline_cost"] == pytest.approx(oct_total)
    month = proj.filter((pl.col("period_type") == "month") & (pl.col("period_start") == date(2026, 10, 1))).row(
        0, named=True
    )
    assert month["period_end"] == date(2026, 10, 31)
    ytd = proj.filter(pl.col("period_type") == "ytd").row(0, named=True)
    assert (ytd["period_start"], ytd["period_end"]) == (date(2026, 1, 1), date(2026, 10, 3))
    assert ytd["baseline_cost"] == pytest.approx(discountable["amortized_cost"].sum())


def _hour(frame: pl.DataFrame, ts: datetime) -> pl.DataFrame:
    return frame.filter(pl.col("usage_hour") == ts.replace(tzinfo=None))


def test_sp_eligible_usage_in_the_sp_hour_matches_hand_computation(built):
    row = _hour(built.marts["sp_eligible_usage_hourly"], h.SP_HOUR).row(0, named=True)
    # Covered: 12.0 (plan A) + 7.5 (plan B); uncovered eligible: m4 2.0 + Fargate 0.5 + Lambda 0.5; Spot/RDS/S3 out.
    assert row["eligible_on_demand_cost"] == pytest.approx(22.5)
    assert row["covered_on_demand_cost"] == pytest.approx(19.5)
    assert row["uncovered_on_demand_cost"] == pytest.approx(3.0)
    assert row["sp_effective_cost"] == pytest.approx(13.0)
    assert row["sp_rate_ratio"] == pytest.approx(13.0 / 19.5)


def test_sp_eligible_usage_is_zero_filled_and_carries_the_observed_ratio(built):
    eligible = built.marts["sp_eligible_usage_hourly"]
    assert eligible.height == 3 * 24 + 1  # every hour with data, the old snapshot's hour included
    quiet = _hour(eligible, datetime(2026, 10, 2, 3)).row(0, named=True)
    assert quiet["eligible_on_demand_cost"] == pytest.approx(h.M4_HOURLY + h.DEV_HOURLY)
    assert quiet["covered_on_demand_cost"] == 0
    assert quiet["sp_rate_ratio"] == pytest.approx(13.0 / 19.5)  # the latest observed ratio, not the default


def test_sp_position_matches_hand_computed_coverage_and_utilization(built):
    pos = {r["savings_plan_arn"]: r for r in _hour(built.marts["sp_position_hourly"], h.SP_HOUR).iter_rows(named=True)}
    assert set(pos) == {h.PLAN_A, h.PLAN_B, "TOTAL"}
    a, b, total = pos[h.PLAN_A], pos[h.PLAN_B], pos["TOTAL"]
    assert (a["commitment"], a["used_commitment"], a["unused_commitment"]) == pytest.approx((10.0, 8.0, 2.0))
    assert a["utilization_pct"] == pytest.approx(80.0)
    assert a["coverage_pct"] == pytest.approx(100 * 12.0 / 22.5)
    assert (b["commitment"], b["used_commitment"], b["unused_commitment"]) == pytest.approx((5.0, 5.0, 0.0))
    assert b["utilization_pct"] == pytest.approx(100.0)
    assert (total["commitment"], total["used_commitment"], total["unused_commitment"]) == pytest.approx(
        (15.0, 13.0, 2.0)
    )
    assert total["coverage_pct"] == pytest.approx(100 * 19.5 / 22.5)
    assert total["utilization_pct"] == pytest.approx(100 * 13.0 / 15.0)
    assert total["eligible_on_demand_cost"] == pytest.approx(22.5)


def test_sp_position_total_row_exists_for_hours_without_plans(built):
    row = _hour(built.marts["sp_position_hourly"], datetime(2026, 10, 1, 11))
    assert row["savings_plan_arn"].to_list() == ["TOTAL"]
    r = row.row(0, named=True)
    assert (r["commitment"], r["coverage_pct"], r["utilization_pct"]) == (0.0, 0.0, None)


def test_recommendations_rules_and_expected_savings(built):
    recs = {r["rec_type"]: r for r in built.marts["recommendations"].iter_rows(named=True)}
    assert set(recs) == {
        "previous_generation_instance",
        "downsize_non_production",
        "compute_sp_coverage_below_target",
        "idle_public_ipv4",
        "idle_nat_gateway",
        "ebs_volume_without_running_instance",
        "old_snapshot",
    }
    to_month = 30 / 3  # three days observed
    hours = 72
    assert recs["previous_generation_instance"]["resource_id"] == "i-m4old"
    assert "m6i.xlarge" in recs["previous_generation_instance"]["title"]
    assert recs["previous_generation_instance"]["expected_monthly_savings"] == pytest.approx(
        round(h.M4_HOURLY * hours * (1 - 0.96) * to_month, 2)
    )
    assert recs["downsize_non_production"]["resource_id"] == "i-devbig"
    assert recs["downsize_non_production"]["expected_monthly_savings"] == pytest.approx(
        round(h.DEV_HOURLY * 24 * 0.5 * to_month, 2)
    )
    eligible = h.M4_HOURLY * hours + h.DEV_HOURLY * 24 + 12.0 + 7.5 + 0.5 + 0.5
    posture = eligible * to_month * (0.8 - 19.5 / eligible) * (1 - 13.0 / 19.5)
    assert recs["compute_sp_coverage_below_target"]["expected_monthly_savings"] == pytest.approx(round(posture, 2))
    assert recs["idle_public_ipv4"]["expected_monthly_savings"] == pytest.approx(round(0.005 * hours * to_month, 2))
    assert recs["idle_nat_gateway"]["resource_id"] == "nat-quiet"
    assert recs["ebs_volume_without_running_instance"]["resource_id"] == "vol-orphan"
    assert recs["old_snapshot"]["resource_id"] == "snap-old"
    assert {r["category"] for r in recs.values()} == {"modernization", "rightsizing", "commitment_posture", "idle"}


def test_recommendations_are_actionable_with_stable_ids(built):
    recs = built.marts["recommendations"]
    compute_month = (
        built.line_items.filter(pl.col("service") == "AmazonEC2", pl.col("charge_class") == "usage")[
            "unblended_cost"
        ].sum()
        * 10
    )
    assert compute_month > 1000 and recs.height >= 1  # > $1k monthly compute -> at least one recommendation
    for r in recs.iter_rows(named=True):
        assert r["expected_monthly_savings"] > 0 and r["status"] == "open"
        steps = json.loads(r["steps"])
        assert isinstance(steps, list) and len(steps) >= 2 and all(isinstance(s, str) for s in steps)
        assert r["recommendation_id"] == md5(f"{TENANT}|{r['rec_type']}|{r['resource_id']}".encode()).hexdigest()
        assert r["rationale"] and r["title"]


def test_spend_totals_dbt_test_catches_a_drifted_mart(built, tmp_path):
    """The totals test is real: shift one spend_hourly row and `dbt test` fails on exactly that day."""
    with duckdb.connect(str(warehouse_path(TENANT))) as con:
        con.execute(
            "update spend_hourly set unblended_cost = unblended_cost + 1 "
            "where usage_hour = '2026-10-03 07:00:00' and usage_type = 'EUW1-BoxUsage:m4.xlarge'"
        )
    result = run_dbt_build(TENANT, select="spend_hourly", command="test")
    assert not result.success
    assert result.failing_rows == {
        "totals_match_line_items_spend_hourly_unblended_cost__amortized_cost__public_on_demand_cost": 1
    }


class _Proposal:
    def __init__(self, monthly: float, created_at: datetime):
        self.expected = {"expected_monthly_savings": monthly}
        self.created_at = created_at


class _StoreWithProposals:
    """The slice of StateStore achievable_daily_savings reads."""

    def __init__(self, proposals):
        self.proposals = proposals

    def list_proposals(self, tenant_id, statuses=None):
        return self.proposals


def test_incremental_rebuild_replaces_only_the_run_days_and_applies_the_sp_proposal(built):
    """Day 2 is restated (m4 cost doubled, its last four hours gone); a run for a few of its hours rebuilds whole
    days 2-3 only, so the vanished hours disappear from the marts too."""
    before = built.marts["spend_hourly"]
    m4 = pl.col("resource_id") == "i-m4old"
    day2 = built.line_items.filter(
        pl.col("usage_date") == date(2026, 10, 2), pl.col("usage_start").dt.hour() < 20
    ).with_columns(
        *[
            pl.when(m4).then(pl.col(c) * 2).otherwise(pl.col(c)).alias(c)
            for c in ("unblended_cost", "amortized_cost", "public_on_demand_cost")
        ]
    )
    restated = pl.concat([built.line_items.filter(pl.col("usage_date") != date(2026, 10, 2)), day2])
    write_line_items(day2, built.lake)
    store = _StoreWithProposals(
        [
            _Proposal(304.375, datetime(2026, 10, 3, tzinfo=timezone.utc)),
            _Proposal(1.0, datetime(2026, 9, 1, tzinfo=timezone.utc)),
        ]
    )
    result = run_dbt_build(
        TENANT,
        start=datetime(2026, 10, 2, 5, tzinfo=timezone.utc),
        end=datetime(2026, 10, 3, 6, tzinfo=timezone.utc),
        store=store,
    )
    assert result.success, "\n".join(result.failures)
    after = read_marts(built.lake)
    daily = lambda f: dict(f.group_by("usage_date").agg(pl.col("unblended_cost").sum()).iter_rows())  # noqa: E731
    old, new, truth = daily(before), daily(after["spend_hourly"]), daily(restated)
    assert new[date(2026, 10, 2)] == pytest.approx(truth[date(2026, 10, 2)])
    assert new[date(2026, 10, 2)] != pytest.approx(old[date(2026, 10, 2)])
    hours = after["spend_hourly"].filter(pl.col("usage_date") == date(2026, 10, 2))["usage_hour"].n_unique()
    assert hours == 20
    assert after["sp_eligible_usage_hourly"].height == built.marts["sp_eligible_usage_hourly"].height - 4
    assert new[date(2026, 10, 3)] == pytest.approx(truth[date(2026, 10, 3)])  # the drifted row was replaced too
    assert new[date(2026, 10, 1)] == pytest.approx(old[date(2026, 10, 1)])
    assert (
        after["spend_hourly"]
        .filter(pl.col("usage_date") == date(2026, 10, 1))
        .equals(before.filter(pl.col("usage_date") == date(2026, 10, 1)))
    )
    assert dict(
        after["spend_daily"].group_by("usage_date").agg(pl.col("unblended_cost").sum()).iter_rows()
    ) == pytest.approx(truth)
    proj = after["savings_projection"]
    assert ((proj["delta_pct"] - 20.0).abs() <= 0.1).all()
    daily_savings = 304.375 / (365.25 / 12)  # the newest live proposal: $10 a day
    day = proj.filter(pl.col("period_type") == "day").sort("period_start").row(-1, named=True)
    assert day["achievable_cost"] == pytest.approx(day["baseline_cost"] - daily_savings)
    week = proj.filter((pl.col("period_type") == "week") & (pl.col("period_start") == date(2026, 9, 28))).row(
        0, named=True
    )
    assert week["achievable_cost"] == pytest.approx(week["baseline_cost"] - 3 * daily_savings)


def test_data_sources_daily_tells_cost_explorer_days_from_cur_days(built):
    """Cost Explorer wrote two days (one row per service and day) before the first CUR day: the mart keeps each
    day's source, row count and total, is exported, and its dbt tests (accepted source formats among them) pass."""
    tenant = h.make_tenant("ceco")
    ce_days = [datetime(2026, 9, 29, tzinfo=timezone.utc), datetime(2026, 9, 30, tzinfo=timezone.utc)]
    cost_explorer = [
        {
            "tenant_id": tenant.id,
            "usage_start": day,
            "usage_end": day + timedelta(days=1),
            "service": service,
            "unblended_cost": cost,
            "source_format": "cost_explorer",
            "delivery_id": "ce-20261001T0000",
        }
        for day in ce_days
        for service, cost in (("AmazonEC2", 40.0), ("AmazonS3", 2.5))
    ]
    cur = [
        {
            "tenant_id": tenant.id,
            "usage_start": datetime(2026, 10, 1, hour, tzinfo=timezone.utc),
            "service": "AmazonEC2",
            "usage_type": "EUW1-BoxUsage:m5.large",
            "unblended_cost": 1.5,
        }
        for hour in range(24)
    ]
    write_line_items(canonical_frame(cost_explorer + cur), built.lake)
    result = run_dbt_build(tenant)  # every mart: Cost Explorer rows must not break the others either
    assert result.success, "\n".join(result.failures)
    tests = {k: v for k, v in result.statuses.items() if k.startswith("test.") and "data_sources_daily" in k}
    assert any("accepted_values_data_sources_daily_source_format" in k for k in tests)
    assert set(tests.values()) == {"pass"}
    mart = pl.read_parquet(mart_uri(built.lake, "data_sources_daily", tenant.id))
    assert mart.columns == MART_COLUMNS["data_sources_daily"]
    assert sorted(mart.select("usage_date", "source_format", "rows", "unblended_cost").iter_rows()) == [
        (date(2026, 9, 29), "cost_explorer", 2, 42.5),
        (date(2026, 9, 30), "cost_explorer", 2, 42.5),
        (date(2026, 10, 1), "cur1", 24, 36.0),
    ]


def test_a_tenant_without_line_items_gets_an_actionable_error(built):
    with pytest.raises(FileNotFoundError, match="ingest its CUR first"):
        run_dbt_build(h.make_tenant("emptyco"))
