"""Sensor intervals the Dagster daemon can keep (issue #16).

The sensor daemon looks for due sensors once per loop of 5 s (MIN_INTERVAL_LOOP_TIME in dagster/_daemon/sensor.py),
and a sensor is due once `minimum_interval_seconds` have passed since its last tick started. With an interval that
is a whole number of loops, the loop that should tick it lands a few milliseconds before or after the mark, so about
half the ticks slip a whole loop: at 2,000 tenants the 15 s sensors ticked every 18.6 s, 80 % of their ticks
(benchmarks/bench_daemon.py). Asking one second less than the cadence makes that loop always due.
"""

from __future__ import annotations

DAEMON_LOOP_SECONDS = 5


def every(cadence_seconds: int) -> int:
    """minimum_interval_seconds for a sensor meant to tick every `cadence_seconds` (a whole number of loops)."""
    if cadence_seconds <= 0 or cadence_seconds % DAEMON_LOOP_SECONDS:
        raise ValueError(f"a sensor cadence must be a multiple of the daemon's {DAEMON_LOOP_SECONDS} s loop")
    return cadence_seconds - 1


def cadence_of(minimum_interval_seconds: int) -> int:
    """The cadence a sensor's interval gets from the daemon: its interval rounded up to whole loops."""
    return -(-minimum_interval_seconds // DAEMON_LOOP_SECONDS) * DAEMON_LOOP_SECONDS
