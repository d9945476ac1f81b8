"""State store and purchase-path figures: conditional writes per second (SQLite), and the full guarded purchase
of one proposal. `BLOCKS_BENCH_N=2000` for a bigger run.

    python -m benchmarks.bench_sp_state
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl

from blocks_pipelines.savings_plans.proposals import build_proposal, decide, publish_proposal
from blocks_pipelines.savings_plans.purchase.execute import execute_purchase
from blocks_pipelines.savings_plans.purchase.orders import Receipt
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state.records import Proposal
from blocks_pipelines.state.sqlite_backend import SqliteBackend
from blocks_pipelines.state.store import StateStore
from blocks_pipelines.tenants.config import load_registry

N = int(os.environ.get("BLOCKS_BENCH_N", "300"))


class _Instant:
    name = "ledger"

    def buy(self, order):
        return Receipt("sp-bench", None, datetime.now(timezone.utc), "ledger")


def _rate(label: str, n: int, seconds: float, target: str) -> None:
    print(f"{label:<48} {n / seconds:>10,.0f}/s   ({seconds * 1000 / n:.2f} ms each)   target {target}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(SqliteBackend(Path(tmp) / "state.sqlite"))
        now = datetime.now(timezone.utc)
        t0 = time.perf_counter()
        for i in range(N):
            store.append_audit("bench", "x", f"acme_corp/bench/{i}", "ok", {"i": i})
        _rate("append_audit (sqlite)", N, time.perf_counter() - t0, ">= 200/s")

        ids = []
        t0 = time.perf_counter()
        for i in range(N):
            pid = f"acme_corp.20260101T0000.{i:08x}"
            store.create_proposal(
                Proposal(
                    proposal_id=pid,
                    tenant_id="acme_corp",
                    hourly_commitment=1.0,
                    data_fingerprint="f",
                    created_at=now,
                    expires_at=now + timedelta(hours=1),
                ),
                actor="bench",
            )
            ids.append(pid)
        _rate("create_proposal (sqlite, with audit)", N, time.perf_counter() - t0, ">= 100/s")

        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            claims = list(pool.map(lambda pid: store.claim_purchase(pid, "bench"), ids + ids))
        took = time.perf_counter() - t0
        _rate("claim_purchase, 8 threads, each id twice", 2 * N, took, ">= 100/s")
        won = sum(c is not None for c in claims)
        print(f"{'claims won':<48} {won:>10}    target {N} (exactly one per proposal)")

        tenants = load_registry(get_settings().tenants_dir)
        tenant = next(t for t in tenants if t.id == "acme_corp")
        end = now.replace(minute=0, second=0, microsecond=0)
        hours = pl.datetime_range(
            end - timedelta(days=365), end - timedelta(hours=1), "1h", time_zone="UTC", eager=True
        )
        usage = pl.DataFrame(
            {"ts_hour": hours, "eligible_on_demand_cost": [20.0] * len(hours), "sp_rate_ratio": [0.72] * len(hours)}
        )

        class Rec:
            hourly_commitment, rationale = 4.0, "bench"

            def model_dump(self, mode):
                return {}

        p = publish_proposal(store, build_proposal(tenant, usage, Rec(), [], now))
        decide(store, p.proposal_id, "approve", "bench", now=now)
        t0 = time.perf_counter()
        result = execute_purchase(store, tenant, p.proposal_id, _Instant(), usage, [], now)
        took = time.perf_counter() - t0
        print(
            f"{'guarded purchase, 1 year of hourly usage':<48} {took * 1000:>10.1f} ms  target < 500 ms "
            f"({result.outcome})"
        )


if __name__ == "__main__":
    main()
