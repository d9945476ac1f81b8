"""Grounded answers, built by calling the same query functions the API endpoints call, so every figure Major Tom
says is the figure the referenced endpoint returns."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from itertools import chain
from typing import Protocol
from urllib.parse import parse_qs

from serving.data.anomalies import filter_alerts
from serving.data.ledger import run_ledger
from serving.data.params import InvalidParameter
from serving.data.projection import run_projection
from serving.data.recommendations import load_recommendations, run_recommendations
from serving.data.savings_plans import run_sp_position, sp_source_fields
from serving.data.sources import COST_EXPLORER
from serving.data.spend import SpendQuery, cached_spend, parse_spend_query
from serving.data.store import TenantData
from serving.major_tom import intents
from serving.major_tom.caveats import for_customer, partial_projection, partial_spend, unmatched_filters
from serving.major_tom.grounding import GroundedAnswer
from serving.major_tom.ledger_answers import guarantee
from serving.refs import reference
from serving.schemas import ChatContext, DataSourceSpan, Reference

WINDOW_DAYS = 30
SPEND_ANOMALY_KINDS = ("new_service", "spend_spike")  # sorted: the reference's params as the API echoes them
ORDINALS = ("First", "Second", "Third")
CAPABILITIES = (
    "I answer from your Blocks data only: where your savings come from, whether you got the savings "
    "Blocks guarantees, what to do next, what drives your cost or changed recently, why your bill "
    "jumped, how up to date your data is, and what a dashboard view shows (open me from a chart to "
    "explain it)."
)
SAMPLE_NOTE = "Your data backfill is still running: these figures are sample data, not your bill."


class Scope(Protocol):
    data: TenantData

    def recommendation_statuses(self) -> dict[str, str]: ...

    def connection_status(self) -> dict | None: ...

    def alerts(self) -> list: ...


# A builder composes an answer's lines in order, citing each figure on `out` before yielding the line that shows it.
Builder = Callable[[Scope, GroundedAnswer], Iterator[str]]


class CannotGround(Exception):
    """Raised while planning an answer, before any line exists: the question is refused with this message."""


def start_answer(message: str, context: ChatContext | None, scope: Scope) -> tuple[GroundedAnswer, Iterator[str]]:
    """Decide what to answer (or refuse) without reading data, and return the answer with its lines to come.

    The lines are produced lazily, each after the data it cites has been read, and are recorded on the answer as
    they are yielded: the first can be streamed while the rest are being computed, and every number in it already
    carries its reference."""
    intent = intents.classify(message, context is not None)
    try:
        build = _plan(intent, message, context, scope)
    except CannotGround as why:
        out = GroundedAnswer(intent=intent, refused=True)
        return out, _recorded(out, [str(why)])
    out = GroundedAnswer(intent=intent)
    note = [SAMPLE_NOTE] if scope.data.sample else []
    return out, _recorded(out, chain(note, build(scope, out)))


def warm(data: TenantData) -> None:
    """Compute the aggregates the answers read, so a first question after startup costs a cache lookup."""
    if data.last_date is None:
        return
    for q in (
        _window(data.last_date, WINDOW_DAYS, "service"),
        _window(data.last_date, 7, "service"),
        _window(data.last_date, 7, "service", back=7),
    ):
        cached_spend(data, q)
    sp_source_fields(data, run_sp_position(data))
    run_projection(data, "month")
    load_recommendations(data, {})
    run_ledger(data, False)


def _plan(intent: str, message: str, context: ChatContext | None, scope: Scope) -> Builder:
    if intent == intents.UNKNOWN:
        raise CannotGround("I can't ground an answer to that in your data, so I won't guess. " + CAPABILITIES)
    if intent == intents.DATA_FRESHNESS:  # answerable before any spend exists: the connection may be why
        return data_freshness
    if scope.data.last_date is None:
        raise CannotGround("There is no spend data for your account yet, so I have nothing to ground an answer in.")
    if intent == intents.EXPLAIN_VIEW:
        return explain_view(scope, _deep_link(message, context))
    return {
        intents.SAVINGS: savings_source,
        intents.NEXT_ACTIONS: next_actions,
        intents.COST_DRIVERS: cost_drivers,
        intents.GUARANTEE: guarantee,
        intents.BILL_JUMP: bill_jump,
    }[intent]


def _recorded(out: GroundedAnswer, lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        out.say(line)
        yield line


def _window(last_date: date, days: int, group_by: str | None, back: int = 0) -> SpendQuery:
    end = last_date - timedelta(days=back)
    return SpendQuery(start=end - timedelta(days=days - 1), end=end, granularity="day", group_by=group_by)


def _cost_explorer_note(
    out: GroundedAnswer, sourced: Iterable[tuple[list[DataSourceSpan], Reference]]
) -> Iterator[str]:
    """One line when the answer's days include Cost Explorer days; `sourced` pairs each response's sources with
    its reference, latest range first, so the line names the last Cost Explorer day."""
    for spans, ref in sourced:
        for span in spans:
            if span.source == COST_EXPLORER:
                n = out.cite(ref)
                yield (
                    f"Figures up to {span.last_day} come from Cost Explorer (daily totals per service) [{n}]: "
                    "savings and coverage start with your first CUR delivery."
                )
                return


def _partial(spend, ref: int) -> Iterator[str]:
    line = partial_spend(spend, ref)
    if line:
        yield line


def savings_source(scope: Scope, out: GroundedAnswer) -> Iterator[str]:
    q = _window(scope.data.last_date, WINDOW_DAYS, "service")
    spend = cached_spend(scope.data, q)
    n = out.cite(spend.reference)
    t = spend.totals
    yield (
        f"From {q.start} to {q.end} [{n}] your usage would have cost "
        f"{out.money(t.on_demand_equivalent_cost, n, 'totals.on_demand_equivalent_cost')} at public on-demand "
        f"prices; your plans and reservations saved {out.money(t.savings, n, 'totals.savings')} "
        f"of it (your whole bill was {out.money(t.amortized_cost, n, 'totals.amortized_cost')})."
    )
    if abs(t.excluded_from_savings_cost) >= 0.005:
        yield (
            f"Tax, fees, credits and charges without an on-demand price came to "
            f"{out.money(t.excluded_from_savings_cost, n, 'totals.excluded_from_savings_cost')}: they are in "
            "your bill, not in the savings."
        )
    yield from _partial(spend, n)
    yield from _cost_explorer_note(out, [(spend.sources, spend.reference)])
    savers = [(i, g) for i, g in enumerate(t.by_group) if g.savings > 0.005]
    savers.sort(key=lambda ig: -ig[1].savings)
    if savers:
        parts = [f"{g.group} {out.money(g.savings, n, f'totals.by_group.{i}.savings')}" for i, g in savers[:3]]
        yield "By service, the savings came from " + ", ".join(parts) + "."
    sp = run_sp_position(scope.data)
    if sp.coverage_pct is not None:
        m = out.cite(reference("/api/savings-plans", {}))
        util = (
            f", used at {out.pct(sp.utilization_pct, m, 'position.utilization_pct')}"
            if sp.utilization_pct is not None
            else ""
        )
        yield (
            f"Savings Plans cover {out.pct(sp.coverage_pct, m, 'position.coverage_pct')} of your eligible "
            f"compute{util}: covered hours are billed at the plan rate instead of on-demand."
        )
    proj = run_projection(scope.data, "month")
    if proj.current is not None:
        k = out.cite(proj.reference)
        c = proj.current
        yield (
            f"{partial_projection(c, k)}, Blocks projects "
            f"{out.money(c.savings, k, 'current.savings')} of savings: "
            f"{out.money(c.baseline_cost, k, 'current.baseline_cost')} before the discount, "
            f"{out.money(c.projected_cost, k, 'current.projected_cost')} after."
        )


def next_actions(scope: Scope, out: GroundedAnswer) -> Iterator[str]:
    recs = run_recommendations(scope.data, scope.recommendation_statuses(), status="open")
    n = out.cite(recs.reference)
    if not recs.items:
        yield f"You have no open recommendations right now [{n}]; I'll point out new ones as the data refreshes."
        return
    yield "Your top actions, ranked by expected saving:"
    for i, rec in enumerate(recs.items[:3]):
        step = f" Start with: {rec.steps[0]}" if rec.steps else ""
        yield (
            f"{ORDINALS[i]}: {rec.title} [{n}], worth "
            f"{out.money(rec.expected_monthly_savings, n, f'items.{i}.expected_monthly_savings')} a month."
            f"{step}"
        )


def cost_drivers(scope: Scope, out: GroundedAnswer) -> Iterator[str]:
    recent = cached_spend(scope.data, _window(scope.data.last_date, 7, "service"))
    before = cached_spend(scope.data, _window(scope.data.last_date, 7, "service", back=7))
    a, b = out.cite(recent.reference), out.cite(before.reference)
    ra, rb = recent.totals.cost, before.totals.cost
    trend = f", {out.change_pct(ra, rb, a, b, 'totals.cost')}" if rb > 0 else ""
    yield (
        f"Your last week ({recent.query.start} to {recent.query.end}) [{a}] cost "
        f"{out.money(ra, a, 'totals.cost')}, against {out.money(rb, b, 'totals.cost')} the week before [{b}]"
        f"{trend}."
    )
    yield from _cost_explorer_note(out, [(recent.sources, recent.reference), (before.sources, before.reference)])
    yield from _partial(recent, a)
    idx_before = {g.group: (i, g) for i, g in enumerate(before.totals.by_group)}
    movers = []
    for i, g in enumerate(recent.totals.by_group):
        j, prev = idx_before.get(g.group, (None, None))
        movers.append((abs(g.cost - (prev.cost if prev else 0.0)), i, g, j, prev))
    movers.sort(key=lambda m: -m[0])
    parts = []
    for _, i, g, j, prev in movers[:3]:
        was = out.money(prev.cost, b, f"totals.by_group.{j}.cost") if prev else f"nothing [{b}]"
        parts.append(f"{g.group} {out.money(g.cost, a, f'totals.by_group.{i}.cost')} (was {was})")
    if parts:
        yield "The biggest movers by service: " + "; ".join(parts) + "."
    if recent.totals.by_group:
        top = recent.totals.by_group[0]
        yield (
            f"Your largest cost driver is {top.group}: {out.pct(top.share_pct, a, 'totals.by_group.0.share_pct')} "
            f"of last week's spend."
        )


def bill_jump(scope: Scope, out: GroundedAnswer) -> Iterator[str]:
    """The unresolved spend anomalies (GET /api/anomalies?kind=new_service&kind=spend_spike) with their figures, largest
    first; then the week-over-week movers for context. No anomaly: say so, and answer with the movers."""
    query = {"kind": list(SPEND_ANOMALY_KINDS)}
    items, _ = filter_alerts(scope.alerts(), query)
    n = out.cite(reference("/api/anomalies", query))
    if not items:
        yield (
            f"Blocks found no unusual spend [{n}]: no service, account and region rose above its usual level for "
            "that weekday by more than your alert threshold. Here is what moved week over week."
        )
        yield from cost_drivers(scope, out)
        return
    shown = sorted(enumerate(items), key=lambda ia: -ia[1].impact_usd)[:3]
    total = out.money(sum(a.impact_usd for a in items), n, "total_impact_usd")
    if len(items) == 1:
        yield f"Blocks detected one unresolved spend anomaly [{n}], {total} above your usual spend:"
    else:
        yield (
            f"Blocks detected {len(items)} unresolved spend anomalies [{n}], {total} above your usual spend in all; "
            f"the largest:"
        )
    for i, a in shown:
        yield _anomaly_line(out, i, a, n)
    yield from cost_drivers(scope, out)


def _anomaly_line(out: GroundedAnswer, i: int, a, n: int) -> str:
    where = f"{a.dimensions.get('service', '')} in account {a.dimensions.get('usage_account_id', '?')}"
    if a.kind.value == "new_service":
        return (
            f"{a.dimensions['service']} is new: first billed on {a.first_seen}, "
            f"{out.money(a.impact_usd, n, f'items.{i}.impact_usd')} so far."
        )
    days = (a.last_seen - a.first_seen).days + 1
    span = f"since {a.first_seen} ({days} days)" if days > 1 else f"on {a.first_seen}"
    line = (
        f"{where} ({a.dimensions.get('region') or 'global'}) cost {out.money(a.actual, n, f'items.{i}.actual')} "
        f"on {a.last_seen} against {out.money(a.expected, n, f'items.{i}.expected')} usual for that weekday, "
        f"{span}: {out.money(a.impact_usd, n, f'items.{i}.impact_usd')} above the baseline."
    )
    if a.top_usage_types and a.top_usage_types[0].impact > 0:
        top = a.top_usage_types[0]
        line += f" Most of it is {top.usage_type} (+{out.money(top.impact, n, f'items.{i}.top_usage_types.0.impact')})."
    return line


def _utc(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def data_freshness(scope: Scope, out: GroundedAnswer) -> Iterator[str]:
    """How far the figures go (the responses' data_through) and the AWS connection's last test, with its fix."""
    through = scope.data.data_through
    n = out.cite(reference("/api/spend", {}))
    if through:
        yield (
            f"Your figures go through {_utc(through)} [{n}]. AWS delivers the Cost and Usage Report hours to a day "
            "after the usage, and Blocks ingests each delivery as it lands, so later hours are not in them yet."
        )
    else:
        yield f"There is no spend data for your account yet [{n}]: it appears once the first delivery is ingested."
    status = scope.connection_status()
    m = out.cite(reference("/api/connection", {}))
    if not status:
        yield (
            f"Your AWS connection has not been tested yet [{m}]: an admin can run the connection test from onboarding."
        )
        return
    when = _utc(datetime.fromisoformat(status["checked_at"]))
    if status["status"] == "connected":
        yield f"Your AWS connection passed its last test, on {when} [{m}]."
        return
    yield f"Your AWS connection failed its last test, on {when} [{m}], so new data may not be arriving:"
    for check in status["failing"][:3]:
        yield f"{check['name']} [{m}]: {check['message']} Fix: {for_customer(check['remediation'])}"


def explain_view(scope: Scope, link: tuple[str, str] | None) -> Builder:
    if link is None:
        raise CannotGround(
            "Open me from a chart (or paste its /app/... link) and I'll explain that view. " + CAPABILITIES
        )
    path, query = link
    if path == "/app/dashboard":
        return _dashboard_builder(scope, parse_qs(query, keep_blank_values=True))
    if path == "/app/recommendations":
        return _explain_recommendations
    if path == "/app/savings-plans":
        return _explain_savings_plans
    if path == "/app/savings-ledger":
        return guarantee
    raise CannotGround(
        "I can explain /app/dashboard, /app/recommendations, /app/savings-plans and /app/savings-ledger views; "
        "that link is none of them."
    )


def _dashboard_builder(scope: Scope, raw: dict[str, list[str]]) -> Builder:
    period = raw.pop("period", [None])[0]
    try:
        q = parse_spend_query(raw, scope.data.last_date)
    except InvalidParameter as exc:
        raise CannotGround(
            f"That view's link has a parameter I can't read ({exc}), so I won't guess what it shows."
        ) from None
    return lambda scope, out: _explain_dashboard(scope, out, q, period)


def _explain_dashboard(scope: Scope, out: GroundedAnswer, q: SpendQuery, period: str | None) -> Iterator[str]:
    spend = cached_spend(scope.data, q)
    n = out.cite(spend.reference)
    grouped = f", split by {q.group_by}" if q.group_by else ""
    filters = (
        "; filtered to " + ", ".join(f"{k}={'|'.join(v)}" for k, v in spend.query.filters.items())
        if spend.query.filters
        else ""
    )
    yield f"This view shows {q.cost_type} cost per {q.granularity}{grouped}, from {q.start} to {q.end}{filters} [{n}]."
    unmatched = unmatched_filters(spend.hints, n)
    if unmatched:
        yield unmatched
    yield from _cost_explorer_note(out, [(spend.sources, spend.reference)])
    yield from _partial(spend, n)
    t = spend.totals
    yield (
        f"The total is {out.money(t.cost, n, 'totals.cost')}; at public on-demand prices it would have been "
        f"{out.money(t.public_on_demand_cost, n, 'totals.public_on_demand_cost')}."
    )
    if t.by_group:
        parts = [
            f"{g.group} {out.money(g.cost, n, f'totals.by_group.{i}.cost')} "
            f"({out.pct(g.share_pct, n, f'totals.by_group.{i}.share_pct')})"
            for i, g in enumerate(t.by_group[:3])
        ]
        yield "The largest parts: " + ", ".join(parts) + "."
    if spend.series and q.group_by is None:
        i, peak = max(enumerate(spend.series), key=lambda ip: ip[1].cost)
        partial = f", though that {q.granularity} is not complete" if peak.partial else ""
        yield (
            f"The highest {q.granularity} was {peak.period_start} [{n}] at "
            f"{out.money(peak.cost, n, f'series.{i}.cost')}{partial}."
        )
    if period in ("day", "week", "month", "ytd"):
        proj = run_projection(scope.data, period)
        if proj.current is not None:
            k = out.cite(proj.reference)
            so_far = " so far" if proj.current.partial else ""
            yield (
                f"The projection panel compares{so_far} "
                f"{out.money(proj.current.baseline_cost, k, 'current.baseline_cost')}"
                f" before the Blocks discount with "
                f"{out.money(proj.current.projected_cost, k, 'current.projected_cost')} after it."
            )


def _explain_recommendations(scope: Scope, out: GroundedAnswer) -> Iterator[str]:
    yield (
        "This view lists actions that lower your bill, largest expected saving first; mark each one accepted, "
        "done, snoozed or dismissed as you go."
    )
    recs = run_recommendations(scope.data, scope.recommendation_statuses(), status="open")
    n = out.cite(recs.reference)
    total = out.money(recs.total_expected_monthly_savings, n, "total_expected_monthly_savings")
    yield f"Open ones add up to {total} a month."


def _explain_savings_plans(scope: Scope, out: GroundedAnswer) -> Iterator[str]:
    yield (
        "This view shows your Savings Plans: how much eligible compute they cover and how much of the "
        "commitment is used, plus purchase proposals and their approval status."
    )
    sp = run_sp_position(scope.data)
    ref = reference("/api/savings-plans", {})
    n = out.cite(ref)
    if sp.coverage_pct is not None and sp.utilization_pct is not None:
        yield (
            f"From {sp.start} to {sp.end} [{n}], coverage is {out.pct(sp.coverage_pct, n, 'position.coverage_pct')}"
            f" and utilization {out.pct(sp.utilization_pct, n, 'position.utilization_pct')}, with "
            f"{out.money(sp.hourly_commitment, n, 'position.hourly_commitment')} an hour committed."
        )
    yield from _cost_explorer_note(out, [(sp_source_fields(scope.data, sp)["sources"], ref)])


def _deep_link(message: str, context: ChatContext | None) -> tuple[str, str] | None:
    if context is not None:
        return context.path, context.query.lstrip("?")
    m = intents.DEEP_LINK.search(message)
    return (m.group(1), m.group(2) or "") if m else None
