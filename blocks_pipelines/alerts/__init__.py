"""Anomaly detection and alerting: spend spikes and new services (spend_anomalies), Savings Plans coverage and
utilization dips, late or missing CUR deliveries; one alert record for all of them, stored once in the state store
and delivered through the tenant's notification channels.

Pure detection lives in `spend.py`, `position.py` and `delivery.py` (polars, no warehouse); `evaluate.py` runs them
over a tenant's marts; `notify.py` delivers; `defs.py` is the Dagster side.
"""
