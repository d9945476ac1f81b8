"""The hourly delivery clock of sample tenants: when a tick delivers, what a delivery carries after a local
purchase (SavingsPlanCoveredUsage from the plan's start hour), which older deliveries it removes, and that S3 tenants
have none."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from blocks_pipelines.sample_data.defs import OP, build_sample_data_defs
from blocks_pipelines.sample_data.generator import generate_tenant_cur
from blocks_pipelines.sample_data.redelivery import (
    GENERATOR_FORMAT,
    delivered_through,
    demo_seed,
    open_period,
    source_uri,
)
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state import get_state_store
from blocks_pipelines.tenants.config import TenantConfig, load_registry

DEMO_END = datetime(2026, 11, 2, 10, 20, tzinfo=timezone.utc)  # `blocks demo` ran at 10:20: data through 09:00-10:00
PLAN_START = datetime(2026, 11, 2, 10, tzinfo=timezone.utc)  # bought at 10:40, after the demo's delivery
# (line item type, savings plan ARN, usage start) as each format spells them
COLUMNS = {
    "cur1": ("lineItem/LineItemType", "savingsPlan/SavingsPlanARN", "lineItem/UsageStartDate"),
    "cur2": ("line_item_line_item_type", "savings_plan_savings_plan_a_r_n", "line_item_usage_start_date"),
}


@pytest.fixture
def tenants(blocks_env) -> dict[str, TenantConfig]:
    return {t.id: t for t in load_registry(get_settings().tenants_dir)}


def at(hour: int, minute: int = 5) -> datetime:
    return datetime(2026, 11, 2, hour, minute, tzinfo=timezone.utc)


def demo_delivery(tenant: TenantConfig) -> None:
    """What `blocks demo` leaves in the tenant's source: the open month through the last complete hour at DEMO_END."""
    generate_tenant_cur(
        tenant,
        fmt=GENERATOR_FORMAT[tenant.cur_source.format.value],
        out_uri=source_uri(tenant),
        months=1,
        seed=demo_seed(tenant),
        start="2026-11",
        end=DEMO_END,
    )


def tick(tenant: TenantConfig, when: datetime) -> dg.RunRequest | str:
    """The tenant's schedule evaluated at `when`: its run request, or its skip message."""
    schedule = build_sample_data_defs(tenant).resolve_schedule_def(f"{tenant.id}__sample_cur_delivery_schedule")
    data = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when))
    if data.skip_message is not None:
        return data.skip_message
    [request] = data.run_requests
    return request


def run_clock(tenant: TenantConfig, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    job = build_sample_data_defs(tenant).resolve_job_def(f"{tenant.id}__sample_cur_delivery")
    return job.execute_in_process(run_config=request.run_config, tags=request.tags)


def record_plan(tenant: TenantConfig) -> dict:
    """A plan in the local ledger, as LedgerPurchaser records it."""
    plan = {
        "savings_plan_id": "ledger-test",
        "proposal_id": "p-test",
        "hourly_commitment": 3.0,
        "term_years": 1,
        "payment_option": "No Upfront",
        "rate_ratio": 0.72,
        "start": PLAN_START.isoformat(),
        "savings_plan_arn": f"arn:aws:savingsplans::{tenant.organization.payer_account_id}:savingsplan/test",
    }
    assert get_state_store().record_ledger_plan(tenant.id, plan)
    return plan


def read_rows(files: list[str], fmt: str) -> pl.DataFrame:
    kind, arn, start = COLUMNS[fmt]
    if fmt == "cur1":
        frame = pl.concat([pl.read_csv(f, columns=[kind, arn, start], infer_schema=False) for f in files])
        frame = frame.with_columns(pl.col(start).str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"))
    else:
        frame = pl.concat([pl.read_parquet(f, columns=[kind, arn, start]) for f in files])
    return frame.rename({kind: "line_item_type", arn: "arn", start: "usage_start"})


def test_open_period_is_the_month_of_the_last_complete_hour():
    assert open_period(at(11)).label == "2026-11" and not open_period(at(11)).closed
    closing = open_period(datetime(2026, 12, 1, 0, 5, tzinfo=timezone.utc))  # November's last hour just ended
    assert closing.label == "2026-11" and closing.closed


def test_tick_skips_until_a_new_hour_has_completed(tenants):
    acme = tenants["acme_corp"]
    assert "no sample CUR" in tick(acme, at(11))  # never before `blocks demo` wrote the history
    demo_delivery(acme)
    assert delivered_through(acme, open_period(at(10))) == datetime(2026, 11, 2, 9, tzinfo=timezone.utc)
    assert "already carries 2026-11-02 09:00" in tick(acme, at(10))
    request = tick(acme, at(11))
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == "2026-11-02T10"
    assert request.run_config == {"ops": {OP: {"config": {"end": "2026-11-02T11:00:00+00:00"}}}}


@pytest.mark.parametrize("tenant_id", ["acme_corp", "globex"])
def test_clock_delivers_the_hours_after_a_purchase_covered_by_the_plan(tenants, tenant_id):
    tenant = tenants[tenant_id]
    fmt = tenant.cur_source.format.value
    demo_delivery(tenant)
    plan = record_plan(tenant)

    result = run_clock(tenant, tick(tenant, at(11)))
    assert result.success
    [materialized] = [e for e in result.all_events if e.is_successful_output]
    files = materialized.event_specific_data.metadata["files"].value
    assert files and all(Path(f).is_file() for f in files)
    rows = read_rows(files, fmt)
    covered = rows.filter(
        (pl.col("line_item_type") == "SavingsPlanCoveredUsage") & (pl.col("arn") == plan["savings_plan_arn"])
    )
    assert covered.height > 0
    assert covered.get_column("usage_start").unique().to_list() == [PLAN_START]  # the one hour after the purchase
    assert "already carries 2026-11-02 10:00" in tick(tenant, at(11, 40))  # up to date: no redundant delivery


def test_clock_keeps_only_the_delivery_it_replaces(tenants):
    globex = tenants["globex"]
    demo_delivery(globex)
    data_dir = Path(source_uri(globex)) / globex.cur_source.report_name / "data" / "BILLING_PERIOD=2026-11"
    [demo] = [d.name for d in data_dir.iterdir()]
    assert run_clock(globex, tick(globex, at(11))).success
    assert demo in {d.name for d in data_dir.iterdir()}  # the delivery it replaced may still be ingesting
    result = run_clock(globex, tick(globex, at(12)))
    [output] = [e for e in result.all_events if e.is_successful_output]
    removed = output.event_specific_data.metadata["removed_deliveries"].value
    assert [Path(r).name for r in removed] == [demo]
    assert len(list(data_dir.iterdir())) == 2


def test_s3_tenants_get_no_clock(tenants):
    s3 = TenantConfig.model_validate(
        {
            **tenants["globex"].model_dump(mode="json"),
            "id": "s3co",
            "cur_source": {**tenants["globex"].cur_source.model_dump(mode="json"), "uri": "s3://customer-cur/reports"},
        }
    )
    defs = build_sample_data_defs(s3)
    assert not list(defs.schedules or []) and not list(defs.jobs or [])
    local = build_sample_data_defs(tenants["globex"]).resolve_schedule_def("globex__sample_cur_delivery_schedule")
    assert local.cron_schedule == "5 * * * *" and local.execution_timezone == "UTC"
    assert local.default_status == dg.DefaultScheduleStatus.RUNNING


def test_a_new_demo_delivers_the_open_month_so_its_data_is_current(tenants):
    """`blocks demo` generates whole months from history_start; the month after them, when it is the open one, is
    delivered through the last complete hour as the clock would, so the demo does not start days behind (with a
    critical late-data alert). A gap before the open month is not papered over."""
    from blocks_pipelines.in_process import catch_up_open_month

    acme, now = tenants["acme_corp"], datetime(2026, 12, 4, 10, 20, tzinfo=timezone.utc)
    assert catch_up_open_month(acme, ["2026-10"], now) is None  # November missing: nothing delivered
    assert catch_up_open_month(acme, ["2026-11", "2026-12"], now) is None  # the open month is already there
    assert delivered_through(acme, open_period(now)) is None
    said = catch_up_open_month(acme, ["2026-09", "2026-10", "2026-11"], now)
    assert said is not None and said.startswith("2026-12 through 2026-12-04 09:00 UTC")
    assert delivered_through(acme, open_period(now)) == datetime(2026, 12, 4, 9, tzinfo=timezone.utc)
