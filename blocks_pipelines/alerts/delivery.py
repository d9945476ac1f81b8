"""Late or missing CUR deliveries: the lag between now and the end of the last hour with data.

AWS refreshes a CUR up to three times a day, so data normally lags 8-24 h. The thresholds match the line items'
freshness policy (warn 26 h, fail 36 h): past LATE_AFTER a delivery is late, past MISSING_AFTER it is missing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from blocks_pipelines.state.alert_models import AlertKind, Detection, Severity

LATE_AFTER = timedelta(hours=36)
MISSING_AFTER = timedelta(hours=72)


def detect_late_data(data_through: datetime | None, now: datetime, expected_since: datetime) -> Detection | None:
    """data_through: end of the last hour with data (None: nothing yet); expected_since: when data could first be
    expected (the tenant's connection). One alert per episode: its first-seen day is the day it became late."""
    reference = data_through or expected_since
    lag = now - reference
    if lag < LATE_AFTER:
        return None
    hours = lag.total_seconds() / 3600
    missing = lag >= MISSING_AFTER
    what = (
        f"no CUR data after {data_through:%Y-%m-%d %H:%M} UTC"
        if data_through
        else f"no CUR delivery received since the connection on {expected_since:%Y-%m-%d}"
    )
    return Detection(
        kind=AlertKind.late_data,
        severity=Severity.critical if missing else Severity.high,
        dimensions={"source": "cur"},
        first_seen=(reference + LATE_AFTER).date(),
        last_seen=now.date(),
        expected=LATE_AFTER.total_seconds() / 3600,
        actual=round(hours, 1),
        unit="hours",
        message=(
            f"CUR data is {hours:.0f} h behind ({what}; expected within {LATE_AFTER.total_seconds() / 3600:.0f}"
            f" h): figures, coverage and recommendations stop there. Check the export in the AWS billing console"
            f" and the bucket policy (`blocks connect test`)."
        ),
    )
