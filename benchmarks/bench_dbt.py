"""dbt build time per tenant-month on DuckDB, and Dagster definitions load time for 200 tenants.

    python -m benchmarks.bench_dbt            # 3 sizes (~15k, ~150k, ~750k line items), about a minute
    python -m benchmarks.bench_dbt --big      # adds ~3.7M line items per month

Each size runs in a fresh BLOCKS_HOME under /tmp: synthetic canonical line items for one month (a Savings Plan,
on-demand EC2, storage, idle resources, filler S3 rows), then `run_dbt_build` (full build, every dbt test, export).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROWS_PER_HOUR = (20, 200, 1000)
BIG_ROWS_PER_HOUR = 5000
BUILD_TARGET_S = 60.0  # per tenant-month, at any size up to ~1M line items
DEFS_TARGET_S = 5.0  # 200 tenants' model definitions, from a cold interpreter (manifest cached)
TENANT_YAML = """\
id: benchco
name: Bench Co
billing_mode: blocks_vendor
organization:
  payer_account_id: "111111111111"
  linked_accounts:
    - {account_id: "111111111112", name: prod-web}
    - {account_id: "111111111113", name: prod-api}
    - {account_id: "111111111114", name: dev-sandbox}
connection: {role_arn: "arn:aws:iam::111111111111:role/BlocksDataRead", external_id: blocks-benchco-0123456789}
cur_source: {uri: sources/benchco, format: cur1, report_name: bench}
history_start: 2026-01-01
guardrails: {max_hourly_commitment: 40.0}
"""

DEFS_SNIPPET = """
import time
t0 = time.perf_counter()
import dagster as dg
from blocks_pipelines.models.defs import build_model_defs
from blocks_pipelines.tenants.config import TenantConfig
import yaml, pathlib
base = yaml.safe_load(pathlib.Path('{config}/tenants/benchco.yaml').read_text())
tenants = [TenantConfig.model_validate({{**base, 'id': f't{{i:03d}}'}}) for i in range(200)]
t1 = time.perf_counter()
defs = dg.Definitions.merge(*[build_model_defs(t) for t in tenants])
t2 = time.perf_counter()
keys = defs.resolve_asset_graph().get_all_asset_keys()
t3 = time.perf_counter()
print(f"{{t1 - t0:.2f}} {{t2 - t1:.2f}} {{t3 - t2:.2f}} {{len(keys)}}")
"""


def _bench_build(rows_per_hour: int) -> None:
    from blocks_pipelines.models.build import run_dbt_build
    from tests.synthetic.line_items import synthetic_month, write_line_items

    frame = synthetic_month("benchco", date(2026, 10, 1), rows_per_hour)
    write_line_items(frame, os.environ["BLOCKS_LAKE_URI"])
    result = run_dbt_build("benchco")
    if not result.success:
        raise SystemExit("\n".join(result.failures))
    rate = frame.height / result.seconds
    ok = "ok" if result.seconds <= BUILD_TARGET_S else "SLOW"
    print(
        f"  {frame.height:>9,} line items/month: dbt build + tests + export {result.seconds:6.1f} s "
        f"({rate:,.0f} rows/s)   target <= {BUILD_TARGET_S:.0f} s  [{ok}]",
        flush=True,
    )


def _isolated_env(root: Path) -> dict[str, str]:
    config = root / "config"
    (config / "tenants").mkdir(parents=True)
    (config / "tenants" / "benchco.yaml").write_text(TENANT_YAML)
    return {
        **os.environ,
        "BLOCKS_HOME": str(root / "home"),
        "BLOCKS_LAKE_URI": str(root / "home" / "lake"),
        "BLOCKS_ASSETS_CONFIG": str(config),
        "BLOCKS_ENV": "local",
        "BLOCKS_DBT_TARGET": "duckdb",
        "BLOCKS_STATE_BACKEND": "sqlite",
        "DBT_QUIET": "true",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--big", action="store_true", help=f"add {BIG_ROWS_PER_HOUR} rows per hour (~3.7M/month)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: one size in a child process
    args = parser.parse_args()
    if args.one:
        _bench_build(args.one)
        return 0
    sizes = ROWS_PER_HOUR + ((BIG_ROWS_PER_HOUR,) if args.big else ())
    print(f"dbt build per tenant-month on DuckDB (machine load average {os.getloadavg()[0]:.1f})")
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-dbt-") as tmp:
            # A fresh process per size: no state carried over, dbt imports counted as a real run would.
            env = _isolated_env(Path(tmp))
            subprocess.run(
                [sys.executable, "-m", "benchmarks.bench_dbt", "--one", str(size)],
                env=env,
                check=True,
                stdout=None,
                stderr=subprocess.DEVNULL,
            )
    with tempfile.TemporaryDirectory(prefix="bench-defs-") as tmp:
        env = _isolated_env(Path(tmp))
        # Warm the manifest cache once (a deploy does this at build time), then time a cold interpreter.
        subprocess.run(
            [sys.executable, "-c", "from blocks_pipelines.models.project import ensure_manifest; ensure_manifest()"],
            env=env,
            check=True,
            capture_output=True,
        )
        out = subprocess.run(
            [sys.executable, "-c", DEFS_SNIPPET.format(config=env["BLOCKS_ASSETS_CONFIG"])],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        imports, build, graph, keys = float(out[0]), float(out[1]), float(out[2]), int(out[3])
        total = imports + build + graph
        ok = "ok" if build + graph <= DEFS_TARGET_S else "SLOW"
        print(
            f"Dagster model definitions, 200 tenants ({keys} asset keys): build {build:.2f} s + asset graph "
            f"{graph:.2f} s = {build + graph:.2f} s   target < {DEFS_TARGET_S:.0f} s  [{ok}]"
        )
        print(f"  (plus {imports:.2f} s importing dagster/dagster-dbt; {total:.2f} s from a cold interpreter)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
