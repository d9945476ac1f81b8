"""Per-tenant Dagster definitions for the Savings Plans workflow:

    sp_eligible_usage_hourly -> sp_proposals -> sp_approvals -> sp_purchases -> sp_monitoring (+ 2 asset checks)

Dagster has no approval step, so the back office records its decision as an event on `sp_approvals`: a
materialization from the launchpad (run config; the run records the decision and fails unless it is recorded, see
approval_run.py) or a runless event (report_runless_asset_event / REST) carrying proposal_id, decision, approver,
note. `{t}__sp_approval_sensor` reads those events, records the decision in the state store (first one wins) and
launches `sp_purchases` with run_key = proposal id. The store, not Dagster, is what makes the purchase happen once;
run_key only saves launching runs that would find nothing to do. Each status change is also observed on
`sp_proposals` (approval_view.py), so its page shows the proposal's live status, not the one it was made with.
"""

# no `from __future__ import annotations`: Dagster reads the config classes from the real annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any, Callable, Literal

import dagster as dg

from blocks_pipelines.state import NotFoundError, ProposalStatus, PurchaseState, get_state_store
from blocks_pipelines.state.models import IllegalTransitionError, utcnow
from blocks_pipelines.tenants.config import TenantConfig
from blocks_pipelines.tenants.templates import bind, copy_for_tenant, template_key, tenant_of

# The analyzer, the lake readers and the purchasers (polars, boto3) are imported by the asset bodies that use them:
# building the definitions of 200 tenants needs none of them (issue #2).

MIN_COMMITMENT = 0.001  # AWS's smallest hourly commitment
POSITION_MART = "sp_position_hourly"  # blocks_pipelines.savings_plans.inputs.POSITION_MART, without importing polars

# The analyzer each tenant's sp_proposals uses (build_sp_defs(analyze=...)); a tenant not here uses `recommend`.
_ANALYZERS: dict[str, Callable[..., Any]] = {}


def purchaser_for(tenant: TenantConfig, store):
    from blocks_pipelines.savings_plans.purchase import purchaser_for as _purchaser_for

    return _purchaser_for(tenant, store)


class ApprovalConfig(dg.Config):
    proposal_id: str
    decision: Literal["approve", "reject"] = "approve"
    approver: str
    note: str = ""
    # the proposal's $/h, repeated by the approver as a confirmation; a mismatch refuses the decision
    confirm_hourly_commitment: float | None = None


class PurchaseConfig(dg.Config):
    proposal_id: str = ""  # empty: every approved proposal of the tenant


def _value(metadata: dict[str, Any], name: str, default: str = "") -> str:
    raw = metadata.get(name, default)
    return str(getattr(raw, "value", raw))


def approval_events(instance: dg.DagsterInstance, key: dg.AssetKey, cursor: dict[str, int]) -> list[tuple[int, dict]]:
    """New decision events on `key` after the cursor, materializations and runless observations alike, in order."""
    found = []
    for kind, fetch in (("mat", instance.fetch_materializations), ("obs", instance.fetch_observations)):
        result = fetch(dg.AssetRecordsFilter(asset_key=key, after_storage_id=cursor.get(kind)), limit=500,
                       ascending=True)
        for record in result.records:
            event = record.event_log_entry.asset_materialization or record.event_log_entry.asset_observation
            found.append((record.storage_id, dict(event.metadata) if event else {}))
            cursor[kind] = max(cursor.get(kind, 0), record.storage_id)
    return sorted(found, key=lambda e: e[0])


def _analyzer(tenant_id: str) -> Callable[..., Any]:
    analyze = _ANALYZERS.get(tenant_id)
    if analyze is None:
        from blocks_pipelines.savings_plans.analyzer import recommend as analyze
    return analyze


def _sp_proposals(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from blocks_pipelines.savings_plans.approval_view import approve_command, status_metadata, status_view
    from blocks_pipelines.savings_plans.inputs import held_commitments, load_usage
    from blocks_pipelines.savings_plans.proposals import build_proposal, expire_overdue, publish_proposal

    tenant = tenant_of(context)
    t = tenant.id
    store, now = get_state_store(), utcnow()
    expired = expire_overdue(store, t, now)
    usage = load_usage(t)
    if usage.is_empty():
        return dg.MaterializeResult(metadata={"status": "no eligible usage yet", "expired": expired})
    held = held_commitments(store, t, now)
    g = tenant.guardrails
    rec = _analyzer(t)(usage, existing_commitments=[(c.hourly, c.end) for c in held], term_years=g.term_years,
                       payment_option=g.payment_option, max_hourly_commitment=g.max_hourly_commitment)
    if rec.hourly_commitment < MIN_COMMITMENT:
        return dg.MaterializeResult(metadata={"status": "no purchase recommended", "rationale": rec.rationale,
                                              "existing_hourly_commitment": sum(c.hourly for c in held),
                                              "expired": expired})
    proposal = publish_proposal(store, build_proposal(tenant, usage, rec, held, now))
    context.log.info(f"proposal {proposal.proposal_id} awaits approval: {approve_command(proposal.proposal_id)}")
    context.log_event(status_view(store, proposal))
    return dg.MaterializeResult(metadata={
        **status_metadata(store, proposal),
        "existing_hourly_commitment_usd_per_hour": dg.MetadataValue.float(proposal.existing_hourly_commitment),
        "expected_savings_pct_of_eligible_on_demand": dg.MetadataValue.float(
            float(getattr(rec, "expected_savings_pct", 0.0))),
        "rationale": dg.MetadataValue.md(proposal.rationale or "-"),
        "expires_at": proposal.expires_at.isoformat(),
        "data_fingerprint": proposal.data_fingerprint,
        "expired": expired,
    })


def _sp_approvals(context: dg.AssetExecutionContext, config: ApprovalConfig) -> dg.MaterializeResult:
    from blocks_pipelines.savings_plans.approval_run import record_approval

    # The run records the decision itself and fails unless it is the decision on record: a green run means the
    # proposal is decided. The sensor reading this event finds it decided and only launches the purchase.
    return record_approval(context, tenant_of(context).id, get_state_store(), config.proposal_id, config.decision,
                           config.approver, config.note, config.confirm_hourly_commitment)


def _sp_purchases(context: dg.AssetExecutionContext, config: PurchaseConfig) -> dg.MaterializeResult:
    from blocks_pipelines.savings_plans.approval_view import status_events
    from blocks_pipelines.savings_plans.inputs import held_commitments, load_usage
    from blocks_pipelines.savings_plans.purchase import execute_purchase

    tenant = tenant_of(context)
    t = tenant.id
    store, now = get_state_store(), utcnow()
    ids = [config.proposal_id] if config.proposal_id else [
        p.proposal_id for p in store.list_proposals(t, [ProposalStatus.approved])]
    usage, held = load_usage(t), held_commitments(store, t, now)
    purchaser = purchaser_for(tenant, store)
    results = {}
    for pid in ids:
        r = execute_purchase(store, tenant, pid, purchaser, usage, held, now)
        context.log.info(f"{pid}: {r.outcome}: {r.message}")
        results[pid] = {"outcome": r.outcome, "status": r.proposal.status.value, "message": r.message,
                        "savings_plan_id": r.savings_plan_id}
        for event in status_events(store, r.proposal):
            context.log_event(event)
    return dg.MaterializeResult(metadata={"purchases": dg.MetadataValue.json(results),
                                          "purchaser": purchaser.name, "proposals": len(ids)})


def _sp_monitoring(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    from blocks_pipelines.savings_plans.approval_view import status_events
    from blocks_pipelines.savings_plans.inputs import read_mart
    from blocks_pipelines.savings_plans.monitoring import monitor

    t = tenant_of(context).id
    store = get_state_store()
    for p in store.list_proposals(t, [ProposalStatus.purchased]):
        try:
            moved = store.transition_proposal(p.proposal_id, ProposalStatus.monitoring, "sp_monitoring")
            for event in status_events(store, moved):
                context.log_event(event)
        except IllegalTransitionError:
            pass
    bought = [(store.get_purchase(p.proposal_id), p) for p in store.list_proposals(t, [ProposalStatus.monitoring])]
    bought = [(b, p) for b, p in bought if b is not None and b.state is PurchaseState.completed]
    if not bought:
        note = "nothing purchased yet"
        return dg.MaterializeResult(metadata={"status": note}, check_results=[
            dg.AssetCheckResult(check_name=n, passed=True, metadata={"reason": note})
            for n in ("utilization_within_band", "coverage_not_dipping")])
    purchase, proposal = max(bought, key=lambda bp: bp[0].details.get("start", ""))
    start = purchase.details.get("start")
    since = datetime.fromisoformat(start) if start else purchase.completed_at
    position = read_mart(POSITION_MART, t)
    if position is None:
        raise dg.Failure(f"the {POSITION_MART} mart for {t} is missing: build the dbt models first")
    report = monitor(position, since, proposal.expected)
    (u_ok, u_reason), (c_ok, c_reason) = report.utilization_ok, report.coverage_ok
    return dg.MaterializeResult(
        metadata={"proposal_id": proposal.proposal_id, "since": since.isoformat(),
                  "hours_after": report.hours_after,
                  "coverage_before": report.coverage_before, "coverage_after": report.coverage_after,
                  "utilization_after": report.utilization_after,
                  "utilization_p10": report.utilization_band.p10 if report.utilization_band else None},
        check_results=[
            dg.AssetCheckResult(check_name="utilization_within_band", passed=u_ok, metadata={"reason": u_reason},
                                severity=dg.AssetCheckSeverity.ERROR),
            dg.AssetCheckResult(check_name="coverage_not_dipping", passed=c_ok, metadata={"reason": c_reason},
                                severity=dg.AssetCheckSeverity.WARN),
        ])


@lru_cache(maxsize=1)
def _templates() -> tuple[dg.AssetsDefinition, ...]:
    """The four assets, decorated once under the template tenant; build_sp_defs copies them per tenant."""
    eligible_key, position_key = template_key("sp_eligible_usage_hourly"), template_key(POSITION_MART)
    proposals_key, approvals_key = template_key("sp_proposals"), template_key("sp_approvals")
    purchases_key, monitoring_key = template_key("sp_purchases"), template_key("sp_monitoring")
    proposals = dg.asset(
        key=proposals_key, deps=[eligible_key, position_key], kinds={"python"},
        description="Analyzer run on the eligible-usage mart; a proposal awaiting back-office approval.",
    )(_sp_proposals)
    approvals = dg.asset(
        key=approvals_key, deps=[proposals_key], kinds={"python"},
        description="Back-office decisions. Materialize from the launchpad with the config shown on sp_proposals "
                    "(proposal_id, decision approve|reject, approver, confirm_hourly_commitment, note), or report "
                    "a runless event with that metadata. The run fails unless the decision is recorded.",
    )(_sp_approvals)
    purchases = dg.asset(
        key=purchases_key, deps=[approvals_key], kinds={"python"}, retry_policy=dg.RetryPolicy(max_retries=2, delay=30),
        description="Guardrails, then one purchase per approved proposal (AWS in production, ledger locally).",
    )(_sp_purchases)
    monitoring = dg.asset(
        key=monitoring_key, deps=[purchases_key, position_key], kinds={"python"},
        check_specs=[dg.AssetCheckSpec("utilization_within_band", asset=monitoring_key,
                                       description="utilization since the purchase >= the analysis' P10"),
                     dg.AssetCheckSpec("coverage_not_dipping", asset=monitoring_key,
                                       description="coverage since the purchase >= the week before and P10")],
        description="Coverage and utilization after the latest purchase against the expected bands.",
    )(_sp_monitoring)
    return proposals, approvals, purchases, monitoring


def _approval_sensor(t: str) -> dg.SensorDefinition:
    approvals_key = dg.AssetKey([t, "sp_approvals"])
    purchases_key, monitoring_key = dg.AssetKey([t, "sp_purchases"]), dg.AssetKey([t, "sp_monitoring"])
    tags = {"blocks/tenant": t}

    @dg.sensor(name=f"{t}__sp_approval_sensor", asset_selection=[purchases_key, monitoring_key],
               minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Records back-office decisions from sp_approvals events; launches each approved purchase "
                           "once (run_key = proposal id).")
    def sp_approval_sensor(context: dg.SensorEvaluationContext):
        from blocks_pipelines.savings_plans.approval_view import status_changes
        from blocks_pipelines.savings_plans.proposals import decide

        store = get_state_store()
        cursor = json.loads(context.cursor) if context.cursor else {}
        for storage_id, metadata in approval_events(context.instance, approvals_key, cursor):
            pid = _value(metadata, "proposal_id")
            try:
                outcome = decide(store, pid, _value(metadata, "decision", "approve"),  # type: ignore[arg-type]
                                 _value(metadata, "approver"), _value(metadata, "note"),
                                 source=f"dagster:{storage_id}")
                context.log.info(f"{pid}: {outcome.message}")
            except (ValueError, NotFoundError) as exc:  # a bad event must not stop the others
                context.log.warning(f"approval event {storage_id} ignored: {exc}")
        requests: list[dg.RunRequest] = []
        for p in store.list_proposals(t, [ProposalStatus.approved]):
            bought = store.get_purchase(p.proposal_id)
            if bought is None or bought.state is not PurchaseState.completed:
                requests.append(dg.RunRequest(
                    run_key=p.proposal_id, asset_selection=[purchases_key, monitoring_key],
                    run_config={"ops": {f"{t}__sp_purchases": {"config": {"proposal_id": p.proposal_id}}}},
                    tags={**tags, "blocks/proposal_id": p.proposal_id}))
        # decisions made outside a run (CLI, runless events) and expiries show on sp_proposals too
        changes = status_changes(store, context.instance, t)
        return dg.SensorResult(run_requests=requests, asset_events=changes, cursor=json.dumps(cursor),
                               skip_reason=None if requests else "no approved proposal waiting for its purchase")

    return sp_approval_sensor


def build_sp_defs(tenant: TenantConfig, *, analyze: Callable[..., Any] | None = None) -> dg.Definitions:
    """The tenant's copies of the four templates ([t, name], group t, op `{t}__{name}`) and its approval sensor.
    `analyze` defaults to savings_plans.analyzer.recommend (imported when a proposal is computed)."""
    bind(tenant)
    if analyze is None:
        _ANALYZERS.pop(tenant.id, None)
    else:
        _ANALYZERS[tenant.id] = analyze
    from blocks_pipelines.savings_plans.approval_view import status_view_spec

    # its own AssetsDefinition: bare specs of all tenants would be merged into one definition
    status_view = dg.AssetsDefinition(specs=[status_view_spec(tenant.id)])
    return dg.Definitions(assets=[*(copy_for_tenant(a, tenant) for a in _templates()), status_view],
                          sensors=[_approval_sensor(tenant.id)])
