"""GET /api/anomalies and PATCH /api/anomalies/{id}: tenant-scoped by the token, filters, acknowledge with
If-Match, and Major Tom's "why did my bill jump?" citing the anomaly's figures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from blocks_pipelines.state import get_state_store
from blocks_pipelines.state.alert_models import AlertKind, Detection, Severity, UsageTypeContribution
from serving.app import create_app
from serving.major_tom import intents
from serving.testing import dev_headers, prepare_env, yesterday
from tests.test_serving_major_tom import ask, check_grounded

DEMO_TENANTS = Path(__file__).resolve().parent.parent / "assets_config" / "tenants"


def spike(service: str, account: str, impact: float, severity=Severity.high, days_ago: int = 1) -> Detection:
    last = yesterday() - timedelta(days=days_ago - 1)
    return Detection(
        kind=AlertKind.spend_spike,
        severity=severity,
        dimensions={"service": service, "usage_account_id": account, "region": "us-east-1"},
        first_seen=last - timedelta(days=1),
        last_seen=last,
        expected=410.25,
        actual=410.25 + impact / 2,
        impact_usd=impact,
        score=14.2,
        message=f"{service} spiked",
        top_usage_types=[
            UsageTypeContribution(usage_type="ml.g5.12xlarge-Training", actual=300.0, expected=20.0, impact=280.0)
        ],
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BLOCKS_CHAT_BURST", "1000")
        home = prepare_env(mp, tmp_path_factory.mktemp("anomalies"), DEMO_TENANTS, {"acme_corp": 1.0, "globex": 2.0})
        store = get_state_store()
        ids = {
            "acme_big": store.record_alert("acme_corp", spike("AmazonSageMaker", "111111111102", 1840.5))[0].alert_id,
            "acme_small": store.record_alert(
                "acme_corp", spike("AmazonS3", "111111111105", 75.0, Severity.low, days_ago=5)
            )[0].alert_id,
            "globex": store.record_alert("globex", spike("AmazonRedshift", "222222222203", 990.0))[0].alert_id,
        }
        store.record_alert(
            "acme_corp",
            Detection(
                kind=AlertKind.late_data,
                severity=Severity.high,
                dimensions={"source": "cur"},
                first_seen=yesterday(),
                last_seen=yesterday(),
                expected=36.0,
                actual=40.0,
                unit="hours",
                message="CUR data is 40 h behind",
            ),
        )
        with TestClient(create_app()) as client:
            yield client, home, ids


def get(client, home, tenant="acme_corp", **params):
    return client.get("/api/anomalies", params=params, headers=dev_headers(home, tenant))


def test_list_is_tenant_scoped_and_filtered(env):
    client, home, ids = env
    body = get(client, home).json()
    assert body["tenant_id"] == "acme_corp"
    assert {a["tenant_id"] for a in body["items"]} == {"acme_corp"}
    assert ids["globex"] not in {a["alert_id"] for a in body["items"]}
    assert len(body["items"]) == 3 and body["counts"]["open"] == 3
    assert body["reference"]["ui_link"] == "/app/anomalies"
    spikes = get(client, home, kind="spend_spike", min_severity="high").json()["items"]
    assert [a["alert_id"] for a in spikes] == [ids["acme_big"]]
    big = spikes[0]
    assert (big["expected"], big["impact_usd"], big["top_usage_types"][0]["usage_type"]) == (
        410.25,
        1840.5,
        "ml.g5.12xlarge-Training",
    )
    assert [a["alert_id"] for a in get(client, home, service="AmazonS3").json()["items"]] == [ids["acme_small"]]
    assert get(client, home, account="111111111102", kind="spend_spike").json()["total_impact_usd"] == 1840.5
    recent = get(client, home, since=str(yesterday() - timedelta(days=1)), kind="spend_spike").json()["items"]
    assert [a["alert_id"] for a in recent] == [ids["acme_big"]]
    g = get(client, home, tenant="globex").json()
    assert [a["alert_id"] for a in g["items"]] == [ids["globex"]]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"status": "snoozed"}, "status"),
        ({"kind": "weird"}, "kind"),
        ({"since": "yesterday"}, "since"),
        ({"account": "12"}, "account"),
        ({"tenant_id": "globex"}, "tenant_id"),
    ],
)
def test_bad_filters_are_400_naming_the_field(env, params, field):
    client, home, _ = env
    r = get(client, home, **params)
    assert r.status_code == 400 and r.json()["error"]["field"] == field


def test_acknowledge_with_if_match_and_audit(env):
    client, home, ids = env
    aid = ids["acme_small"]
    item = next(a for a in get(client, home).json()["items"] if a["alert_id"] == aid)
    url, headers = f"/api/anomalies/{aid}", dev_headers(home, "acme_corp")
    r = client.patch(
        url,
        json={"status": "acknowledged", "note": "S3 lifecycle migration"},
        headers={**headers, "If-Match": f'"{item["version"]}"'},
    )
    assert r.status_code == 200, r.text
    acked = r.json()["item"]
    assert (acked["status"], acked["status_by"], acked["note"]) == (
        "acknowledged",
        "dev-acme_corp",
        "S3 lifecycle migration",
    )
    assert r.headers["ETag"] == f'"{acked["version"]}"' and acked["version"] != item["version"]
    # the same change again is idempotent; one made from a stale read is refused
    assert (
        client.patch(url, json={"status": "acknowledged", "note": "S3 lifecycle migration"}, headers=headers).json()[
            "item"
        ]["version"]
        == acked["version"]
    )
    stale = client.patch(url, json={"status": "resolved"}, headers={**headers, "If-Match": item["version"]})
    assert stale.status_code == 412 and stale.json()["error"]["field"] == "If-Match"
    assert [a["alert_id"] for a in get(client, home, status="acknowledged").json()["items"]] == [aid]
    assert aid not in {a["alert_id"] for a in get(client, home, status="open").json()["items"]}
    audit = get_state_store().list_audit(f"acme_corp/alert/{aid}")
    assert [(e.actor, e.action) for e in audit][-1] == ("dev-acme_corp", "alert.acknowledged")


def test_another_tenants_alert_is_a_404_and_stays_untouched(env):
    client, home, ids = env
    r = client.patch(
        f"/api/anomalies/{ids['globex']}", json={"status": "resolved"}, headers=dev_headers(home, "acme_corp")
    )
    assert r.status_code == 404
    assert get_state_store().get_alert("globex", ids["globex"]).status.value == "open"
    assert (
        client.patch(
            "/api/anomalies/nope", json={"status": "resolved"}, headers=dev_headers(home, "acme_corp")
        ).status_code
        == 404
    )
    bad = client.patch(
        f"/api/anomalies/{ids['acme_big']}", json={"status": "snoozed"}, headers=dev_headers(home, "acme_corp")
    )
    assert bad.status_code == 400
    assert client.get("/api/anomalies").status_code == 401


def test_major_tom_explains_the_bill_jump_with_cited_figures(env):
    client, home, ids = env
    events = ask(client, home, "Why did my bill jump?")
    meta = events[0][1]
    assert meta["intent"] == intents.BILL_JUMP and not meta["refused"]
    done = check_grounded(client, home, events)
    text = done["text"]
    assert "AmazonSageMaker in account 111111111102" in text and "$1,840.50 [1]" in text
    assert "ml.g5.12xlarge-Training" in text and "AmazonRedshift" not in text
    anomaly_ref = done["references"][0]
    assert anomaly_ref["endpoint"] == "/api/anomalies" and anomaly_ref["params"]["kind"] == [
        "new_service",
        "spend_spike",
    ]
    # globex hears about its own anomaly only
    g = check_grounded(client, home, ask(client, home, "why did my bill jump?", tenant="globex"), tenant="globex")
    assert "AmazonRedshift" in g["text"] and "AmazonSageMaker" not in g["text"]


def test_major_tom_without_anomalies_says_so_and_shows_the_movers(env):
    client, home, ids = env
    resolved = client.patch(
        f"/api/anomalies/{ids['globex']}",
        json={"status": "resolved", "note": "migration"},
        headers=dev_headers(home, "globex"),
    )
    assert resolved.status_code == 200
    events = ask(client, home, "Anything unusual in my spend?", tenant="globex")
    assert events[0][1]["intent"] == intents.BILL_JUMP
    done = check_grounded(client, home, events, tenant="globex")
    assert done["text"].startswith("Blocks found no unusual spend [1]") and "week" in done["text"]
