"""`make bench`: run every benchmarks/bench_*.py in its own process and print its figures.

Targets are printed next to the measured figures; benchmarks never fail the test suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    only = sys.argv[1:]
    failures = 0
    for bench in sorted(HERE.glob("bench_*.py")):
        if only and not any(o in bench.stem for o in only):
            continue
        print(f"\n=== {bench.stem} ===", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.{bench.stem}"], cwd=HERE.parent)
        failures += rc != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
