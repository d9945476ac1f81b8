"""Per-tenant Dagster definitions for the Savings Plans workflow:

    sp_eligible_usage_hourly -> sp_proposals -> sp_approvals -> sp_purchases -> sp_monitoring (+ 2 asset checks)

Dagster has no approval step, so the back office records its decision as an event on `sp_approvals`: a
materialization from the launchpad (run config; the run records the decision and fails unless it is recorded, see
approval/run.py) or a runless event (report_runless_asset_event / REST) carrying proposal_id, decision, approver,
note. `sp_approval_sensor` (one per code location) reads those events, records the decision in the state store
(first one wins) and launches `sp_purchases` with run_key = proposal id. The store, not Dagster, is what makes the
purchase happen once; run_key only saves launching runs that would find nothing to do. Each status change is also
observed on `sp_proposals` (approval/view.py), so its page shows the proposal's live status, not the one it was
made with.
"""

# no `from __future__ import annotations`: Dagster reads the config classes from the real annotations

import json
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

import dagster as dg

from blocks_pipelines.resources import PurchaserResource, StateStoreResource, platform_resources
from blocks_pipelines.sensor_intervals import every
from blocks_pipelines.state import NotFoundError, ProposalStatus, PurchaseState
from blocks_pipelines.state.records import IllegalTransitionError, tenant_of_proposal, utcnow
from blocks_pipelines.tenants.config import TenantConfig
from blocks_pipelines.tenants.templates import copy_for_tenant, template_key, tenant_of

# The analyzer, the lake readers and the purchasers (polars, boto3) are imported by the asset bodies that use them:
# building the definitions of 200 tenants needs none of them (issue #2).

MIN_COMMITMENT = 0.001  # AWS's smallest hourly commitment
POSITION_MART = "sp_position_hourly"  # blocks_pipelines.savings_plans.inputs.POSITION_MART, without importing polars

# The analyzer each tenant's sp_proposals uses (build_sp_defs(analyze=...)); a tenant not here uses `recommend`.
_ANALYZERS: dict[str, Callable[..., Any]] = {}


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


def approval_events(
    instance: dg.DagsterInstance, tenant_ids: Collection[str], cursor: dict[str, int]
) -> list[tuple[int, dict]]:
    """New decision events on the tenants' sp_approvals after the cursor, materializations and runless observations
    alike, in order; the cursor moves past every event read."""
    from blocks_pipelines.tenants.event_feed import asset_events_after

    found = []
    for kind, event_type in (
        ("mat", dg.DagsterEventType.ASSET_MATERIALIZATION),
        ("obs", dg.DagsterEventType.ASSET_OBSERVATION),
    ):
        events, last = asset_events_after(instance, event_type, cursor.get(kind), ("sp_approvals",), tenant_ids)
        found += [(e.storage_id, e.metadata) for e in events]
        if last is not None:
            cursor[kind] = last
    return sorted(found, key=lambda e: e[0])


def _analyzer(tenant_id: str) -> Callable[..., Any]:
    analyze = _ANALYZERS.get(tenant_id)
    if analyze is None:
        from blocks_pipelines.savings_plans.analysis.analyzer import recommend as analyze
    return analyze


def _sp_proposals(context: dg.AssetExecutionContext, state_store: StateStoreResource) -> dg.MaterializeResult:
    from blocks_pipelines.savings_plans.analysis.rate_quotes import tenant_rate_quote
    from blocks_pipelines.savings_plans.approval.packet import packet_for
    from blocks_pipelines.savings_plans.approval.view import approve_command, status_metadata, status_view
    from blocks_pipelines.savings_plans.inputs import held_commitments, load_usage
    from blocks_pipelines.savings_plans.lifecycle.renewal import lifecycle_step
    from blocks_pipelines.savings_plans.proposals import build_proposal, expire_overdue, publish_proposal

    tenant = tenant_of(context)
    t = tenant.id
    store, now = state_store.store(), utcnow()
    expired = expire_overdue(store, t, now)
    usage = load_usage(t)
    if usage.is_empty():
        return dg.MaterializeResult(metadata={"status": "no eligible usage yet", "expired": expired})
    held = held_commitments(store, t, now)
    g = tenant.guardrails
    rates = tenant_rate_quote(t, usage, g.term_years, g.payment_option, now)
    context.log.info(f"rates: {rates.note}")
    pricing = {"offering_ratio": rates.ratio if rates.source == "offering_rates" else None, "rate_source": rates.note}
    # renewals first (queued to start as plans end), so the ladder counts them as held from then
    existing, lifecycle = lifecycle_step(store, tenant, usage, held, now, _analyzer(t), **pricing)
    rec = _analyzer(t)(
        usage,
        existing_commitments=existing,
        term_years=g.term_years,
        payment_option=g.payment_option,
        max_hourly_commitment=g.max_hourly_commitment,
        **pricing,
    )
    renewal_packets = [
        packet_for(store, t, store.get_proposal(r), now, g.max_hourly_commitment)
        for r in lifecycle["renewal_proposals"]
    ]
    lifecycle = {
        "expiring_plans": dg.MetadataValue.json(lifecycle["expiring_plans"]),
        "renewal_proposals": lifecycle["renewal_proposals"],
    }
    if renewal_packets:
        lifecycle["renewal_packets"] = dg.MetadataValue.md("\n\n---\n\n".join(renewal_packets))
    if rec.hourly_commitment < MIN_COMMITMENT:
        return dg.MaterializeResult(
            metadata={
                "status": "no purchase recommended",
                "rationale": rec.rationale,
                "existing_hourly_commitment": sum(c.hourly for c in held),
                "expired": expired,
                **lifecycle,
            }
        )
    proposal = publish_proposal(store, build_proposal(tenant, usage, rec, held, now))
    context.log.info(f"proposal {proposal.proposal_id} awaits approval: {approve_command(proposal.proposal_id)}")
    context.log_event(status_view(store, proposal))
    return dg.MaterializeResult(
        metadata={
            **status_metadata(store, proposal),
            "existing_hourly_commitment_usd_per_hour": dg.MetadataValue.float(proposal.existing_hourly_commitment),
            "expected_savings_pct_of_eligible_on_demand": dg.MetadataValue.float(
                float(getattr(rec, "expected_savings_pct", 0.0))
            ),
            "rationale": dg.MetadataValue.md(proposal.rationale or "-"),
            "expires_at": proposal.expires_at.isoformat(),
            "data_fingerprint": proposal.data_fingerprint,
            "rate_source": rates.note,
            "expired": expired,
            **lifecycle,
            "approval_packet": dg.MetadataValue.md(packet_for(store, t, proposal, now, g.max_hourly_commitment)),
        }
    )


def _sp_approvals(
    context: dg.AssetExecutionContext, config: ApprovalConfig, state_store: StateStoreResource
) -> dg.MaterializeResult:
    from blocks_pipelines.savings_plans.approval.run import record_approval

    # The run records the decision itself and fails unless it is the decision on record: a green run means the
    # proposal is decided. The sensor reading this event finds it decided and only launches the purchase.
    return record_approval(
        context,
        tenant_of(context).id,
        state_store.store(),
        config.proposal_id,
        config.decision,
        config.approver,
        config.note,
        config.confirm_hourly_commitment,
    )


def _sp_purchases(
    context: dg.AssetExecutionContext,
    config: PurchaseConfig,
    state_store: StateStoreResource,
    purchaser: PurchaserResource,
) -> dg.MaterializeResult:
    from blocks_pipelines.savings_plans.approval.view import status_events
    from blocks_pipelines.savings_plans.inputs import held_commitments, load_usage
    from blocks_pipelines.savings_plans.purchase.execute import execute_purchase

    tenant = tenant_of(context)
    t = tenant.id
    store, now = state_store.store(), utcnow()
    ids = (
        [config.proposal_id]
        if config.proposal_id
        else [p.proposal_id for p in store.list_proposals(t, [ProposalStatus.approved])]
    )
    usage, held = load_usage(t), held_commitments(store, t, now)
    buyer = purchaser.for_tenant(tenant, store)
    results = {}
    for pid in ids:
        r = execute_purchase(store, tenant, pid, buyer, usage, held, now)
        context.log.info(f"{pid}: {r.outcome}: {r.message}")
        results[pid] = {
            "outcome": r.outcome,
            "status": r.proposal.status.value,
            "message": r.message,
            "savings_plan_id": r.savings_plan_id,
        }
        for event in status_events(store, r.proposal):
            context.log_event(event)
    return dg.MaterializeResult(
        metadata={"purchases": dg.MetadataValue.json(results), "purchaser": buyer.name, "proposals": len(ids)}
    )


def _sp_monitoring(context: dg.AssetExecutionContext, state_store: StateStoreResource) -> dg.MaterializeResult:
    from blocks_pipelines.savings_plans.approval.view import status_events
    from blocks_pipelines.savings_plans.inputs import read_mart
    from blocks_pipelines.savings_plans.lifecycle.monitoring import monitor
    from blocks_pipelines.savings_plans.lifecycle.rollback import propose_returns, undone_plans

    t = tenant_of(context).id
    store = state_store.store()
    for p in store.list_proposals(t, [ProposalStatus.purchased]):
        try:
            moved = store.transition_proposal(p.proposal_id, ProposalStatus.monitoring, "sp_monitoring")
            for event in status_events(store, moved):
                context.log_event(event)
        except IllegalTransitionError:
            pass
    bought = [(store.get_purchase(p.proposal_id), p) for p in store.list_proposals(t, [ProposalStatus.monitoring])]
    undone = undone_plans(store, t)  # a returned or cancelled plan has nothing left to watch
    bought = [
        (b, p)
        for b, p in bought
        if b is not None and b.state is PurchaseState.completed and b.savings_plan_id not in undone
    ]
    if not bought:
        note = "nothing purchased yet"
        return dg.MaterializeResult(
            metadata={"status": note},
            check_results=[
                dg.AssetCheckResult(check_name=n, passed=True, metadata={"reason": note})
                for n in ("utilization_within_band", "coverage_not_dipping")
            ],
        )
    purchase, proposal = max(bought, key=lambda bp: bp[0].details.get("start", ""))
    start = purchase.details.get("start")
    since = datetime.fromisoformat(start) if start else purchase.completed_at
    position = read_mart(POSITION_MART, t)
    if position is None:
        raise dg.Failure(f"the {POSITION_MART} mart for {t} is missing: build the dbt models first")
    report = monitor(position, since, proposal.expected)
    (u_ok, u_reason), (c_ok, c_reason) = report.utilization_ok, report.coverage_ok
    returns = propose_returns(store, tenant_of(context), position)  # oversized plans still inside AWS's window
    for r in returns:
        context.log.warning(f"return proposed: {r.proposal_id}: {r.rationale}")
    return dg.MaterializeResult(
        metadata={
            "proposal_id": proposal.proposal_id,
            "since": since.isoformat(),
            "return_proposals": [r.proposal_id for r in returns],
            "hours_after": report.hours_after,
            "coverage_before": report.coverage_before,
            "coverage_after": report.coverage_after,
            "utilization_after": report.utilization_after,
            "utilization_p10": report.utilization_band.p10 if report.utilization_band else None,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="utilization_within_band",
                passed=u_ok,
                metadata={"reason": u_reason},
                severity=dg.AssetCheckSeverity.ERROR,
            ),
            dg.AssetCheckResult(
                check_name="coverage_not_dipping",
                passed=c_ok,
                metadata={"reason": c_reason},
                severity=dg.AssetCheckSeverity.WARN,
            ),
        ],
    )


@lru_cache(maxsize=1)
def _templates() -> tuple[dg.AssetsDefinition, ...]:
    """The four assets, decorated once under the template tenant; build_sp_defs copies them per tenant."""
    eligible_key, position_key = template_key("sp_eligible_usage_hourly"), template_key(POSITION_MART)
    proposals_key, approvals_key = template_key("sp_proposals"), template_key("sp_approvals")
    purchases_key, monitoring_key = template_key("sp_purchases"), template_key("sp_monitoring")
    proposals = dg.asset(
        key=proposals_key,
        deps=[eligible_key, position_key],
        kinds={"python"},
        description="Analyzer run on the eligible-usage mart; a proposal awaiting back-office approval.",
    )(_sp_proposals)
    approvals = dg.asset(
        key=approvals_key,
        deps=[proposals_key],
        kinds={"python"},
        description="Back-office decisions. Materialize from the launchpad with the config shown on sp_proposals "
        "(proposal_id, decision approve|reject, approver, confirm_hourly_commitment, note), or report "
        "a runless event with that metadata. The run fails unless the decision is recorded.",
    )(_sp_approvals)
    purchases = dg.asset(
        key=purchases_key,
        deps=[approvals_key],
        kinds={"python"},
        retry_policy=dg.RetryPolicy(max_retries=2, delay=30),
        description="Guardrails, then one purchase per approved proposal (AWS in production, ledger locally).",
    )(_sp_purchases)
    monitoring = dg.asset(
        key=monitoring_key,
        deps=[purchases_key, position_key],
        kinds={"python"},
        check_specs=[
            dg.AssetCheckSpec(
                "utilization_within_band",
                asset=monitoring_key,
                description="utilization since the purchase >= the analysis' P10",
            ),
            dg.AssetCheckSpec(
                "coverage_not_dipping",
                asset=monitoring_key,
                description="coverage since the purchase >= the week before and P10",
            ),
        ],
        description="Coverage and utilization after the latest purchase against the expected bands.",
    )(_sp_monitoring)
    return proposals, approvals, purchases, monitoring


def _purchase_request(t: str, proposal_id: str) -> dg.RunRequest:
    purchases_key, monitoring_key = dg.AssetKey([t, "sp_purchases"]), dg.AssetKey([t, "sp_monitoring"])
    return dg.RunRequest(
        run_key=proposal_id,
        asset_selection=[purchases_key, monitoring_key],
        run_config={"ops": {f"{t}__sp_purchases": {"config": {"proposal_id": proposal_id}}}},
        tags={"blocks/tenant": t, "blocks/proposal_id": proposal_id},
    )


APPROVAL_INTERVAL_SECONDS = 30
# Decisions recorded without a Dagster event (`blocks sp approve`), failed purchases and expiries are found by
# sweeping the store: each tick reads a slice of the location's tenants, sized so a whole round takes
# SWEEP_ROUND_TICKS ticks (5 min) and a tick at most SWEEP_MAX_TENANTS tenants. Sweeping all 200 tenants of a shard
# every tick took 4.3 s a tick and most of the daemon's CPU at 2,000 tenants (benchmarks/bench_daemon.py).
SWEEP_ROUND_TICKS = 10
SWEEP_MAX_TENANTS = 250


def sweep_size(tenant_count: int) -> int:
    return max(1, min(SWEEP_MAX_TENANTS, -(-tenant_count // SWEEP_ROUND_TICKS)))


def approval_sensor(tenant_ids: Sequence[str], sweep: int | None = None) -> dg.SensorDefinition:
    """One sensor for every tenant of the code location (issue #16): the decision events of all their sp_approvals
    are read after the cursor in one query per event kind (tenants/event_feed.py)."""
    from blocks_pipelines.tenants.rotation import next_slice

    ids = frozenset(tenant_ids)
    per_tick = sweep or sweep_size(len(ids))
    selection = [dg.AssetKey([t, name]) for t in sorted(ids) for name in ("sp_purchases", "sp_monitoring")]

    @dg.sensor(
        name="sp_approval_sensor",
        asset_selection=selection,
        minimum_interval_seconds=every(APPROVAL_INTERVAL_SECONDS),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Records back-office decisions from each tenant's sp_approvals events; launches each "
        "approved purchase once (run_key = proposal id).",
    )
    def sp_approval_sensor(context: dg.SensorEvaluationContext, state_store: StateStoreResource):
        from blocks_pipelines.savings_plans.approval.view import status_changes
        from blocks_pipelines.savings_plans.proposals import decide

        store = state_store.store()
        cursor = json.loads(context.cursor) if context.cursor else {}
        decided: set[str] = set()
        for storage_id, metadata in approval_events(context.instance, ids, cursor):
            pid = _value(metadata, "proposal_id")
            try:
                outcome = decide(
                    store,
                    pid,
                    _value(metadata, "decision", "approve"),  # type: ignore[arg-type]
                    _value(metadata, "approver"),
                    _value(metadata, "note"),
                    source=f"dagster:{storage_id}",
                )
                context.log.info(f"{pid}: {outcome.message}")
                decided.add(tenant_of_proposal(pid))
            except (ValueError, NotFoundError) as exc:  # a bad event must not stop the others
                context.log.warning(f"approval event {storage_id} ignored: {exc}")
        # decisions also arrive without a Dagster event (`blocks sp approve`), and a purchase run may have failed:
        # the store is swept, for the tenants just decided and the next slice of the others in turn
        turn, cursor["sweep_after"] = next_slice(sorted(ids), cursor.get("sweep_after"), per_tick)
        context.update_cursor(json.dumps(cursor))
        requests, observations = [], []
        for t in sorted(decided & ids | set(turn)):
            proposals = store.list_proposals(t)
            for p in proposals:
                if p.status is not ProposalStatus.approved:
                    continue
                bought = store.get_purchase(p.proposal_id)
                if bought is None or bought.state is not PurchaseState.completed:
                    requests.append(_purchase_request(t, p.proposal_id))
            # decisions made outside a run (CLI, runless events) and expiries show on sp_proposals too
            observations += status_changes(store, context.instance, t, proposals)
        return dg.SensorResult(
            run_requests=requests,
            asset_events=observations,
            skip_reason=None if requests or observations else "no approved proposal waiting for its purchase",
        )

    return sp_approval_sensor


def build_sp_location_defs(tenants: Sequence[TenantConfig]) -> dg.Definitions:
    """What the code location adds once for all its tenants: the approval sensor."""
    return dg.Definitions(sensors=[approval_sensor([t.id for t in tenants])], resources=platform_resources())


def build_sp_defs(tenant: TenantConfig, *, analyze: Callable[..., Any] | None = None) -> dg.Definitions:
    """The tenant's copies of the four templates ([t, name], group t, op `{t}__{name}`); the approval sensor is the
    code location's (build_sp_location_defs).
    `analyze` defaults to savings_plans.analysis.analyzer.recommend (imported when a proposal is computed)."""
    if analyze is None:
        _ANALYZERS.pop(tenant.id, None)
    else:
        _ANALYZERS[tenant.id] = analyze
    from blocks_pipelines.savings_plans.approval.view import status_view_spec

    # its own AssetsDefinition: bare specs of all tenants would be merged into one definition
    status_view = dg.AssetsDefinition(specs=[status_view_spec(tenant.id)])
    return dg.Definitions(
        assets=[*(copy_for_tenant(a, tenant) for a in _templates()), status_view], resources=platform_resources()
    )
