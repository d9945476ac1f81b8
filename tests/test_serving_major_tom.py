"""Major Tom: every number carries a reference, and the referenced endpoint returns that number."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.major_tom import answers, intents
from serving.major_tom.grounding import GroundedAnswer
from serving.major_tom.providers import BedrockProvider, DeterministicProvider, chunks, make_provider
from serving.testing import dev_headers, prepare_env

DEMO_TENANTS = Path(__file__).resolve().parent.parent / "assets_config" / "tenants"
MARKER = re.compile(r"\[(\d+)\]")
VALUE = re.compile(r"(-?\$[\d,]+\.\d{2}|\d+\.\d%) \[(\d+)\]")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BLOCKS_CHAT_BURST", "1000")
        home = prepare_env(mp, tmp_path_factory.mktemp("tom"), DEMO_TENANTS, {"acme_corp": 1.0, "globex": 2.5})
        mp.setenv("BLOCKS_CHAT_BURST", "1000")
        yield home


@pytest.fixture(scope="module")
def client(home):
    with TestClient(create_app()) as c:
        yield c


def ask(client, home, message, context=None, tenant="acme_corp"):
    r = client.post("/api/chat", json={"message": message, "context": context}, headers=dev_headers(home, tenant))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in r.text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def resolve(payload, path: str):
    for part in path.split("."):
        payload = payload[int(part)] if isinstance(payload, list) else payload[part]
    return payload


def check_grounded(client, home, events, tenant="acme_corp"):
    kinds = [e for e, _ in events]
    assert kinds[0] == "meta" and kinds[-1] == "done" and kinds.count("token") >= 2
    done = events[-1][1]
    text = done["text"]
    assert "".join(d["text"] for e, d in events if e == "token") == text
    refs = {r["n"]: r for r in done["references"]}
    assert [d["n"] for e, d in events if e == "reference"] == sorted(refs)
    sent, streamed = set(), ""
    for kind, data in events:  # a marker only ever arrives after the reference it points at
        sent |= {data["n"]} if kind == "reference" else set()
        streamed += data["text"] if kind == "token" else ""
        assert {int(n) for n in MARKER.findall(streamed)} <= sent, streamed
    for line in text.splitlines():
        if re.search(r"\d", MARKER.sub("", line)):
            assert MARKER.search(line), f"a number without a reference: {line!r}"
    for n in map(int, MARKER.findall(text)):
        assert n in refs
    facts = {(f["ref"], f["value"]) for f in done["facts"]}
    shown = VALUE.findall(text)
    assert shown, text
    for literal, n in shown:
        value = float(literal.replace("$", "").replace(",", "").rstrip("%"))
        assert (int(n), value) in facts, (literal, n)
    for ref in refs.values():
        assert ref["ui_link"].startswith("/app/")
    responses = {}

    def fetch(n):
        ref = refs[n]
        key = (ref["endpoint"], json.dumps(ref["params"], sort_keys=True))
        if key not in responses:
            r = client.get(ref["endpoint"], params=ref["params"], headers=dev_headers(home, tenant))
            assert r.status_code == 200, r.text
            responses[key] = r.json()
        return responses[key]

    for fact in done["facts"]:
        if fact["field"].startswith("change_pct:"):  # derived: recompute from both referenced responses
            _, before_ref, path = fact["field"].split(":", 2)
            now, before = resolve(fetch(fact["ref"]), path), resolve(fetch(int(before_ref)), path)
            assert round(abs(100 * (now - before) / before), 1) == pytest.approx(fact["value"])
            continue
        api_value = resolve(fetch(fact["ref"]), fact["field"])
        digits = 1 if fact["field"].endswith("_pct") else 2
        assert round(api_value, digits) == pytest.approx(fact["value"]), fact
    return done


@pytest.mark.parametrize(
    "message, intent",
    [
        ("Where did the savings come from?", intents.SAVINGS),
        ("What should I do next?", intents.NEXT_ACTIONS),
        ("What changed this week? What drives my cost?", intents.COST_DRIVERS),
    ],
)
def test_answers_cite_every_number_and_match_the_api(client, home, message, intent):
    events = ask(client, home, message)
    assert events[0][1]["intent"] == intent and events[0][1]["refused"] is False
    check_grounded(client, home, events)


@pytest.mark.parametrize(
    "context",
    [
        {"path": "/app/dashboard", "query": "granularity=day&group_by=service"},
        {"path": "/app/dashboard", "query": "granularity=week&cost_type=unblended&period=month"},
        {"path": "/app/dashboard", "query": "group_by=tag:user:team&service=AmazonEC2&account=000000000000"},
        {"path": "/app/dashboard", "query": "granularity=month"},
        {"path": "/app/recommendations", "query": ""},
        {"path": "/app/savings-plans", "query": ""},
    ],
)
def test_explain_this_view_from_a_deep_link(client, home, context):
    events = ask(client, home, "Explain this view", context)
    assert events[0][1]["intent"] == intents.EXPLAIN_VIEW
    if "account=000000000000" in context["query"]:
        text = events[-1][1]["text"]
        assert "$0.00" in text  # an account the tenant does not have: grounded zero, not someone else's data
    check_grounded(client, home, events)


def test_deep_link_pasted_in_the_message(client, home):
    events = ask(client, home, "can you explain this: /app/dashboard?group_by=region&granularity=month")
    assert "split by region" in events[-1][1]["text"]
    check_grounded(client, home, events)


def test_next_actions_are_the_top_three_by_expected_saving(client, home):
    done = ask(client, home, "what should I do next?")[-1][1]
    recs = client.get("/api/recommendations?status=open", headers=dev_headers(home, "acme_corp")).json()["items"]
    titles = [line.split(": ", 1)[1].split(" [")[0] for line in done["text"].splitlines()[1:]]
    assert titles == [r["title"] for r in recs[:3]]


@pytest.mark.parametrize(
    "message, context",
    [
        ("what's the weather in Lisbon?", None),
        ("what will my bill be in 2031?", None),
        ("Explain this view", {"path": "/app/settings", "query": ""}),
        ("Explain this view", {"path": "/app/dashboard", "query": "granularity=fortnight"}),
        ("explain this chart", None),
        ("💸💸💸 ¿qué?", None),
    ],
)
def test_refuses_what_it_cannot_ground(client, home, message, context):
    events = ask(client, home, message, context)
    done = events[-1][1]
    assert events[0][1]["refused"] is True
    assert done["facts"] == [] and done["references"] == []
    assert not re.search(r"\d", done["text"].replace("/app/", ""))


def test_sample_data_is_flagged_before_backfill(client, home):
    events = ask(client, home, "where did the savings come from?", tenant="initech")
    assert events[0][1]["sample"] is True and events[0][1]["data_status"] == "backfill_pending"
    assert events[-1][1]["text"].startswith("Your data backfill is still running")
    check_grounded(client, home, events, tenant="initech")


def test_answers_over_cost_explorer_days_say_so_once_with_the_spend_reference(home, tmp_path, monkeypatch):
    from serving.data.sample import write_sample_lake
    from serving.testing import yesterday

    end = yesterday()
    write_sample_lake(tmp_path / "lake", "acme_corp", end, days=40, cost_explorer_days=25)
    monkeypatch.setenv("BLOCKS_LAKE_URI", str(tmp_path / "lake"))
    last_ce_day = end - timedelta(days=15)
    with TestClient(create_app()) as c:
        savings = check_grounded(c, home, ask(c, home, "Where did the savings come from?"))
        drivers = check_grounded(c, home, ask(c, home, "What drives my cost?"))  # the last two weeks are CUR
    notes = [line for line in savings["text"].splitlines() if "Cost Explorer" in line]
    assert notes == [
        f"Figures up to {last_ce_day} come from Cost Explorer (daily totals per service) [1]: "
        "savings and coverage start with your first CUR delivery."
    ]
    assert savings["references"][0]["endpoint"] == "/api/spend"
    assert savings["references"][0]["params"]["start"] == str(end - timedelta(days=29))
    assert "Cost Explorer" not in drivers["text"]


def test_answers_are_tenant_scoped(client, home):
    a = ask(client, home, "where did the savings come from?", tenant="acme_corp")[-1][1]["text"]
    g = ask(client, home, "where did the savings come from?", tenant="globex")[-1][1]["text"]
    assert a != g


def test_the_answer_streams_before_it_is_complete_and_a_late_failure_ends_it_with_an_error(home, monkeypatch):
    def broken(data, days=30):
        raise RuntimeError("savings plans mart unreadable")

    monkeypatch.setattr(answers, "run_sp_position", broken)
    with TestClient(create_app()) as c:
        events = ask(c, home, "Where did the savings come from?")
    kinds = [e for e, _ in events]
    assert kinds[0] == "meta" and kinds[-1] == "error" and "done" not in kinds
    streamed = "".join(d["text"] for e, d in events if e == "token")
    assert streamed.startswith("From ") and "saved" in streamed and "Savings Plans" not in streamed
    assert events[-1][1]["code"] == "answer_failed"


def test_after_warm_up_answers_read_only_cached_aggregates(home, monkeypatch):
    from serving.app import warm
    from serving.data.store import TenantData

    app = create_app()
    warm(app)

    def no_query(self, sql, params=None):
        raise AssertionError(f"a mart query after warm-up: {sql}")

    monkeypatch.setattr(TenantData, "rows", no_query)
    monkeypatch.setattr(TenantData, "dicts", no_query)
    with TestClient(app) as c:
        for tenant in ("acme_corp", "globex"):
            for message in ("Where did the savings come from?", "What should I do next?", "What drives my cost?"):
                events = ask(c, home, message, tenant=tenant)
                assert events[-1][0] == "done" and not events[0][1]["refused"], events[-1]


class Shouting:
    """A rephrasing provider that keeps every number and marker."""

    name = "shouting"

    def render(self, grounded: GroundedAnswer) -> str:
        return grounded.text.upper()


def test_a_rephrasing_provider_gets_the_whole_answer_and_its_text_is_streamed(home):
    app = create_app()
    app.state.chat_provider = Shouting()
    with TestClient(app) as c:
        events = ask(c, home, "What drives my cost?")
        check_grounded(c, home, events)
    done = events[-1][1]
    assert events[0][1]["provider"] == "shouting" and done["text"].isupper() and "\n" in done["text"]
    assert [e for e, _ in events].index("token") > max(i for i, (e, _) in enumerate(events) if e == "reference")


# ---- providers -------------------------------------------------------------------------------------------------------


def grounded_sample() -> GroundedAnswer:
    g = GroundedAnswer(intent=intents.SAVINGS)
    g.say(f"You saved {g.money(1234.5, 1, 'totals.savings')} last month.")
    return g


def bedrock_with(text: str | None):
    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    if text is None:
        stub.add_client_error("converse", "ThrottlingException", "slow down")
    else:
        stub.add_response(
            "converse",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
                "metrics": {"latencyMs": 1},
            },
        )
    stub.activate()
    return BedrockProvider("anthropic.test-model", client=client), stub


def test_bedrock_rephrasing_is_kept_only_when_it_keeps_the_numbers():
    g = grounded_sample()
    ok, stub = bedrock_with("Last month your savings were $1,234.50 [1].")
    assert ok.render(g) == "Last month your savings were $1,234.50 [1]."
    stub.assert_no_pending_responses()
    invented, _ = bedrock_with("You saved $1,234.50 [1], about 12% more than peers.")
    assert invented.render(g) == g.text
    dropped, _ = bedrock_with("You saved a lot.")
    assert dropped.render(g) == g.text
    failing, _ = bedrock_with(None)
    assert failing.render(g) == g.text


def test_provider_choice_and_chunking(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    assert isinstance(make_provider(None), DeterministicProvider)
    assert isinstance(make_provider("anthropic.test-model", "us-east-1"), BedrockProvider)
    text = "one two  three\nfour five six seven"
    parts = list(chunks(text))
    assert "".join(parts) == text and len(parts) >= 2


@pytest.mark.parametrize(
    "message, expected",
    [
        ("Where does my savings come from?", intents.SAVINGS),
        ("where did we save", intents.SAVINGS),
        ("What should I do next?", intents.NEXT_ACTIONS),
        ("any recommendations?", intents.NEXT_ACTIONS),
        ("what changed since last week", intents.COST_DRIVERS),
        ("what drives my cost", intents.COST_DRIVERS),
        ("explain this view", intents.EXPLAIN_VIEW),
        ("tell me a joke", intents.UNKNOWN),
        ("is my data up to date?", intents.DATA_FRESHNESS),
        ("why is today's spend missing", intents.DATA_FRESHNESS),
        ("is my AWS connection working?", intents.DATA_FRESHNESS),
    ],
)
def test_intent_rules(message, expected):
    assert intents.classify(message, has_context=False) == expected


def test_data_freshness_says_how_far_figures_go_and_why_data_may_be_missing(client, home):
    """The answer cites /api/spend for the last hour with data and /api/connection for the last connection test,
    with each failing check's fix once a test has failed."""
    from datetime import datetime, timezone

    import blocks_pipelines.connect.checks as checks
    from blocks_pipelines.tenants.config import resolve_tenant

    through = client.get("/api/spend", headers=dev_headers(home, "globex")).json()["data_through"]
    events = ask(client, home, "Is my data up to date?", tenant="globex")
    assert events[0][1]["intent"] == intents.DATA_FRESHNESS and events[0][1]["refused"] is False
    done = events[-1][1]
    assert through[:10] in done["text"] and through[11:16] in done["text"]
    assert "has not been tested yet" in done["text"]
    assert {r["endpoint"]: r["ui_link"] for r in done["references"]} == {
        "/api/spend": "/app/dashboard",
        "/api/connection": "/app/onboarding",
    }
    for line in done["text"].splitlines():  # every line with a figure or a date cites where it comes from
        if re.search(r"\d", MARKER.sub("", line)):
            assert MARKER.search(line), line

    failing = [
        checks.passed("assume_role", "ok"),
        checks.failed("cur_list", checks.errors.LIST_DENIED, "listing s3://acme-cur/reports: AccessDenied."),
    ]
    checks.record_outcome(resolve_tenant("globex"), failing, "ops", now=datetime(2026, 12, 1, 9, tzinfo=timezone.utc))
    text = ask(client, home, "Is my AWS connection working?", tenant="globex")[-1][1]["text"]
    assert "failed its last test, on 2026-12-01 09:00 UTC" in text
    assert "cur_list" in text and "s3:ListBucket" in text  # the catalogued fix
