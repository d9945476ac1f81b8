"""The sample generator's injected spikes: absolute dates, one resource at a time, and found by the detector."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from blocks_pipelines.alerts.spend import SpendParams, detect_spend_spikes
from blocks_pipelines.sample_data import anomalies as A
from blocks_pipelines.sample_data.demand import hour_grid
from blocks_pipelines.sample_data.inventory import build_inventory
from blocks_pipelines.sample_data.lineitems import usage_rows
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import load_registry

END = datetime(2026, 12, 12, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def acme():
    tenant = next(t for t in load_registry(get_settings().tenants_dir) if t.id == "acme_corp")
    return tenant, build_inventory(tenant, seed=42, scale=1.0)


def test_episodes_are_absolute_and_rotate_over_the_largest_resources(acme):
    tenant, inv = acme
    anchor = tenant.history_start_dt
    eps = A.episodes(inv.resources, anchor, END)
    assert eps["spike_start"][0] == anchor + timedelta(days=A.FIRST_EPISODE_DAY)
    assert (eps["spike_end"] - eps["spike_start"]).unique().to_list() == [timedelta(days=A.EPISODE_DAYS)]
    assert eps["resource_idx"].head(A.CANDIDATES).n_unique() == A.CANDIDATES
    # a later delivery sees the same earlier episodes
    later = A.episodes(inv.resources, anchor, END + timedelta(days=30))
    assert later.head(eps.height).equals(eps)


def test_spikes_multiply_only_the_episode_hours(acme):
    tenant, inv = acme
    anchor = tenant.history_start_dt
    first = A.episodes(inv.resources, anchor, END).row(0, named=True)
    hours = hour_grid(first["spike_start"] - timedelta(days=1), first["spike_end"] + timedelta(days=1))
    spiked = usage_rows(inv, hours, anchor, (42, tenant.id, 1.0, "t"))
    rid = first["resource_idx"]
    mine = spiked.filter(pl.col("resource_idx") == rid).with_columns(
        inside=(pl.col("usage_start") >= first["spike_start"]) & (pl.col("usage_start") < first["spike_end"])
    )
    inside = mine.filter("inside")["usage_amount"].mean()
    outside = mine.filter(~pl.col("inside"))["usage_amount"].mean()
    assert inside / outside == pytest.approx(A.SPIKE_FACTOR, rel=0.3)


def test_the_detector_finds_the_injected_spikes_in_generated_usage(acme):
    tenant, inv = acme
    anchor = tenant.history_start_dt
    rows = usage_rows(inv, hour_grid(anchor, END), anchor, (42, tenant.id, 1.0, "t"))
    daily = rows.group_by(
        pl.col("usage_start").dt.date().alias("usage_date"),
        pl.col("product_code").alias("service"),
        "usage_account_id",
        "region",
        "usage_type",
    ).agg(cost=pl.col("unblended_cost").sum())
    as_of = (END - timedelta(days=1)).date()
    found = detect_spend_spikes(
        daily, as_of, SpendParams(sensitivity=tenant.alerts.sensitivity, min_impact_usd=tenant.alerts.min_impact_usd)
    )
    eps = A.episodes(inv.resources, anchor, END).join(
        inv.resources.select("resource_idx", "product_code", "usage_account_id"), on="resource_idx"
    )
    judged = [e for e in eps.iter_rows(named=True) if e["spike_start"].date() <= as_of]
    hits = {(d.dimensions["service"], d.dimensions["usage_account_id"], d.first_seen) for d in found}
    for e in judged:
        assert (e["product_code"], e["usage_account_id"], e["spike_start"].date()) in hits, e
    assert len(found) <= len(judged) + 1, [d.message for d in found]
    assert any(d.top_usage_types and d.top_usage_types[0].impact > 0 for d in found)
    assert len(judged) >= 3 and isinstance(found[0].first_seen, date)
