"""Response schemas shared by the API and Major Tom (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DataStatus = Literal["ready", "backfill_pending"]


class Reference(BaseModel):
    """Where a number comes from: the API call that returns it and the UI view that shows it."""

    endpoint: str = Field(examples=["/api/spend"])
    params: dict[str, str | list[str]] = Field(examples=[{"start": "2026-10-01", "end": "2026-10-31"}])
    ui_link: str = Field(examples=["/app/dashboard?start=2026-10-01&end=2026-10-31"])


class ErrorBody(BaseModel):
    code: str = Field(examples=["invalid_parameter"])
    message: str = Field(examples=["start: '2026-13-01' is not a calendar date; use YYYY-MM-DD"])
    field: str | None = Field(None, examples=["start"])


class ErrorResponse(BaseModel):
    error: ErrorBody


class _Scoped(BaseModel):
    tenant_id: str = Field(examples=["acme_corp"])
    data_status: DataStatus = Field(description="backfill_pending until the tenant's first marts exist")
    sample: bool = Field(description="true when the figures are sample data shown before the backfill completes")
    data_through: str | None = Field(
        examples=["2026-12-02T15:00:00+00:00"],
        description="end of the last hour with data (UTC ISO): AWS delivers CUR hours to a day late, so later hours "
        "are not in the figures yet; null when there is no data",
    )


class DataSourceSpan(BaseModel):
    source: Literal["cost_explorer", "cur"] = Field(examples=["cost_explorer"])
    first_day: str = Field(examples=["2026-10-01"], description="first requested day from this source")
    last_day: str = Field(examples=["2026-10-31"], description="last requested day from this source")


class _Sourced(_Scoped):
    sources: list[DataSourceSpan] = Field(
        description="where the requested days' figures come from: cost_explorer (daily totals per account and "
        "service, before the first CUR delivery) or cur; empty when the tenant's marts predate the "
        "data_sources_daily mart"
    )
    preliminary: bool = Field(
        description="true when any requested day comes from Cost Explorer: savings, Savings Plans coverage and "
        "recommendations over those days are not meaningful yet"
    )


class SpendPoint(BaseModel):
    period_start: str = Field(examples=["2026-10-01"], description="ISO date, or ISO timestamp for hour granularity")
    group: str | None = Field(None, examples=["AmazonEC2"])
    cost: float
    # week/month/day points: the calendar period, and whether the figure holds all of it (docs/api.md, Periods)
    period_end: str | None = Field(
        None, examples=["2026-10-31"], description="last day of the calendar period (day, week, month); null for hours"
    )
    partial: bool = Field(
        False,
        description="true when the figure holds only part of its calendar period: the "
        "range cuts it or the data does not reach its end (the current month)",
    )
    days_with_data: int | None = Field(None, description="days of the period the figure holds; null for hours")
    partial_reason: str | None = Field(None, examples=["data runs through 2026-12-02 15:00 UTC"])


class FilterHint(BaseModel):
    field: str = Field(examples=["service"])
    value: str = Field(examples=["EC2"])
    message: str
    known: list[str] = Field(
        examples=[["AmazonEC2", "AmazonECS"]],
        description="known values of the field in your data, closest first (at most 12)",
    )


class GroupTotal(BaseModel):
    group: str
    cost: float
    share_pct: float
    public_on_demand_cost: float
    savings: float = Field(
        description="on-demand equivalent minus amortized cost of this group's usage and "
        "commitment lines (docs/api.md, Savings)"
    )


class SpendTotals(BaseModel):
    cost: float = Field(description="sum of the selected cost_type")
    unblended_cost: float
    amortized_cost: float
    public_on_demand_cost: float
    savings: float = Field(
        description="on_demand_equivalent_cost minus the amortized cost of the same lines: what "
        "commitments saved against public on-demand prices (docs/api.md, Savings)"
    )
    on_demand_equivalent_cost: float = Field(
        0.0,
        description="the savings baseline: public on-demand price of the usage lines (and commitment lines) "
        "savings compares; fees, tax, credits, refunds and discounts are outside it",
    )
    excluded_from_savings_cost: float = Field(
        0.0,
        description="amortized cost of the lines outside the savings baseline (fees, tax, credits, refunds, "
        "discounts, usage without a public price): in cost, not in savings",
    )
    by_group: list[GroupTotal]


class SpendQueryEcho(BaseModel):
    start: str
    end: str
    granularity: Literal["hour", "day", "week", "month"]
    group_by: str | None
    cost_type: Literal["unblended", "amortized"]
    filters: dict[str, list[str]]


class SpendResponse(_Sourced):
    query: SpendQueryEcho
    series: list[SpendPoint]
    totals: SpendTotals
    reference: Reference
    partial_periods: bool = Field(False, description="true when any series point is partial (see SpendPoint)")
    hints: list[FilterHint] = Field(
        default_factory=list, description="one per filter value your data has never seen, with known values"
    )


class ProjectionRow(BaseModel):
    period_type: Literal["day", "week", "month", "ytd"]
    period_start: str
    period_end: str
    baseline_cost: float
    projected_cost: float
    savings: float
    delta_pct: float
    achievable_cost: float | None
    days_in_period: int | None = Field(None, description="calendar days from period_start to period_end")
    days_with_data: int | None = Field(None, description="days of the period with data so far")
    partial: bool = Field(
        False,
        description="true while the period has fewer days with data than calendar days "
        "(the current month, week or day): its figures are to date",
    )


class ProjectionResponse(_Sourced):
    period: Literal["day", "week", "month", "ytd"]
    current: ProjectionRow | None = Field(description="the latest period; null until the projection exists")
    history: list[ProjectionRow]
    reference: Reference


class Recommendation(BaseModel):
    recommendation_id: str
    category: Literal["rightsizing", "modernization", "commitment_posture", "idle"] | str
    rec_type: str
    resource_id: str | None
    usage_account_id: str | None
    region: str | None
    service: str | None
    title: str
    rationale: str
    expected_monthly_savings: float
    steps: list[str]
    status: str
    version: str = Field(description="send as If-Match when changing the status (optimistic concurrency)")
    generated_at: str | None


class RecommendationsResponse(_Scoped):
    items: list[Recommendation]
    total_expected_monthly_savings: float
    reference: Reference


class RecommendationItemResponse(_Scoped):
    item: Recommendation


class StatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "accepted", "dismissed", "done", "snoozed"] = Field(examples=["accepted"])


class SpDailyPosition(BaseModel):
    date: str
    commitment: float
    used_commitment: float
    coverage_pct: float | None
    utilization_pct: float | None


class SpPlan(BaseModel):
    savings_plan_arn: str
    hourly_commitment: float
    utilization_pct: float | None


class SpPosition(BaseModel):
    start: str | None
    end: str | None
    hourly_commitment: float
    coverage_pct: float | None
    utilization_pct: float | None
    unused_commitment: float
    eligible_on_demand_cost: float
    covered_on_demand_cost: float
    daily: list[SpDailyPosition]
    plans: list[SpPlan]


class SpProposal(BaseModel):
    """A Savings Plans purchase proposal as the state store holds it (Analyzing -> PendingApproval -> Purchased ->
    Monitoring, or Rejected / Expired / Blocked)."""

    model_config = ConfigDict(extra="allow")
    proposal_id: str
    status: str = Field(examples=["PendingApproval"])
    status_reason: str | None = None
    hourly_commitment: float = Field(description="USD per hour, at Savings Plans rates, billed every hour of the term")
    term_years: int
    payment_option: str
    total_commitment_usd: float | None = Field(None, description="USD committed over the whole term")
    expected_savings_usd_per_month: float | None = Field(None, description="USD per month against on-demand")
    expected_savings_usd_over_term: float | None = Field(None, description="USD over the whole term")
    expected: dict[str, Any] = Field(
        default_factory=dict,
        description="the analyzer's output as recorded; "
        "expected_savings there is over the term, expected_monthly_savings per month",
    )
    rationale: str = ""
    created_at: str
    expires_at: str


class SavingsPlansResponse(_Sourced):
    position: SpPosition
    proposals: list[SpProposal]
    proposals_available: bool = Field(description="false when the state store does not expose proposals yet")
    reference: Reference


class ChatContext(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(max_length=256, examples=["/app/dashboard"])
    query: str = Field("", max_length=2048, examples=["granularity=day&group_by=service"])


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=2000, examples=["What should I do next?"])
    context: ChatContext | None = Field(None, description="the view the user is on, for 'explain this view'")


class Health(BaseModel):
    status: Literal["ok"]


class ConnectionCheckResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    tenant_id: str
    ok: bool
    checks: list[dict[str, Any]]


class FailingCheck(BaseModel):
    name: str
    error_code: str | None
    message: str
    remediation: str | None = Field(description="what the customer should change")


class ConnectionStatusResponse(BaseModel):
    tenant_id: str
    status: Literal["pending", "connected", "failed"] = Field(
        description="from the latest connection test; pending until one has run"
    )
    checked_at: str | None = Field(description="when the latest test ran (UTC ISO); null when none has")
    role_arn: str
    checks: dict[str, Literal["pass", "fail", "skip"]] = Field(description="each check's latest result")
    failing: list[FailingCheck]


class SetupResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    tenant_id: str
    result: dict[str, Any]
