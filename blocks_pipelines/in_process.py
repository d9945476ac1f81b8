"""Run the pipeline in-process, without a daemon: what `blocks materialize` and `blocks demo` do, and what a data
engineer's CI would do. The same asset definitions the Dagster UI shows run here, recorded in the same instance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import dagster as dg

from blocks_pipelines.lake import fs
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig, resolve_source_uri
from blocks_pipelines.tenants.partitions import RANGE_END_TAG, RANGE_START_TAG

Echo = Callable[[str], None]
# Step-by-step DEBUG events go to the instance (the UI shows them); the terminal only needs warnings.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class TenantRunSummary:
    tenant_id: str
    runs: list[tuple[str, bool]] = field(default_factory=list)  # (what, success)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok in self.runs)

    def __str__(self) -> str:
        lines = [f"{self.tenant_id}: {'ok' if self.ok else 'FAILED'}"]
        lines += [f"  {'ok  ' if ok else 'FAIL'} {what}" for what, ok in self.runs]
        return "\n".join(lines)


def generate_demo_sources(tenants: list[TenantConfig], *, months: int, seed: int, echo: Echo = print) -> None:
    """Sample CUR for every tenant whose source is a local folder; skipped where a delivery already exists so a
    second `blocks demo` does not create a new delivery of the same data."""
    from blocks_pipelines.sample_data.generator import generate_tenant_cur

    home = get_settings().home
    fmt_for = {"cur1": "cur1-csv", "cur2": "cur2", "focus": "focus"}
    for i, tenant in enumerate(tenants):
        if tenant.cur_source.is_s3:
            continue
        out = resolve_source_uri(tenant.cur_source, home)
        if next(fs.list_objects(out), None) is not None:
            echo(f"  {tenant.id}: sample CUR already in {out}")
            continue
        summary = generate_tenant_cur(
            tenant,
            fmt=fmt_for[tenant.cur_source.format.value],
            out_uri=out,
            months=months,
            seed=seed + i,
            start=tenant.history_start.strftime("%Y-%m"),
        )
        total = sum(m.unblended_cost for m in summary.months)
        echo(
            f"  {tenant.id}: generated {summary.rows:,} {summary.format} rows over {len(summary.months)} months "
            f"(${total:,.2f} unblended) in {out}"
        )
        caught_up = catch_up_open_month(tenant, [m.billing_period for m in summary.months])
        if caught_up:
            echo(f"  {tenant.id}: and {caught_up}, as AWS delivers the current month")


def catch_up_open_month(tenant: TenantConfig, generated: list[str], now: datetime | None = None) -> str | None:
    """When the generated months end just before the open one, deliver the open month through the last complete
    hour (what the hourly delivery clock does once the demo runs): without it a new demo starts with every tenant's
    data days behind, and a critical late-data alert that only says the sample is old."""
    from blocks_pipelines.ingestion.deliveries import month_bounds
    from blocks_pipelines.sample_data.redelivery import clock_delivery, last_complete_hour, open_period

    now = now or datetime.now(timezone.utc)
    label = open_period(now).label
    last = max(generated, default=None)
    if last is None or label in generated:
        return None
    if f"{month_bounds(last)[1]:%Y-%m}" != label:
        return None  # a gap would be left between the generated months and the open one
    summary, _ = clock_delivery(tenant, [], now)
    return f"{label} through {last_complete_hour(now):%Y-%m-%d %H}:00 UTC ({summary.rows:,} rows)"


def materialize_tenant(
    tenant: TenantConfig,
    *,
    instance: dg.DagsterInstance,
    select: str | None = None,
    echo: Echo = print,
) -> TenantRunSummary:
    from blocks_pipelines.definitions import build_tenant_defs
    from blocks_pipelines.ingestion.defs import delivery_run_request
    from blocks_pipelines.ingestion.deliveries import discover_deliveries

    defs = build_tenant_defs(tenant)
    job = defs.resolve_implicit_global_asset_job_def()
    graph = defs.resolve_asset_graph()
    summary = TenantRunSummary(tenant.id)
    tenant_tags = {"blocks/tenant": tenant.id}

    def run(what: str, keys: list[dg.AssetKey], tags: dict[str, str], run_config: dict | None = None) -> None:
        if not keys:
            return
        echo(f"  {tenant.id}: {what}")
        result = job.execute_in_process(
            instance=instance,
            asset_selection=keys,
            tags={**tenant_tags, **tags},
            run_config={**QUIET_LOGS, **(run_config or {})},
            raise_on_error=False,
        )
        summary.runs.append((what, result.success))

    def run_partitioned(what: str, keys: list[dg.AssetKey]) -> None:
        """One run per partitions definition (hourly line items, daily marts) over its whole range."""
        by_def: dict[dg.PartitionsDefinition, list[dg.AssetKey]] = {}
        for k in keys:
            pdef = graph.get(k).partitions_def
            if pdef is not None:
                by_def.setdefault(pdef, []).append(k)
        for pdef, group in by_def.items():
            first, last = pdef.get_first_partition_key(), pdef.get_last_partition_key()
            if first is None or last is None:
                continue
            run(what, group, {RANGE_START_TAG: first, RANGE_END_TAG: last})

    if select:
        keys = sorted(dg.AssetSelection.from_string(select).resolve(graph))
        run_partitioned("selected assets over the tenant's history", keys)
        run(
            "selected unpartitioned asset(s)",
            [k for k in keys if graph.get(k).partitions_def is None and graph.get(k).is_materializable],
            {},
        )
        return summary

    line_items = dg.AssetKey([tenant.id, "cur_line_items"])
    cost_explorer = dg.AssetKey([tenant.id, "cost_explorer_line_items"])
    deliveries = discover_deliveries(tenant)
    for delivery in deliveries:
        request = delivery_run_request(tenant, delivery, datetime.now(timezone.utc))
        if request is None:
            continue
        run(
            f"ingest {delivery.billing_period} delivery {delivery.delivery_id}",
            [line_items],
            dict(request.tags),
            request.run_config,
        )
    if not deliveries and graph.has(cost_explorer):
        # what the tenant's Cost Explorer sensor does until the first CUR delivery lands
        run_partitioned("Cost Explorer backfill (no CUR delivered yet)", [cost_explorer])

    marts = sorted(
        k
        for k in graph.get_all_asset_keys()
        if k not in (line_items, cost_explorer) and graph.get(k).partitions_def is not None and k.path[0] == tenant.id
    )
    run_partitioned("dbt models over the tenant's history", marts)
    manual = {dg.AssetKey([tenant.id, "sp_approvals"]), dg.AssetKey([tenant.id, "sp_purchases"])}
    rest = sorted(
        k
        for k in graph.get_all_asset_keys()
        if graph.get(k).partitions_def is None and k not in manual and graph.get(k).is_materializable
    )
    run("rollups, Savings Plans proposals and monitoring", rest, {})
    return summary


def materialize_all(
    tenants: list[TenantConfig],
    *,
    select: str | None = None,
    echo: Echo = print,
    instance: dg.DagsterInstance | None = None,
) -> str:
    instance = instance or dg.DagsterInstance.get()
    started = datetime.now(timezone.utc)
    summaries = [materialize_tenant(t, instance=instance, select=select, echo=echo) for t in tenants]
    took = (datetime.now(timezone.utc) - started).total_seconds()
    failed = [s.tenant_id for s in summaries if not s.ok]
    head = f"materialized {len(tenants)} tenant(s) in {took:.0f} s" + (f"; FAILED: {failed}" if failed else "")
    return "\n".join([head, *map(str, summaries)])
