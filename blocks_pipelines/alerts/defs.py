"""Per-tenant Dagster asset `spend_anomalies` (after the spend and position marts) with two asset checks:

- `no_open_spend_anomalies` (WARN): spend spikes, new services, coverage or utilization dips raised this week;
- `cur_data_on_time` (ERROR): the CUR data is not late or missing.

The asset stores the alerts and sends the notifications; a channel that fails shows in the metadata (and on the
alert's notification record), and never fails the run. The models refresh sensor runs it after every rebuild of the
marts (it is downstream of cur_line_items).
"""

# no `from __future__ import annotations`: Dagster reads the context annotation at definition time

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import dagster as dg

from blocks_pipelines.resources import StateStoreResource, platform_resources
from blocks_pipelines.state.alert_models import AlertKind, AlertStatus
from blocks_pipelines.tenants.config import TenantConfig
from blocks_pipelines.tenants.templates import copy_for_tenant, template_key, tenant_of

ASSET = "spend_anomalies"
SPEND_KINDS = (AlertKind.spend_spike, AlertKind.new_service, AlertKind.coverage_dip, AlertKind.utilization_dip)


NOTIFY_WITHIN = timedelta(days=8)  # an open alert older than this was sent (or given up on) long ago


def notifiable(alerts, today: date | None = None) -> list:
    """Open alerts still recent: the set each tick offers to the channels stays bounded however many alerts a
    tenant has left open over the years (each offer costs a conditional write per channel)."""
    today = today or datetime.now(timezone.utc).date()
    return [a for a in alerts if a.last_seen >= today - NOTIFY_WITHIN]


def _table(detections) -> str:
    if not detections:
        return "none"
    lines = ["| kind | severity | first seen | what | impact $ |", "|---|---|---|---|---:|"]
    for d in sorted(detections, key=lambda d: -d.impact_usd)[:15]:
        what = " / ".join(v for v in d.dimensions.values() if v)
        lines.append(f"| {d.kind.value} | {d.severity.value} | {d.first_seen} | {what} | {d.impact_usd:,.2f} |")
    return "\n".join(lines)


def _spend_anomalies(context: dg.AssetExecutionContext, state_store: StateStoreResource) -> dg.MaterializeResult:
    from blocks_pipelines.alerts.evaluate import evaluate_tenant
    from blocks_pipelines.alerts.notify import deliver, notifier_for
    from blocks_pipelines.settings import get_settings

    tenant = tenant_of(context)
    store = state_store.store()
    evaluation = evaluate_tenant(tenant, store)
    notifiers = [notifier_for(c, tenant.id, get_settings().home) for c in tenant.alerts.channels]
    report = deliver(store, tenant.id, notifiable(store.list_alerts(tenant.id, [AlertStatus.open])), notifiers)
    for alert_id, channel, error in report.failed:
        context.log.warning(f"alert {alert_id} not delivered on {channel}: {error}")
    spend = evaluation.open_of(*SPEND_KINDS)
    late = evaluation.open_of(AlertKind.late_data)
    through = evaluation.data_through.isoformat() if evaluation.data_through else None
    return dg.MaterializeResult(
        metadata={
            "as_of": str(evaluation.as_of),
            "data_through": through,
            "anomalies_in_history": len(evaluation.history),
            "open_this_week": len(spend),
            "raised": len(evaluation.raised),
            "resolved": len(evaluation.resolved),
            "impact_usd_this_week": dg.MetadataValue.float(round(float(sum(d.impact_usd for d in spend)), 2)),
            "this_week": dg.MetadataValue.md(_table(spend)),
            "mart": evaluation.mart_uri,
            **report.as_metadata(),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name="no_open_spend_anomalies",
                passed=not spend,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    "anomalies": len(spend),
                    "impact_usd": round(sum(d.impact_usd for d in spend), 2),
                    "top": dg.MetadataValue.md(_table(spend[:5])),
                },
            ),
            dg.AssetCheckResult(
                check_name="cur_data_on_time",
                passed=not late,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"data_through": through, "reason": late[0].message if late else "on time"},
            ),
        ],
    )


@lru_cache(maxsize=1)
def _template() -> dg.AssetsDefinition:
    key = template_key(ASSET)
    return dg.asset(
        key=key,
        deps=[template_key("spend_hourly"), template_key("sp_position_hourly")],
        kinds={"python"},
        check_specs=[
            dg.AssetCheckSpec(
                "no_open_spend_anomalies",
                asset=key,
                description="no spend spike, new service or coverage/utilization dip this week",
            ),
            dg.AssetCheckSpec("cur_data_on_time", asset=key, description="CUR data at most 36 h behind"),
        ],
        description="Daily spend per service, account and region against a weekday-aware robust baseline; new "
        "services; Savings Plans dips; late CUR data. Alerts stored once and sent to the tenant's "
        "channels (docs/anomalies.md).",
    )(_spend_anomalies)


def build_alert_defs(tenant: TenantConfig) -> dg.Definitions:
    return dg.Definitions(assets=[copy_for_tenant(_template(), tenant)], resources=platform_resources())
