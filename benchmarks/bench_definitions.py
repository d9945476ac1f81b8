"""Definitions load time for N tenant files (target: 200 tenants in under 5 s), as `dagster dev` would load them.

Run: python -m benchmarks.bench_definitions [N]"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

from blocks_pipelines.settings import REPO_ROOT


def write_tenants(folder: Path, n: int) -> None:
    template = yaml.safe_load((REPO_ROOT / "assets_config/tenants/globex.yaml").read_text())
    (folder / "tenants").mkdir(parents=True)
    for i in range(n):
        t = dict(template, id=f"tenant_{i:04d}", name=f"Tenant {i}", history_start="2024-11-01")
        (folder / "tenants" / f"tenant_{i:04d}.yaml").write_text(yaml.safe_dump(t))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        write_tenants(Path(tmp), n)
        os.environ["BLOCKS_ASSETS_CONFIG"] = tmp
        t0 = time.perf_counter()
        import blocks_pipelines.definitions as root  # noqa: E402  (import cost is part of what dagster pays)

        t1 = time.perf_counter()
        defs = root.defs
        t2 = time.perf_counter()
        repo = defs.get_repository_def()
        n_assets = len(repo.asset_graph.get_all_asset_keys())
        t3 = time.perf_counter()
        one = repo.asset_graph.get(
            next(iter(k for k in repo.asset_graph.get_all_asset_keys() if k.path[-1] == "cur_line_items"))
        )
        keys = one.partitions_def.get_partition_keys()
        t4 = time.perf_counter()
    print(f"tenants                         {n}")
    print(f"assets                          {n_assets}")
    print(f"import modules                  {t1 - t0:6.2f} s")
    print(f"build per-tenant graphs         {t2 - t1:6.2f} s")
    print(f"resolve repository (validate)   {t3 - t2:6.2f} s")
    print(f"total definitions load          {t3 - t0:6.2f} s   target < 5 s for 200 tenants")
    print(f"list one asset's partition keys {t4 - t3:6.2f} s   ({len(keys)} hourly keys)")


if __name__ == "__main__":
    main()
