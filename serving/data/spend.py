"""Spend over time: the query behind GET /api/spend and Major Tom's cost answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from serving.data import params as p
from serving.data.hints import filter_hints
from serving.data.periods import coverage, period_end
from serving.data.sources import is_preliminary, source_fields
from serving.data.store import TenantData
from serving.refs import reference
from serving.schemas import GroupTotal, SpendPoint, SpendQueryEcho, SpendResponse, SpendTotals

SPEND_PARAMS = (
    "start",
    "end",
    "granularity",
    "group_by",
    "account",
    "ou",
    "service",
    "region",
    "tag",
    "charge_class",
    "cost_type",
)
UNTAGGED = "(untagged)"
_GROUP_EXPR = {
    "account": "usage_account_id",
    "ou": "ou_path",
    "service": "service",
    "region": "coalesce(region, 'global')",
    "charge_class": "charge_class",
}
# The savings baseline (docs/api.md, Savings): usage with a public on-demand price, and the commitment lines that
# pay for covered usage (covered usage at its effective rate, unused commitment, upfront rows at 0). Fees, tax,
# credits, refunds and discounts have no on-demand counterpart: counted on one side only they would turn tax into
# negative savings and a credit into savings Blocks never made.
IN_SAVINGS_BASELINE = (
    "(charge_class IN ('savings_plan', 'reservation') OR (charge_class = 'usage' AND public_on_demand_cost > 0))"
)
_PERIOD_EXPR = {
    "hour": "date_trunc('hour', usage_hour)",
    "day": "usage_date",
    "week": "date_trunc('week', usage_date)::DATE",
    "month": "date_trunc('month', usage_date)::DATE",
}


@dataclass(frozen=True)
class SpendQuery:
    start: date
    end: date
    granularity: str = "day"
    group_by: str | None = None
    cost_type: str = "amortized"
    accounts: tuple[str, ...] = ()
    ous: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    charge_classes: tuple[str, ...] = ()

    def as_params(self) -> dict[str, str | list[str] | None]:
        """The query string that reproduces this query (used in references and UI links)."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "granularity": self.granularity,
            "group_by": self.group_by,
            "cost_type": self.cost_type,
            "account": list(self.accounts),
            "ou": list(self.ous),
            "service": list(self.services),
            "region": list(self.regions),
            "tag": [f"{k}={v}" for k, v in self.tags],
            "charge_class": list(self.charge_classes),
        }


def parse_spend_query(
    raw: Mapping[str, Sequence[str]], last_date: date | None, extra_allowed: Sequence[str] = ()
) -> SpendQuery:
    p.reject_unknown(raw, (*SPEND_PARAMS, *extra_allowed))
    granularity = p.choose("granularity", p.single(raw, "granularity"), p.GRANULARITIES, "day")
    start, end = p.date_range(raw, last_date, granularity)
    return SpendQuery(
        start=start,
        end=end,
        granularity=granularity,
        group_by=p.parse_group_by(p.single(raw, "group_by")),
        cost_type=p.choose("cost_type", p.single(raw, "cost_type"), p.COST_TYPES, "amortized"),
        accounts=p.matching("account", raw.get("account", ()), p.ACCOUNT_RE, "a 12-digit AWS account id"),
        ous=p.matching("ou", raw.get("ou", ()), p.OU_RE, "an OU path like Root/Engineering/Prod"),
        services=p.matching("service", raw.get("service", ()), p.SERVICE_RE, "a service code like AmazonEC2"),
        regions=p.matching("region", raw.get("region", ()), p.REGION_RE, "a region code like eu-west-1 or global"),
        tags=p.parse_tags("tag", raw.get("tag", ())),
        charge_classes=p.one_of_each("charge_class", raw.get("charge_class", ()), p.CHARGE_CLASSES),
    )


def spend_sql(q: SpendQuery) -> tuple[str, list[Any]]:
    """One grouped scan: the hourly mart for hour granularity, the daily mart otherwise."""
    table = "spend_hourly" if q.granularity == "hour" else "spend_daily"
    args: list[Any] = []
    if q.group_by is None:
        group = "NULL::VARCHAR"
    elif q.group_by.startswith("tag:"):
        group = f"coalesce(json_extract_string(tags, ?), '{UNTAGGED}')"
        args.append(_json_path(q.group_by[4:]))
    else:
        group = _GROUP_EXPR[q.group_by]
    where = ["usage_date BETWEEN ? AND ?"]
    args += [q.start, q.end]
    for column, values in (
        ("usage_account_id", q.accounts),
        ("service", q.services),
        ("coalesce(region, 'global')", q.regions),
        ("charge_class", q.charge_classes),
    ):
        if values:
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            args += list(values)
    if q.ous:
        where.append("(" + " OR ".join("(ou_path = ? OR starts_with(ou_path, ?))" for _ in q.ous) + ")")
        for ou in q.ous:
            args += [ou, ou + "/"]
    for key, value in q.tags:
        where.append("json_extract_string(tags, ?) = ?")
        args += [_json_path(key), value]
    sql = (
        f"SELECT {_PERIOD_EXPR[q.granularity]} AS period, {group} AS grp, sum(unblended_cost), "
        f"sum(amortized_cost), sum(public_on_demand_cost), "
        f"sum(public_on_demand_cost) FILTER (WHERE {IN_SAVINGS_BASELINE}), "
        f"sum(amortized_cost) FILTER (WHERE {IN_SAVINGS_BASELINE}) "
        f"FROM {table} WHERE {' AND '.join(where)} GROUP BY ALL ORDER BY 1, 2"
    )
    return sql, args


def _point(data: TenantData, q: SpendQuery, period, group: str | None, cost: float | None) -> SpendPoint:
    if q.granularity == "hour":
        return SpendPoint(period_start=period.isoformat(), group=group, cost=_money(cost))
    end = period_end(period, q.granularity)
    cov = coverage(period, end, q.start, q.end, data.first_date, data.data_through)
    return SpendPoint(
        period_start=period.isoformat(),
        group=group,
        cost=_money(cost),
        period_end=end.isoformat(),
        partial=cov.partial,
        days_with_data=cov.days,
        partial_reason=cov.reason,
    )


def run_spend(data: TenantData, q: SpendQuery) -> SpendResponse:
    sql, args = spend_sql(q)
    rows = data.rows(sql, args)
    cost_idx = 2 if q.cost_type == "unblended" else 3
    series = [_point(data, q, r[0], r[1], r[cost_idx]) for r in rows]
    unblended = sum(r[2] or 0.0 for r in rows)
    amortized = sum(r[3] or 0.0 for r in rows)
    public = sum(r[4] or 0.0 for r in rows)
    baseline = sum(r[5] or 0.0 for r in rows)
    baseline_amortized = sum(r[6] or 0.0 for r in rows)
    total = unblended if q.cost_type == "unblended" else amortized
    by_group: dict[str, list[float]] = {}
    if q.group_by is not None:
        for r in rows:
            acc = by_group.setdefault(r[1], [0.0, 0.0, 0.0, 0.0])
            acc[0] += r[cost_idx] or 0.0
            acc[1] += r[4] or 0.0
            acc[2] += r[5] or 0.0
            acc[3] += r[6] or 0.0
    groups = [
        GroupTotal(
            group=g,
            cost=_money(c),
            share_pct=round(100.0 * c / total, 2) if total else 0.0,
            public_on_demand_cost=_money(pub),
            savings=_money(od - amort),
        )
        for g, (c, pub, od, amort) in sorted(by_group.items(), key=lambda kv: (-kv[1][0], kv[0]))
    ]
    params = q.as_params()
    filters = {k: v for k, v in params.items() if isinstance(v, list) and v}
    return SpendResponse(
        **data.scope_fields(),
        query=SpendQueryEcho(
            start=params["start"],
            end=params["end"],
            granularity=q.granularity,
            group_by=q.group_by,
            cost_type=q.cost_type,
            filters=filters,
        ),
        series=series,
        totals=SpendTotals(
            cost=_money(total),
            unblended_cost=_money(unblended),
            amortized_cost=_money(amortized),
            public_on_demand_cost=_money(public),
            savings=_money(baseline - baseline_amortized),
            on_demand_equivalent_cost=_money(baseline),
            excluded_from_savings_cost=_money(amortized - baseline_amortized),
            by_group=groups,
        ),
        reference=reference("/api/spend", params),
        partial_periods=any(pt.partial for pt in series),
        hints=filter_hints(data, filters),
        **source_fields(data, q.start, q.end),
    )


def _json_path(key: str) -> str:
    # Keys are validated to exclude double quotes, so quoting the key makes ':' and '.' literal.
    return f'$."{key}"'


def _money(x: float | None) -> float:
    return round(x or 0.0, 6)


def cached_spend(data: TenantData, q: SpendQuery) -> SpendResponse:
    """run_spend through the snapshot's cache (the result is never mutated by callers)."""
    return data.cached(("spend_model", q), lambda: run_spend(data, q))


# `preliminary`: the period holds Cost Explorer days (daily totals per service, no resources or tags)
# `partial`: the point holds only part of its calendar period (docs/api.md, Periods)
SPEND_CSV_HEADER = ("period_start", "group", "cost", "cost_type", "sample", "preliminary", "partial")


def spend_csv_rows(result: SpendResponse, q: SpendQuery):
    for pt in result.series:
        first = date.fromisoformat(pt.period_start[:10])
        prelim = is_preliminary(result.sources, first, period_end(first, q.granularity))
        yield pt.period_start, pt.group, pt.cost, q.cost_type, result.sample, prelim, pt.partial
