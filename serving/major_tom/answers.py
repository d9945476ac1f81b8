"""Grounded answers, built by calling the same query functions the API endpoints call, so every figure Major Tom
says is the figure the referenced endpoint returns."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol
from urllib.parse import parse_qs

from serving.data.params import InvalidParameter
from serving.data.projection import run_projection
from serving.data.recommendations import run_recommendations
from serving.data.savings_plans import run_sp_position
from serving.data.spend import SpendQuery, cached_spend, parse_spend_query
from serving.data.store import TenantData
from serving.major_tom import intents
from serving.major_tom.grounding import GroundedAnswer
from serving.models import ChatContext
from serving.refs import reference

WINDOW_DAYS = 30
ORDINALS = ("First", "Second", "Third")
CAPABILITIES = ("I answer from your Blocks data only: where your savings come from, what to do next, what drives "
                "your cost or changed recently, and what a dashboard view shows (open me from a chart to explain it).")


class Scope(Protocol):
    data: TenantData

    def recommendation_statuses(self) -> dict[str, str]: ...


def answer(message: str, context: ChatContext | None, scope: Scope) -> GroundedAnswer:
    intent = intents.classify(message, context is not None)
    if intent == intents.UNKNOWN:
        return refuse(intent, "I can't ground an answer to that in your data, so I won't guess. " + CAPABILITIES)
    if scope.data.last_date is None:
        return refuse(intent, "There is no spend data for your account yet, so I have nothing to ground an answer in.")
    build = {intents.SAVINGS: savings_source, intents.NEXT_ACTIONS: next_actions,
             intents.COST_DRIVERS: cost_drivers}.get(intent)
    if build is not None:
        out = build(scope)
    else:
        out = explain_view(scope, _deep_link(message, context))
    if scope.data.sample and not out.refused:
        out.lines.insert(0, "Your data backfill is still running: these figures are sample data, not your bill.")
    return out


def refuse(intent: str, why: str) -> GroundedAnswer:
    return GroundedAnswer(intent=intent, lines=[why], refused=True)


def _window(scope: Scope, days: int, group_by: str | None, back: int = 0) -> SpendQuery:
    end = scope.data.last_date - timedelta(days=back)
    return SpendQuery(start=end - timedelta(days=days - 1), end=end, granularity="day", group_by=group_by)


def savings_source(scope: Scope) -> GroundedAnswer:
    out = GroundedAnswer(intent=intents.SAVINGS)
    q = _window(scope, WINDOW_DAYS, "service")
    spend = cached_spend(scope.data, q)
    n = out.cite(spend.reference)
    t = spend.totals
    out.say(f"From {q.start} to {q.end} [{n}] you paid {out.money(t.amortized_cost, n, 'totals.amortized_cost')} "
            f"against {out.money(t.public_on_demand_cost, n, 'totals.public_on_demand_cost')} at public on-demand "
            f"prices, so {out.money(t.savings, n, 'totals.savings')} was saved.")
    savers = [(i, g) for i, g in enumerate(t.by_group) if g.savings > 0.005]
    savers.sort(key=lambda ig: -ig[1].savings)
    if savers:
        parts = [f"{g.group} {out.money(g.savings, n, f'totals.by_group.{i}.savings')}" for i, g in savers[:3]]
        out.say("By service, the savings came from " + ", ".join(parts) + ".")
    sp = run_sp_position(scope.data)
    if sp.coverage_pct is not None:
        m = out.cite(reference("/api/savings-plans", {}))
        util = (f", used at {out.pct(sp.utilization_pct, m, 'position.utilization_pct')}"
                if sp.utilization_pct is not None else "")
        out.say(f"Savings Plans cover {out.pct(sp.coverage_pct, m, 'position.coverage_pct')} of your eligible "
                f"compute{util}: covered hours are billed at the plan rate instead of on-demand.")
    proj = run_projection(scope.data, "month")
    if proj.current is not None:
        k = out.cite(proj.reference)
        c = proj.current
        out.say(f"For the month from {c.period_start} [{k}], Blocks projects "
                f"{out.money(c.savings, k, 'current.savings')} of savings: "
                f"{out.money(c.baseline_cost, k, 'current.baseline_cost')} before the discount, "
                f"{out.money(c.projected_cost, k, 'current.projected_cost')} after.")
    return out


def next_actions(scope: Scope) -> GroundedAnswer:
    out = GroundedAnswer(intent=intents.NEXT_ACTIONS)
    recs = run_recommendations(scope.data, scope.recommendation_statuses(), status="open")
    n = out.cite(recs.reference)
    if not recs.items:
        out.say(f"You have no open recommendations right now [{n}]; I'll point out new ones as the data refreshes.")
        return out
    out.say("Your top actions, ranked by expected saving:")
    for i, rec in enumerate(recs.items[:3]):
        step = f" Start with: {rec.steps[0]}" if rec.steps else ""
        out.say(f"{ORDINALS[i]}: {rec.title} [{n}], worth "
                f"{out.money(rec.expected_monthly_savings, n, f'items.{i}.expected_monthly_savings')} a month."
                f"{step}")
    return out


def cost_drivers(scope: Scope) -> GroundedAnswer:
    out = GroundedAnswer(intent=intents.COST_DRIVERS)
    recent = cached_spend(scope.data, _window(scope, 7, "service"))
    before = cached_spend(scope.data, _window(scope, 7, "service", back=7))
    a, b = out.cite(recent.reference), out.cite(before.reference)
    ra, rb = recent.totals.cost, before.totals.cost
    trend = f", {out.change_pct(ra, rb, a, b, 'totals.cost')}" if rb > 0 else ""
    out.say(f"Your last week ({recent.query.start} to {recent.query.end}) [{a}] cost "
            f"{out.money(ra, a, 'totals.cost')}, against {out.money(rb, b, 'totals.cost')} the week before [{b}]"
            f"{trend}.")
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
        out.say("The biggest movers by service: " + "; ".join(parts) + ".")
    if recent.totals.by_group:
        top = recent.totals.by_group[0]
        out.say(f"Your largest cost driver is {top.group}: {out.pct(top.share_pct, a, 'totals.by_group.0.share_pct')} "
                f"of last week's spend.")
    return out


def explain_view(scope: Scope, link: tuple[str, str] | None) -> GroundedAnswer:
    if link is None:
        return refuse(intents.EXPLAIN_VIEW, "Open me from a chart (or paste its /app/... link) and I'll explain that "
                                            "view. " + CAPABILITIES)
    path, query = link
    raw = parse_qs(query, keep_blank_values=True)
    if path == "/app/dashboard":
        return _explain_dashboard(scope, raw)
    if path == "/app/recommendations":
        return _explain_recommendations(scope)
    if path == "/app/savings-plans":
        return _explain_savings_plans(scope)
    return refuse(intents.EXPLAIN_VIEW, "I can explain /app/dashboard, /app/recommendations and /app/savings-plans "
                                        "views; that link is none of them.")


def _explain_dashboard(scope: Scope, raw: dict[str, list[str]]) -> GroundedAnswer:
    out = GroundedAnswer(intent=intents.EXPLAIN_VIEW)
    period = raw.pop("period", [None])[0]
    try:
        q = parse_spend_query(raw, scope.data.last_date)
    except InvalidParameter as exc:
        return refuse(intents.EXPLAIN_VIEW, f"That view's link has a parameter I can't read ({exc}), so I won't "
                                            "guess what it shows.")
    spend = cached_spend(scope.data, q)
    n = out.cite(spend.reference)
    grouped = f", split by {q.group_by}" if q.group_by else ""
    filters = "; filtered to " + ", ".join(f"{k}={'|'.join(v)}" for k, v in spend.query.filters.items()) \
        if spend.query.filters else ""
    out.say(f"This view shows {q.cost_type} cost per {q.granularity}{grouped}, from {q.start} to {q.end}{filters} "
            f"[{n}].")
    t = spend.totals
    out.say(f"The total is {out.money(t.cost, n, 'totals.cost')}; at public on-demand prices it would have been "
            f"{out.money(t.public_on_demand_cost, n, 'totals.public_on_demand_cost')}.")
    if t.by_group:
        parts = [f"{g.group} {out.money(g.cost, n, f'totals.by_group.{i}.cost')} "
                 f"({out.pct(g.share_pct, n, f'totals.by_group.{i}.share_pct')})" for i, g in enumerate(t.by_group[:3])]
        out.say("The largest parts: " + ", ".join(parts) + ".")
    if spend.series and q.group_by is None:
        i, peak = max(enumerate(spend.series), key=lambda ip: ip[1].cost)
        out.say(f"The highest {q.granularity} was {peak.period_start} [{n}] at "
                f"{out.money(peak.cost, n, f'series.{i}.cost')}.")
    if period in ("day", "week", "month", "ytd"):
        proj = run_projection(scope.data, period)
        if proj.current is not None:
            k = out.cite(proj.reference)
            out.say(f"The projection panel compares {out.money(proj.current.baseline_cost, k, 'current.baseline_cost')}"
                    f" before the Blocks discount with {out.money(proj.current.projected_cost, k, 'current.projected_cost')}"
                    f" after it.")
    return out


def _explain_recommendations(scope: Scope) -> GroundedAnswer:
    out = GroundedAnswer(intent=intents.EXPLAIN_VIEW)
    recs = run_recommendations(scope.data, scope.recommendation_statuses(), status="open")
    n = out.cite(recs.reference)
    out.say("This view lists actions that lower your bill, largest expected saving first; mark each one accepted, "
            "done, snoozed or dismissed as you go.")
    out.say(f"Open ones add up to {out.money(recs.total_expected_monthly_savings, n, 'total_expected_monthly_savings')}"
            " a month.")
    return out


def _explain_savings_plans(scope: Scope) -> GroundedAnswer:
    out = GroundedAnswer(intent=intents.EXPLAIN_VIEW)
    sp = run_sp_position(scope.data)
    n = out.cite(reference("/api/savings-plans", {}))
    out.say("This view shows your Savings Plans: how much eligible compute they cover and how much of the "
            "commitment is used, plus purchase proposals and their approval status.")
    if sp.coverage_pct is not None and sp.utilization_pct is not None:
        out.say(f"From {sp.start} to {sp.end} [{n}], coverage is {out.pct(sp.coverage_pct, n, 'position.coverage_pct')}"
                f" and utilization {out.pct(sp.utilization_pct, n, 'position.utilization_pct')}, with "
                f"{out.money(sp.hourly_commitment, n, 'position.hourly_commitment')} an hour committed.")
    return out


def _deep_link(message: str, context: ChatContext | None) -> tuple[str, str] | None:
    if context is not None:
        return context.path, context.query.lstrip("?")
    m = intents.DEEP_LINK.search(message)
    return (m.group(1), m.group(2) or "") if m else None
