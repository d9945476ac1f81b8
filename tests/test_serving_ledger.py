"""GET /api/savings-ledger and Major Tom's guarantee answers: the customer sees promised vs realized, the back
office also Blocks' cost, ESR and margin; every figure Major Tom says is the figure the endpoint returns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.major_tom import intents
from serving.testing import dev_headers, prepare_env

DEMO_TENANTS = Path(__file__).resolve().parent.parent / "assets_config" / "tenants"
VALUE = re.compile(r"(-?\$[\d,]+\.\d{2}|-?\d+\.\d%) \[(\d+)\]")
BACK_OFFICE_FIELDS = {
    "blocks_cost",
    "blocks_savings",
    "realized_esr_pct",
    "margin",
    "shortfall",
    "sp_coverage_pct",
    "sp_utilization_pct",
    "sp_savings",
    "hindsight_hourly_commitment",
    "hindsight_sp_savings",
    "hindsight_regret",
}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BLOCKS_CHAT_BURST", "1000")
        yield prepare_env(mp, tmp_path_factory.mktemp("ledger_api"), DEMO_TENANTS, {"acme_corp": 1.0, "globex": 2.5})


@pytest.fixture(scope="module")
def client(home):
    with TestClient(create_app()) as c:
        yield c


def backoffice(home, tenant="acme_corp"):
    return dev_headers(home, tenant, roles=["viewer", "backoffice"])


def test_the_customer_sees_promised_and_realized_but_no_margin(client, home):
    r = client.get("/api/savings-ledger", headers=dev_headers(home, "acme_corp", admin=True))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["view"] == "customer" and body["tenant_id"] == "acme_corp"
    assert len(body["months"]) >= 4 and body["current"] == body["months"][-1]
    assert body["current"]["is_month_to_date"] is True
    for month in body["months"] + [body["totals"]]:
        assert not BACK_OFFICE_FIELDS & set(month), "margin fields leak to the customer"
        assert month["customer_cost"] == pytest.approx(0.8 * month["on_demand_equivalent"], abs=0.02)
        assert month["realized_savings_pct"] == pytest.approx(20.0, abs=0.01) and month["guarantee_met"]
    assert body["totals"]["on_demand_equivalent"] == pytest.approx(
        sum(m["on_demand_equivalent"] for m in body["months"]), abs=0.05
    )


def test_the_back_office_sees_cost_esr_margin_and_regret(client, home):
    body = client.get("/api/savings-ledger", headers=backoffice(home)).json()
    assert body["view"] == "backoffice"
    for m in body["months"]:
        assert BACK_OFFICE_FIELDS <= set(m)
        od = m["on_demand_equivalent"]
        assert m["realized_esr_pct"] == pytest.approx(100 * (od - m["blocks_cost"]) / od, abs=0.01)
        assert m["margin"] == pytest.approx(m["customer_cost"] - m["blocks_cost"], abs=0.02)
        assert m["shortfall"] == pytest.approx(max(0.0, -m["margin"]), abs=0.02)
        assert m["hindsight_regret"] >= 0
    # the sample tenant's plans save ~28% on about half its spend: well under the 20% promised overall
    assert body["current"]["realized_esr_pct"] < 20.0 and body["current"]["shortfall"] > 0


def test_the_ledger_is_tenant_scoped_and_rejects_unknown_parameters(client, home):
    a = client.get("/api/savings-ledger", headers=dev_headers(home, "acme_corp")).json()
    g = client.get("/api/savings-ledger", headers=dev_headers(home, "globex")).json()
    assert g["tenant_id"] == "globex" and g["current"]["on_demand_equivalent"] > a["current"]["on_demand_equivalent"]
    assert client.get("/api/savings-ledger").status_code == 401
    r = client.get("/api/savings-ledger?tenant_id=globex", headers=dev_headers(home, "acme_corp"))
    assert r.status_code == 400


def ask(client, headers, message, context=None):
    r = client.post("/api/chat", json={"message": message, "context": context}, headers=headers)
    assert r.status_code == 200, r.text
    blocks = [dict(line.split(": ", 1) for line in b.split("\n")) for b in r.text.strip().split("\n\n")]
    return [(b["event"], json.loads(b["data"])) for b in blocks]


def resolve(payload, path):
    for part in path.split("."):
        payload = payload[int(part)] if isinstance(payload, list) else payload[part]
    return payload


def check_cited(client, headers, events):
    """Every number is followed by a reference and is the value of the cited field of the cited response."""
    meta, done = events[0][1], events[-1][1]
    assert meta["intent"] == intents.GUARANTEE and not meta["refused"]
    refs = {r["n"]: r for r in done["references"]}
    shown = VALUE.findall(done["text"])
    assert shown, done["text"]
    facts = {(f["ref"], f["value"]) for f in done["facts"]}
    for literal, n in shown:
        assert (int(n), float(literal.replace("$", "").replace(",", "").rstrip("%"))) in facts, literal
    for fact in done["facts"]:
        ref = refs[fact["ref"]]
        body = client.get(ref["endpoint"], params=ref["params"], headers=headers).json()
        digits = 1 if fact["field"].endswith("_pct") else 2
        assert round(abs(resolve(body, fact["field"])), digits) == pytest.approx(abs(fact["value"])), fact
    return done


def test_major_tom_tells_the_customer_promised_against_realized(client, home):
    headers = dev_headers(home, "acme_corp")
    done = check_cited(client, headers, ask(client, headers, "Did I get the 20% you promised?"))
    assert "promised 20.0%" in done["text"] and "the guarantee is met" in done["text"]
    assert "Back office" not in done["text"] and "margin" not in json.dumps(done["facts"])
    assert done["references"][0]["ui_link"] == "/app/savings-ledger"


def test_major_tom_tells_the_back_office_what_the_guarantee_cost(client, home):
    headers = backoffice(home)
    done = check_cited(client, headers, ask(client, headers, "What is our margin on the guarantee this month?"))
    assert "effective savings rate" in done["text"] and "cost Blocks" in done["text"]
    fields = {f["field"] for f in done["facts"]}
    assert {"current.blocks_cost", "current.realized_esr_pct", "current.shortfall"} <= fields


def test_major_tom_explains_the_ledger_view(client, home):
    headers = dev_headers(home, "acme_corp")
    events = ask(client, headers, "Explain this view", {"path": "/app/savings-ledger", "query": ""})
    assert events[0][1]["intent"] == intents.EXPLAIN_VIEW
    assert "promised" in events[-1][1]["text"]


@pytest.mark.parametrize(
    "message",
    [
        "did we keep the guarantee?",
        "what's my effective savings rate",
        "show the savings ledger",
        "am I getting 20% off?",
    ],
)
def test_guarantee_questions_are_recognized(message):
    assert intents.classify(message, has_context=False) == intents.GUARANTEE
