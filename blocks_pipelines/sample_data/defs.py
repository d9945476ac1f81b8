"""Dagster: the hourly delivery clock of a sample tenant (cur_source a local folder), playing AWS's part.

AWS re-delivers a report's current month up to three times a day; sample CUR has no one to do that, so a plan
bought locally (it starts at the purchase hour) would never reach the lake: the purchase's own re-delivery ends at
the hour before. `{t}__sample_cur_delivery_schedule` (cron 5 * * * *, UTC) launches `{t}__sample_cur_delivery`,
which re-delivers the open month through the last complete hour with the ledger's plans in it, unless the newest
delivery already carries that hour. The code location's `cur_delivery_sensor` then ingests it and the marts follow.

An op job, not an asset: the generator stands in for an external system, it is not part of the platform's data.
Tenants reading S3 get nothing here. The generator (polars) is imported when a tick or a run needs it (issue #2).
"""

# no `from __future__ import annotations`: Dagster reads the config class from the real annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache

import dagster as dg

from blocks_pipelines.resources import STATE_STORE, platform_resources
from blocks_pipelines.tenants.config import TenantConfig

CRON = "5 * * * *"  # a few minutes after each hour ends, as AWS delivers some time after the hours it bills
OP = "deliver_sample_cur"
TENANT_RESOURCE = "sample_cur_tenant"


class DeliveryConfig(dg.Config):
    end: str = ""  # ISO time usage stops at (the schedule passes its tick's hour); empty: now


def _deliver_sample_cur(context: dg.OpExecutionContext, config: DeliveryConfig) -> dg.Output:
    from blocks_pipelines.sample_data.redelivery import clock_delivery, last_complete_hour

    tenant: TenantConfig = getattr(context.resources, TENANT_RESOURCE)
    now = datetime.fromisoformat(config.end) if config.end else datetime.now(timezone.utc)
    now = now if now.tzinfo else now.replace(tzinfo=timezone.utc)  # a time typed in the launchpad is UTC
    plans = getattr(context.resources, STATE_STORE).store().list_ledger_plans(tenant.id)
    summary, pruned = clock_delivery(tenant, plans, now)
    [month] = summary.months
    context.log.info(
        f"{tenant.id} {month.billing_period}: delivery {month.delivery_id} through the hour of "
        f"{last_complete_hour(now):%Y-%m-%d %H}:00 UTC with {len(plans)} ledger plan(s); "
        f"{len(pruned)} older one(s) removed"
    )
    return dg.Output(
        None,
        metadata={
            "billing_period": month.billing_period,
            "delivery_id": month.delivery_id,
            "rows": month.rows,
            "files": dg.MetadataValue.json(month.files),
            "ledger_plans": len(plans),
            "removed_deliveries": dg.MetadataValue.json(pruned),
        },
    )


@lru_cache(maxsize=1)
def _graph() -> dg.GraphDefinition:
    """The op decorated once and shared by every tenant's job (issue #2); each job binds its tenant as a resource."""
    op = dg.op(
        name=OP,
        out=dg.Out(dg.Nothing),
        required_resource_keys={TENANT_RESOURCE, STATE_STORE},
        description="Re-deliver the tenant's open month of sample CUR through the last complete hour, "
        "with the local ledger's Savings Plans in it.",
    )(_deliver_sample_cur)
    return dg.GraphDefinition(name="sample_cur_delivery", node_defs=[op])


def clock_tick(tenant: TenantConfig, now: datetime) -> dg.RunRequest | dg.SkipReason:
    """Deliver when a new hour has completed since the newest delivery; never before `blocks demo` wrote the
    tenant's history (that command skips a source that already holds files)."""
    from blocks_pipelines.sample_data.redelivery import (
        delivered_through,
        has_sample_cur,
        last_complete_hour,
        open_period,
    )

    if not has_sample_cur(tenant):
        return dg.SkipReason(f"no sample CUR for {tenant.id} yet: `blocks demo` generates its history first")
    hour = last_complete_hour(now)
    through = delivered_through(tenant, open_period(now))
    if through is not None and through >= hour:
        return dg.SkipReason(f"the newest delivery already carries {hour:%Y-%m-%d %H}:00 UTC")
    return dg.RunRequest(
        run_key=f"{hour:%Y-%m-%dT%H}",
        run_config={"ops": {OP: {"config": {"end": (hour + timedelta(hours=1)).isoformat()}}}},
        tags={"blocks/tenant": tenant.id},
    )


def build_sample_data_defs(tenant: TenantConfig) -> dg.Definitions:
    if tenant.cur_source.is_s3:
        return dg.Definitions()
    job = _graph().to_job(
        name=f"{tenant.id}__sample_cur_delivery",
        tags={"blocks/tenant": tenant.id},
        resource_defs={
            TENANT_RESOURCE: dg.ResourceDefinition.hardcoded_resource(tenant),
            STATE_STORE: platform_resources()[STATE_STORE],
        },
        description=f"{tenant.name}: a new delivery of the open month of sample CUR (what AWS does for real sources).",
    )
    schedule = dg.ScheduleDefinition(
        name=f"{tenant.id}__sample_cur_delivery_schedule",
        cron_schedule=CRON,
        execution_timezone="UTC",
        job=job,
        execution_fn=lambda context: clock_tick(tenant, context.scheduled_execution_time or datetime.now(timezone.utc)),
        default_status=dg.DefaultScheduleStatus.RUNNING,  # so the demo shows coverage rising without anyone acting
        description=f"Hourly: re-deliver {tenant.id}'s sample CUR once a new hour has completed.",
    )
    return dg.Definitions(jobs=[job], schedules=[schedule])
