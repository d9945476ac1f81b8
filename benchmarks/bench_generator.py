"""Sample CUR generator throughput (target: >= 1M rows/minute), line items alone and written in each format.

Run: python -m benchmarks.bench_generator            (one closed tenant-month, scale 1)
     BLOCKS_BENCH_GEN_SCALE=8 python -m benchmarks.bench_generator   (bigger tenant-months)"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import datetime, timezone

from blocks_pipelines.sample_data import generate_tenant_cur
from blocks_pipelines.sample_data.commitments import existing_plan
from blocks_pipelines.sample_data.formats import FORMATS
from blocks_pipelines.sample_data.generator import billing_periods, delivery_id
from blocks_pipelines.sample_data.inventory import build_inventory
from blocks_pipelines.sample_data.lineitems import billing_period_rows, eligible_on_demand_per_hour
from blocks_pipelines.settings import REPO_ROOT
from blocks_pipelines.tenants.config import load_tenant_file

TARGET_ROWS_PER_MINUTE = 1_000_000
END = datetime(2026, 11, 1, tzinfo=timezone.utc)


def line_items_only(tenant, scale: float) -> tuple[int, float]:
    t0 = time.perf_counter()
    inv = build_inventory(tenant, seed=1, scale=scale)
    anchor = tenant.history_start_dt
    payer = tenant.organization.payer_account_id
    plan = existing_plan(
        payer, anchor, eligible_on_demand_per_hour(inv, anchor, (1, tenant.id, scale)), seed=1, tenant_id=tenant.id
    )
    period = billing_periods(1, END, "2026-10")[0]
    li = billing_period_rows(
        inv,
        payer=payer,
        period=period,
        plans=[plan],
        anchor=anchor,
        key=(1, tenant.id, scale),
        restatement=False,
        delivery_id=delivery_id("bench"),
        invoice_id="1",
    )
    return li.height, time.perf_counter() - t0


def report(label: str, rows: int, seconds: float) -> None:
    per_minute = rows / seconds * 60
    ok = "ok" if per_minute >= TARGET_ROWS_PER_MINUTE else "BELOW TARGET"
    print(
        f"{label:<28} {rows:>10,} rows in {seconds:6.2f} s = {per_minute / 1e6:6.2f}M rows/min "
        f"(target >= {TARGET_ROWS_PER_MINUTE / 1e6:.0f}M) {ok}",
        flush=True,
    )


def main() -> None:
    scale = float(os.environ.get("BLOCKS_BENCH_GEN_SCALE", "1"))
    tenant = load_tenant_file(REPO_ROOT / "assets_config" / "tenants" / "acme_corp.yaml")
    print(f"tenant acme_corp, billing period 2026-10 (744 hours), scale {scale}")
    rows, secs = line_items_only(tenant, scale)
    report("line items (in memory)", rows, secs)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in FORMATS:
            t0 = time.perf_counter()
            s = generate_tenant_cur(
                tenant, fmt=fmt, out_uri=f"{tmp}/{fmt}", months=1, start="2026-10", seed=1, end=END, scale=scale
            )
            report(f"{fmt} written", s.rows, time.perf_counter() - t0)


if __name__ == "__main__":
    main()
