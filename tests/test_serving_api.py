"""Serving API over fixture marts for two tenants (acme_corp, globex); initech has no marts (backfill pending)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.testing import dev_headers, prepare_env, write_fixture_lake, yesterday

TENANTS = {"acme_corp": 1.0, "globex": 3.0}
DEMO_TENANTS = Path(__file__).resolve().parent.parent / "assets_config" / "tenants"


@pytest.fixture(scope="module")
def app_env(tmp_path_factory):
    """One environment and app per module (building marts and keys per test would dominate the run time)."""
    with pytest.MonkeyPatch.context() as mp:
        yield prepare_env(mp, tmp_path_factory.mktemp("serving"), DEMO_TENANTS, TENANTS)


@pytest.fixture(scope="module")
def client(app_env):
    with TestClient(create_app()) as c:
        yield c


@pytest.fixture(scope="module")
def fixture_lake(app_env):
    return app_env.parent / "lake"


def hdr(home, tenant="acme_corp", admin=False):
    return dev_headers(home, tenant, admin)


def account_ids(payload) -> set[str]:
    text = json.dumps(payload)
    return {tok for tok in text.replace('"', " ").replace(",", " ").split() if tok.isdigit() and len(tok) == 12}


# ---- spend -----------------------------------------------------------------------------------------------------------


def test_spend_daily_series_and_totals_match_the_marts(client, app_env, fixture_lake):
    import duckdb

    end = yesterday()
    start = end - timedelta(days=29)
    r = client.get(f"/api/spend?start={start}&end={end}&group_by=service", headers=hdr(app_env))
    assert r.status_code == 200
    body = r.json()
    assert body["data_status"] == "ready" and body["sample"] is False
    expected = duckdb.sql(
        f"SELECT sum(amortized_cost), sum(public_on_demand_cost), count(DISTINCT service) FROM "
        f"read_parquet('{fixture_lake}/marts/spend_daily/tenant_id=acme_corp/data.parquet') "
        f"WHERE usage_date BETWEEN '{start}' AND '{end}'"
    ).fetchall()[0]
    assert body["totals"]["cost"] == pytest.approx(expected[0], rel=1e-9)
    assert body["totals"]["savings"] == pytest.approx(expected[1] - expected[0], rel=1e-6)
    assert len(body["series"]) == 30 * expected[2]
    assert sum(p["cost"] for p in body["series"]) == pytest.approx(expected[0], rel=1e-6)
    assert sum(g["share_pct"] for g in body["totals"]["by_group"]) == pytest.approx(100, abs=0.05)


def test_every_response_says_how_far_the_data_goes(client, app_env, fixture_lake):
    import duckdb

    last_hour = duckdb.sql(
        f"SELECT max(usage_hour) FROM read_parquet("
        f"'{fixture_lake}/marts/spend_hourly/tenant_id=acme_corp/data.parquet')"
    ).fetchall()[0][0]
    through = (last_hour + timedelta(hours=1)).isoformat() + "+00:00"
    for path in ("/api/spend", "/api/projection", "/api/recommendations", "/api/savings-plans"):
        body = client.get(path, headers=hdr(app_env)).json()
        assert body["data_through"] == through, path


def test_spend_granularities_agree_on_the_total(client, app_env):
    end = yesterday()
    start = end - timedelta(days=20)
    totals = {}
    for g in ("hour", "day", "week", "month"):
        r = client.get(f"/api/spend?start={start}&end={end}&granularity={g}&cost_type=unblended", headers=hdr(app_env))
        assert r.status_code == 200, r.text
        totals[g] = r.json()["totals"]["cost"]
        assert len(r.json()["series"]) >= 1
    assert len(set(round(v, 4) for v in totals.values())) == 1
    hourly = client.get(f"/api/spend?start={end}&end={end}&granularity=hour", headers=hdr(app_env)).json()
    assert len(hourly["series"]) == 24


def test_spend_filters_narrow_the_total(client, app_env):
    h = hdr(app_env)
    base = client.get("/api/spend?group_by=account", headers=h).json()
    some_account = base["totals"]["by_group"][0]["group"]
    only = client.get(f"/api/spend?account={some_account}", headers=h).json()
    assert only["totals"]["cost"] == pytest.approx(base["totals"]["by_group"][0]["cost"], rel=1e-6)
    ec2 = client.get("/api/spend?service=AmazonEC2&charge_class=savings_plan", headers=h).json()
    assert 0 < ec2["totals"]["cost"] < base["totals"]["cost"]
    prod = client.get("/api/spend?ou=Root/Engineering", headers=h).json()  # includes sub-OU Root/Engineering/Prod
    assert 0 < prod["totals"]["cost"] < base["totals"]["cost"]
    web = client.get("/api/spend?tag=user:team=web&group_by=tag:user:team", headers=h).json()
    assert [g["group"] for g in web["totals"]["by_group"]] == ["web"]
    none = client.get("/api/spend?region=ap-south-1", headers=h).json()
    assert none["totals"]["cost"] == 0 and none["series"] == []


def test_spend_csv_export_by_param_and_accept_header(client, app_env):
    h = hdr(app_env)
    js = client.get("/api/spend?group_by=service", headers=h).json()
    for r in (
        client.get("/api/spend?group_by=service&format=csv", headers=h),
        client.get("/api/spend?group_by=service", headers={**h, "Accept": "text/csv"}),
    ):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert len(rows) == len(js["series"])
        assert sum(float(x["cost"]) for x in rows) == pytest.approx(js["totals"]["cost"], rel=1e-6)


@pytest.mark.parametrize(
    "query, field",
    [
        ("start=2026-02-30", "start"),
        ("start=yesterday", "start"),
        ("end=2026-01-01&start=2026-02-01", "start"),
        ("granularity=minute", "granularity"),
        ("group_by=colour", "group_by"),
        ("account=123", "account"),
        ("tag=novalue", "tag"),
        ("tag=bad%22key=1", "tag"),
        ("cost_type=blended", "cost_type"),
        ("bogus=1", "bogus"),
        ("start=2000-01-01&end=2030-01-01", "end"),
        ("granularity=hour&start=2026-01-01&end=2026-11-01", "end"),
        ("service=%E2%82%AC%F0%9F%92%B8", "service"),
        ("start=%00", "start"),
        ("format=xml", "format"),
        ("start=2026-01-01&start=2026-01-02", "start"),
    ],
)
def test_spend_bad_input_is_a_400_naming_the_field(client, app_env, query, field):
    r = client.get(f"/api/spend?{query}", headers=hdr(app_env))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
    assert r.json()["error"]["message"]


# ---- projection, recommendations, savings plans ----------------------------------------------------------------------


@pytest.mark.parametrize("period", ["day", "week", "month", "ytd"])
def test_projection_returns_current_period(client, app_env, period):
    body = client.get(f"/api/projection?period={period}", headers=hdr(app_env)).json()
    cur = body["current"]
    assert cur["period_type"] == period
    assert cur["savings"] == pytest.approx(cur["baseline_cost"] - cur["projected_cost"], rel=1e-6)
    assert cur["period_start"] == max(h["period_start"] for h in body["history"])


def test_recommendation_status_update_is_idempotent_and_versioned(client, app_env):
    admin = hdr(app_env, admin=True)
    items = client.get("/api/recommendations", headers=admin).json()["items"]
    savings = [i["expected_monthly_savings"] for i in items]
    assert savings == sorted(savings, reverse=True)
    rec = items[0]
    url = f"/api/recommendations/{rec['recommendation_id']}"
    r = client.patch(url, json={"status": "accepted"}, headers={**admin, "If-Match": f'"{rec["version"]}"'})
    assert r.status_code == 200, r.text
    updated = r.json()["item"]
    assert updated["status"] == "accepted" and updated["version"] != rec["version"]
    assert r.headers["etag"] == f'"{updated["version"]}"'
    again = client.patch(url, json={"status": "accepted"}, headers=admin)
    assert again.status_code == 200 and again.json()["item"] == updated
    stale = client.patch(url, json={"status": "dismissed"}, headers={**admin, "If-Match": rec["version"]})
    assert stale.status_code == 412
    listed = {i["recommendation_id"]: i for i in client.get("/api/recommendations", headers=admin).json()["items"]}
    assert listed[rec["recommendation_id"]]["status"] == "accepted"
    accepted = client.get("/api/recommendations?status=accepted", headers=admin).json()["items"]
    assert [i["recommendation_id"] for i in accepted] == [rec["recommendation_id"]]
    assert client.patch(url, json={"status": "done"}, headers=hdr(app_env)).status_code == 403  # viewer
    assert client.patch(url, json={"status": "maybe"}, headers=admin).status_code == 400
    assert client.patch(url, json={"status": "done", "x": 1}, headers=admin).status_code == 400
    assert client.patch("/api/recommendations/nope", json={"status": "done"}, headers=admin).status_code == 404


def test_a_status_change_landing_between_read_and_write_is_never_overwritten(client, app_env, monkeypatch):
    """Another API process changes the status after this one has read it: with If-Match the request gets 412,
    without it the write is applied on a fresh read; never on the stale one (the store's compare-and-swap)."""
    from blocks_pipelines.state import get_state_store
    from serving.api.deps import TenantScope

    admin = hdr(app_env, admin=True)
    rec = client.get("/api/recommendations", headers=admin).json()["items"][1]
    rid, url = rec["recommendation_id"], f"/api/recommendations/{rec['recommendation_id']}"
    read = TenantScope.recommendation_statuses
    interleaved = []

    def read_then_other_process_writes(self):
        seen = read(self)
        if not interleaved:
            interleaved.append(seen.get(rid))
            get_state_store().set_recommendation_status("acme_corp", rid, "snoozed", "other-process")
        return seen

    monkeypatch.setattr(TenantScope, "recommendation_statuses", read_then_other_process_writes)
    r = client.patch(url, json={"status": "dismissed"}, headers={**admin, "If-Match": rec["version"]})
    assert r.status_code == 412, r.text
    assert r.json()["error"]["code"] == "version_mismatch"
    assert get_state_store().get_recommendation_statuses("acme_corp")[rid] == "snoozed"

    interleaved.clear()
    r = client.patch(url, json={"status": "done"}, headers=admin)
    assert r.status_code == 200 and r.json()["item"]["status"] == "done"
    actors = [e.actor for e in get_state_store().list_audit(f"acme_corp/recommendation/{rid}")]
    assert actors == ["other-process", "other-process", "dev-acme_corp"]  # the retry wrote after the interleaved one
    assert get_state_store().get_recommendation_statuses("acme_corp")[rid] == "done"


def test_recommendations_csv(client, app_env):
    r = client.get("/api/recommendations?format=csv", headers=hdr(app_env))
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert r.status_code == 200 and len(rows) == 4
    assert {"recommendation_id", "title", "expected_monthly_savings", "status"} <= set(rows[0])


def test_savings_plans_position_and_proposals(client, app_env):
    body = client.get("/api/savings-plans", headers=hdr(app_env)).json()
    pos = body["position"]
    assert 0 < pos["coverage_pct"] <= 100 and 0 < pos["utilization_pct"] <= 100
    assert len(pos["daily"]) in (30, 31)
    assert body["proposals"] == [] and body["proposals_available"] is True


# ---- backfill pending, auth plumbing, limits -------------------------------------------------------------------------


def test_tenant_without_marts_gets_flagged_sample_data(client, app_env):
    h = hdr(app_env, "initech")
    for url in ("/api/spend", "/api/projection", "/api/recommendations", "/api/savings-plans"):
        body = client.get(url, headers=h).json()
        assert body["data_status"] == "backfill_pending" and body["sample"] is True, url
    spend = client.get("/api/spend", headers=h).json()
    assert spend["totals"]["cost"] > 0 and spend["tenant_id"] == "initech"
    csv_text = client.get("/api/spend?format=csv", headers=h).text
    first = next(csv.DictReader(io.StringIO(csv_text)))
    assert first["sample"] == "True" and first["preliminary"] == "False"


def test_unregistered_tenant_and_missing_token(client, app_env):
    assert client.get("/api/spend").status_code == 401
    assert client.get("/api/spend").headers["www-authenticate"].startswith("Bearer")
    assert client.get("/api/spend", headers=hdr(app_env, "nobody_here")).status_code == 403
    assert client.get("/healthz").json() == {"status": "ok"}


def test_oversized_and_malformed_bodies_are_4xx(client, app_env):
    h = hdr(app_env)
    big = client.post(
        "/api/chat", content=b"{" + b" " * 200_000 + b"}", headers={**h, "Content-Type": "application/json"}
    )
    assert big.status_code == 413
    assert (
        client.post("/api/chat", content=b"{not json", headers={**h, "Content-Type": "application/json"}).status_code
        == 400
    )
    assert client.post("/api/chat", json={"message": "x" * 5000}, headers=h).status_code == 400
    assert client.post("/api/chat", json={"message": ""}, headers=h).status_code == 400


def test_chat_rate_limit_is_per_tenant(app_env, monkeypatch):
    monkeypatch.setenv("BLOCKS_CHAT_BURST", "2")
    monkeypatch.setenv("BLOCKS_CHAT_PER_MINUTE", "1")
    with TestClient(create_app()) as c:
        ask = {"message": "what should I do next?"}
        assert [c.post("/api/chat", json=ask, headers=hdr(app_env)).status_code for _ in range(2)] == [200, 200]
        limited = c.post("/api/chat", json=ask, headers=hdr(app_env))
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert c.post("/api/chat", json=ask, headers=hdr(app_env, "globex")).status_code == 200


def test_connection_status_is_the_latest_tests_outcome(client, app_env):
    from datetime import datetime, timezone

    import blocks_pipelines.connect.checks as checks
    from blocks_pipelines.tenants.config import resolve_tenant

    globex = resolve_tenant("globex")
    before = client.get("/api/connection", headers=hdr(app_env, "globex"))
    assert before.status_code == 200, before.text
    # never tested here: the registry's configured status
    assert before.json()["status"] == globex.connection.status and before.json()["checked_at"] is None
    results = [
        checks.passed("assume_role", "ok"),
        checks.failed("cur_list", checks.errors.LIST_DENIED, "listing s3://b/p: AccessDenied"),
    ]
    checks.record_outcome(globex, results, "alice", now=datetime(2026, 12, 1, 9, tzinfo=timezone.utc))
    body = client.get("/api/connection", headers=hdr(app_env, "globex")).json()  # viewers see it too
    assert body["status"] == "failed" and body["checked_at"] == "2026-12-01T09:00:00+00:00"
    assert body["checks"] == {"assume_role": "pass", "cur_list": "fail"}
    assert body["failing"][0]["error_code"] == checks.errors.LIST_DENIED
    assert "s3:ListBucket" in body["failing"][0]["remediation"]
    assert client.get("/api/connection", headers=hdr(app_env, "acme_corp")).json()["status"] != "failed"


def test_onboarding_endpoints_are_admin_only_and_wired(client, app_env, monkeypatch):
    import blocks_pipelines.connect.checks as checks

    seen = []

    def fake_checks(tenant, *, session=None, actor="x"):
        seen.append((tenant.id, actor))
        return [checks.passed("assume_role", "ok"), checks.skipped("cur_list", "local")]

    monkeypatch.setattr(checks, "run_connection_checks", fake_checks)
    assert client.post("/api/ingest/test-connection", headers=hdr(app_env)).status_code == 403
    r = client.post("/api/ingest/test-connection", headers=hdr(app_env, "globex", admin=True))
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["tenant_id"] == "globex"
    assert seen == [("globex", "dev-globex")]
    import blocks_pipelines.connect.setup as setup_mod
    from blocks_pipelines.connect.dagster_api import DagsterApiError

    def fake_setup(tenant, *, actor="x", **_):
        seen.append((tenant.id, actor))
        return setup_mod.SetupReport(tenant.id, "unchanged", "/x.yaml", 3)

    monkeypatch.setattr(setup_mod, "setup_tenant", fake_setup)
    assert client.post("/api/tenant/setup", headers=hdr(app_env)).status_code == 403
    setup = client.post("/api/tenant/setup", headers=hdr(app_env, admin=True))
    assert setup.status_code == 200, setup.text
    assert setup.json()["tenant_id"] == "acme_corp" and setup.json()["result"]["months"] == 3
    assert seen[-1] == ("acme_corp", "dev-acme_corp")

    def dagster_down(tenant, **_):
        raise DagsterApiError("connection refused")

    monkeypatch.setattr(setup_mod, "setup_tenant", dagster_down)
    down = client.post("/api/tenant/setup", headers=hdr(app_env, admin=True))
    assert down.status_code == 503 and "Dagster" in down.json()["error"]["message"]


def test_new_mart_export_replaces_the_snapshot(app_env, tmp_path, monkeypatch):
    lake = tmp_path / "lake2"
    write_fixture_lake(lake, {"acme_corp": 1.0}, days=10)
    monkeypatch.setenv("BLOCKS_LAKE_URI", str(lake))
    monkeypatch.setenv("BLOCKS_SERVING_REFRESH_SECONDS", "0.000001")
    with TestClient(create_app()) as c:
        before = c.get("/api/spend", headers=hdr(app_env)).json()["totals"]["cost"]
        write_fixture_lake(lake, {"acme_corp": 2.0}, days=10)
        after = c.get("/api/spend", headers=hdr(app_env)).json()["totals"]["cost"]
    assert after == pytest.approx(2 * before, rel=1e-6)


@pytest.fixture
def cost_explorer_lake(app_env, tmp_path, monkeypatch):
    """acme_corp's first 4 of 10 days come from Cost Explorer; globex has CUR only. Returns the last day."""
    from serving.data.sample import write_sample_lake

    lake, end = tmp_path / "lake_ce", yesterday()
    write_sample_lake(lake, "acme_corp", end, days=10, cost_explorer_days=4)
    write_fixture_lake(lake, {"globex": 1.0}, days=10, end=end)
    monkeypatch.setenv("BLOCKS_LAKE_URI", str(lake))
    return end


def test_ranges_with_cost_explorer_days_are_preliminary_and_list_their_sources(app_env, cost_explorer_lake):
    end = cost_explorer_lake
    day = lambda back: str(end - timedelta(days=back))  # noqa: E731
    with TestClient(create_app()) as c:
        spend = c.get(f"/api/spend?start={day(9)}&end={day(0)}", headers=hdr(app_env)).json()
        cur_days = c.get(f"/api/spend?start={day(3)}&end={day(0)}", headers=hdr(app_env)).json()
        projection = c.get("/api/projection?period=month", headers=hdr(app_env)).json()
        savings_plans = c.get("/api/savings-plans", headers=hdr(app_env)).json()
        cur_only = c.get(f"/api/spend?start={day(9)}&end={day(0)}", headers=hdr(app_env, "globex")).json()
        daily_csv = c.get(f"/api/spend?start={day(9)}&end={day(0)}&format=csv", headers=hdr(app_env)).text
        weekly_csv = c.get(
            f"/api/spend?start={day(9)}&end={day(0)}&granularity=week&format=csv", headers=hdr(app_env)
        ).text
    assert spend["preliminary"] is True
    assert spend["sources"] == [
        {"source": "cost_explorer", "first_day": day(9), "last_day": day(6)},
        {"source": "cur", "first_day": day(5), "last_day": day(0)},
    ]
    assert cur_days["preliminary"] is False
    assert cur_days["sources"] == [{"source": "cur", "first_day": day(3), "last_day": day(0)}]
    assert projection["preliminary"] is True and savings_plans["preliminary"] is True
    assert savings_plans["sources"][0] == {"source": "cost_explorer", "first_day": day(9), "last_day": day(6)}
    assert cur_only["preliminary"] is False
    assert cur_only["sources"] == [{"source": "cur", "first_day": day(9), "last_day": day(0)}]
    # the CSV export flags each period holding Cost Explorer days
    rows = {r["period_start"]: r["preliminary"] for r in csv.DictReader(io.StringIO(daily_csv))}
    assert rows == {day(b): str(b >= 6) for b in range(10)}
    weeks = list(csv.DictReader(io.StringIO(weekly_csv)))
    ce_days = {end - timedelta(days=b) for b in range(6, 10)}
    for w in weeks:
        first = date.fromisoformat(w["period_start"])
        holds_ce = any(first <= d <= first + timedelta(days=6) for d in ce_days)
        assert w["preliminary"] == str(holds_ce)
    assert "True" in {w["preliminary"] for w in weeks}


def test_a_lake_without_the_sources_mart_still_serves_with_no_sources(app_env, cost_explorer_lake, tmp_path):
    (tmp_path / "lake_ce" / "marts" / "data_sources_daily" / "tenant_id=acme_corp" / "data.parquet").unlink()
    with TestClient(create_app()) as c:
        r = c.get("/api/spend", headers=hdr(app_env))
    assert r.status_code == 200
    body = r.json()
    assert body["totals"]["cost"] > 0 and body["sources"] == [] and body["preliminary"] is False


def test_mart_missing_a_contract_column_is_a_503_naming_it(app_env, tmp_path, monkeypatch):
    import duckdb

    lake = tmp_path / "lake3"
    write_fixture_lake(lake, {"acme_corp": 1.0}, days=5)
    path = lake / "marts" / "spend_daily" / "tenant_id=acme_corp" / "data.parquet"
    duckdb.sql(f"COPY (SELECT * EXCLUDE (charge_class) FROM read_parquet('{path}')) TO '{path}.new' (FORMAT parquet)")
    path.with_name("data.parquet.new").replace(path)
    monkeypatch.setenv("BLOCKS_LAKE_URI", str(lake))
    with TestClient(create_app()) as c:
        r = c.get("/api/spend", headers=hdr(app_env))
    assert r.status_code == 503 and "charge_class" in r.json()["error"]["message"]


# ---- tenant isolation: every endpoint --------------------------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/api/spend?group_by=account", None),
    ("GET", "/api/spend?group_by=account&format=csv", None),
    ("GET", "/api/spend?granularity=hour&group_by=account", None),
    ("GET", "/api/projection?period=month", None),
    ("GET", "/api/recommendations", None),
    ("GET", "/api/recommendations?format=csv", None),
    ("GET", "/api/savings-plans", None),
    ("POST", "/api/chat", {"message": "What should I do next?"}),
    ("POST", "/api/chat", {"message": "what drives my cost?"}),
    (
        "POST",
        "/api/chat",
        {"message": "explain this view", "context": {"path": "/app/dashboard", "query": "group_by=account"}},
    ),
]


@pytest.mark.parametrize("method, url, body", ENDPOINTS)
def test_a_token_for_one_tenant_never_returns_another_tenants_data(client, app_env, method, url, body):
    from serving.data.sample import default_accounts

    accounts = {t: {a.account_id for a in default_accounts(t)} for t in TENANTS}
    for me, other in (("acme_corp", "globex"), ("globex", "acme_corp")):
        r = client.request(method, url, json=body, headers=hdr(app_env, me))
        assert r.status_code == 200, r.text
        assert other not in r.text
        assert not (accounts[other] & set(_twelve_digit_numbers(r.text)))
        if "group_by=account" in url and "chat" not in url:
            assert accounts[me] & set(_twelve_digit_numbers(r.text))


def test_recommendation_ids_of_another_tenant_are_not_found(client, app_env):
    other = client.get("/api/recommendations", headers=hdr(app_env, "globex")).json()["items"][0]
    r = client.patch(
        f"/api/recommendations/{other['recommendation_id']}",
        json={"status": "done"},
        headers=hdr(app_env, "acme_corp", admin=True),
    )
    assert r.status_code == 404
    again = client.get("/api/recommendations", headers=hdr(app_env, "globex")).json()["items"][0]
    assert again["status"] == "open"


def test_tenant_scoped_query_cannot_reach_files(app_env):
    import duckdb

    app = create_app()
    data = app.state.marts.tenant("acme_corp")
    with pytest.raises(duckdb.Error):
        data.rows(
            "SELECT count(*) FROM read_parquet(?)",
            [str(app.state.settings.lake_uri) + "/marts/spend_daily/tenant_id=globex/data.parquet"],
        )


def _twelve_digit_numbers(text: str) -> list[str]:
    import re

    return re.findall(r"(?<!\d)\d{12}(?!\d)", text)
