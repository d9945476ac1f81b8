"""The Python side of the models domain without running dbt: vars, manifest cache, proposal lookup, export."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from blocks_pipelines.models import project
from blocks_pipelines.models.achievable import achievable_daily_savings
from blocks_pipelines.models.export import export_marts
from blocks_pipelines.models.vars import dbt_vars, tenant_accounts
from blocks_pipelines.state import ProposalStatus
from blocks_pipelines.tenants.config import resolve_tenant
from models_helpers import PAYER, install_tenant, make_tenant

UTC = timezone.utc


def test_vars_carry_the_tenant_its_month_versions_accounts_and_guardrail(blocks_env):
    from blocks_pipelines.lake import months
    from tests.synthetic.line_items import canonical_frame, write_line_items

    tenant = make_tenant("testco")
    lake = f"{blocks_env}/lake"
    rows = [{"tenant_id": "testco", "usage_start": datetime(2026, m, d, tzinfo=UTC)} for m, d in ((9, 30), (10, 1))]
    write_line_items(canonical_frame(rows), lake)
    v = dbt_vars(tenant, start=datetime(2026, 10, 1, 5, tzinfo=UTC), end=datetime(2026, 10, 1, 8, tzinfo=UTC))
    assert v["tenant_id"] == "testco"
    versions = {m.billing_period: m.version for m in months.current_months(lake, "testco")}
    assert v["line_items_globs"] == [
        f"{lake}/cur_line_items/tenant_id=testco/billing_period={bp}/version={versions[bp]}/usage_date=*/*.parquet"
        for bp in ("2026-09", "2026-10")
    ]
    assert (v["start"], v["end"]) == ("2026-10-01 05:00:00", "2026-10-01 08:00:00")
    assert v["target_coverage"] == 0.8 and v["achievable_daily_savings"] is None
    assert {a["account_id"]: a["ou_path"] for a in v["accounts"]}["444444444402"] == "Root/Prod"


def test_vars_convert_other_time_zones_to_utc(blocks_env):
    cet = timezone(timedelta(hours=2))
    v = dbt_vars(make_tenant(), start=datetime(2026, 10, 1, 7, tzinfo=cet), end=datetime(2026, 10, 1, 9, tzinfo=cet))
    assert (v["start"], v["end"]) == ("2026-10-01 05:00:00", "2026-10-01 07:00:00")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start": datetime(2026, 10, 1, tzinfo=UTC)}, "give both start and end"),
        ({"start": datetime(2026, 10, 2, tzinfo=UTC), "end": datetime(2026, 10, 1, tzinfo=UTC)}, "must be after"),
        ({"achievable_daily_savings": -1.0}, "must be >= 0"),
    ],
)
def test_bad_vars_are_refused_with_a_fix(blocks_env, kwargs, message):
    with pytest.raises(ValueError, match=message):
        dbt_vars(make_tenant(), **kwargs)


def test_payer_is_listed_even_when_not_a_linked_account():
    tenant = make_tenant()
    data = tenant.model_dump()
    data["organization"]["linked_accounts"] = [
        a for a in data["organization"]["linked_accounts"] if a["account_id"] != PAYER
    ]
    accounts = tenant_accounts(type(tenant).model_validate(data))
    assert {"account_id": PAYER, "name": "payer", "ou_path": "Root"} in accounts


def test_resolve_tenant_by_id_names_the_missing_file(blocks_env):
    install_tenant(blocks_env.parent / "assets_config", make_tenant("testco"))
    assert resolve_tenant("testco").id == "testco"
    with pytest.raises(KeyError, match="assets_config/tenants/nope.yaml"):
        resolve_tenant("nope")


def test_project_hash_follows_every_project_file(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "dbt_project.yml").write_text("name: x\n")
    (tmp_path / "profiles.yml").write_text("x: {}\n")
    (tmp_path / "models" / "a.sql").write_text("select 1")
    first = project.project_hash(tmp_path)
    assert project.project_hash(tmp_path) == first
    (tmp_path / "models" / "a.sql").write_text("select 2")
    assert project.project_hash(tmp_path) != first
    (tmp_path / "models" / "a.sql").write_text("select 1")
    (tmp_path / "models" / "b.yml").write_text("version: 2\n")
    assert project.project_hash(tmp_path) != first


def test_an_existing_manifest_is_reused_without_running_dbt(tmp_path, monkeypatch):
    for name in ("dbt_project.yml", "profiles.yml"):
        (tmp_path / name).write_text(name)
    cached = tmp_path / "target" / "manifests" / f"duckdb-{project.project_hash(tmp_path)}" / "manifest.json"
    cached.parent.mkdir(parents=True)
    cached.write_text('{"nodes": {}}')
    monkeypatch.setenv("BLOCKS_DBT_TARGET", "duckdb")
    monkeypatch.setattr("dbt.cli.main.dbtRunner", lambda *a, **k: pytest.fail("dbt parse ran"))
    assert project.ensure_manifest(tmp_path) == cached


class _P:
    def __init__(self, status, created_at, expected):
        self.status, self.created_at, self.expected = status, created_at, expected


class _Store:
    def __init__(self, proposals):
        self.proposals, self.asked = proposals, None

    def list_proposals(self, tenant_id, statuses=None):
        self.asked = set(statuses)
        return [p for p in self.proposals if p.status in self.asked]


def test_achievable_savings_come_from_the_newest_live_proposal():
    t0 = datetime(2026, 10, 1, tzinfo=UTC)
    store = _Store(
        [
            _P(ProposalStatus.pending_approval, t0, {"expected_monthly_savings": 100.0}),
            _P(ProposalStatus.monitoring, t0 + timedelta(days=1), {"expected_monthly_savings": 365.25}),
            _P(ProposalStatus.rejected, t0 + timedelta(days=2), {"expected_monthly_savings": 9999.0}),
        ]
    )
    assert achievable_daily_savings(store, "testco") == pytest.approx(12.0)
    assert ProposalStatus.rejected not in store.asked and ProposalStatus.expired not in store.asked


def test_no_proposal_means_no_achievable_savings():
    assert achievable_daily_savings(_Store([]), "testco") is None


def test_export_without_a_warehouse_says_what_to_run(blocks_env):
    with pytest.raises(FileNotFoundError, match="run `run_dbt_build` for it first"):
        export_marts("testco")
