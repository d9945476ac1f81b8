"""The code location's sensors take tenants in turn (issue #16): a tick touches a bounded slice, no tenant waits
more than a round, and a tenant with news this tick is served at once."""

import json
from datetime import timedelta

import dagster as dg

from blocks_pipelines.resources import platform_resources
from blocks_pipelines.savings_plans import defs as sp_defs
from blocks_pipelines.savings_plans.proposals import decide
from blocks_pipelines.state import ProposalStatus, get_state_store
from blocks_pipelines.state.records import Proposal, utcnow
from blocks_pipelines.tenants.rotation import next_slice, rotation

TENANTS = [f"t{i:02d}" for i in range(10)]


def test_rotation_starts_after_the_last_tenant_served_and_wraps():
    assert rotation(["c", "a", "b"], None) == ["a", "b", "c"]
    assert rotation(["a", "b", "c"], "a") == ["b", "c", "a"]
    assert rotation(["a", "b", "c"], "c") == ["a", "b", "c"]
    assert rotation(["a", "c"], "b") == ["c", "a"]  # the tenant it stopped at left the location


def test_next_slice_covers_every_tenant_once_per_round():
    after, served = None, []
    for _ in range(4):
        turn, after = next_slice(TENANTS, after, 3)
        served.append(turn)
    assert served == [TENANTS[0:3], TENANTS[3:6], TENANTS[6:9], TENANTS[9:10]]
    assert after is None  # the round reached the end: the next tick starts from the first tenant
    assert next_slice(TENANTS, after, 3)[0] == TENANTS[0:3]


def _approved(store, tenant: str, n: int) -> str:
    now = utcnow()
    pid = f"{tenant}.{now:%Y%m%dT%H%M}.{n:08x}"
    store.create_proposal(
        Proposal(
            proposal_id=pid,
            tenant_id=tenant,
            hourly_commitment=1.0,
            data_fingerprint="f",
            created_at=now,
            expires_at=now + timedelta(hours=72),
        ),
        actor="test",
    )
    store.transition_proposal(pid, ProposalStatus.pending_approval, actor="analyzer")
    return pid


def test_approval_sweep_serves_a_slice_per_tick_and_decided_tenants_at_once(blocks_env):
    store = get_state_store()
    late = _approved(store, "t08", 1)  # approved with `blocks sp approve`: no Dagster event, found by the sweep
    decide(store, late, "approve", "ops@blocks")
    by_event = _approved(store, "t09", 2)  # decided through an sp_approvals event
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(
        dg.AssetObservation(
            dg.AssetKey(["t09", "sp_approvals"]), metadata={"proposal_id": by_event, "approver": "cfo@acme"}
        )
    )
    sensor = sp_defs.approval_sensor(TENANTS, sweep=4)
    targets = [dg.AssetSpec([t, name]) for t in TENANTS for name in ("sp_purchases", "sp_monitoring")]
    defs = dg.Definitions(assets=[dg.multi_asset(specs=targets, name="targets")(lambda: None)])  # what it launches

    first = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, definitions=defs, resources=platform_resources())
    )
    assert [r.run_key for r in first.run_requests] == [by_event]  # t09 decided now; t08 not in the slice t00-t03
    assert store.get_proposal(by_event).status is ProposalStatus.approved
    second = sensor.evaluate_tick(
        dg.build_sensor_context(
            instance=instance, cursor=first.cursor, definitions=defs, resources=platform_resources()
        )
    )
    assert second.run_requests == []  # t04-t07
    third = sensor.evaluate_tick(
        dg.build_sensor_context(
            instance=instance, cursor=second.cursor, definitions=defs, resources=platform_resources()
        )
    )
    assert sorted(r.run_key for r in third.run_requests) == [late, by_event]  # t08, t09: the round's end


def _mat(instance, tenant: str, name: str, partition: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey([tenant, name]), partition=partition))


def test_first_refresh_tick_starts_after_each_tenants_last_mart_build(blocks_env):
    """A new deployment (or the per-tenant sensors it replaces) must not rebuild history a mart build followed."""
    from blocks_pipelines.definitions import build_definitions
    from blocks_pipelines.models.refresh import build_models_refresh_sensor
    from blocks_pipelines.settings import get_settings
    from blocks_pipelines.tenants.config import load_registry

    tenants = [t for t in load_registry(get_settings().tenants_dir) if t.id in ("acme_corp", "globex")]
    defs = build_definitions(tenants)
    sensor = build_models_refresh_sensor(tenants)
    with dg.instance_for_test() as instance:
        empty = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        assert json.loads(empty.cursor) == {
            "after": None,
            "covering": {},
        }  # started: the next ticks skip the first-tick lookups
    with dg.instance_for_test() as instance:
        _mat(instance, "acme_corp", "cur_line_items", "2026-09-02-10:00")
        _mat(instance, "globex", "cur_line_items", "2026-09-03-10:00")
        _mat(instance, "acme_corp", "spend_hourly", "2026-09-02")
        _mat(instance, "globex", "spend_hourly", "2026-09-03")
        _mat(instance, "acme_corp", "cur_line_items", "2026-09-09-10:00")  # after acme's build: to refresh
        first = sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        (request,) = first.run_requests
        assert request.tags["blocks/tenant"] == "acme_corp"
        assert request.tags["dagster/asset_partition_range_start"] == "2026-09-09"
        assert {k.path[0] for k in request.asset_selection} == {"acme_corp"}
        # then only what happens after the cursor: globex's new hour, in its own run
        _mat(instance, "globex", "cur_line_items", "2026-09-10-01:00")
        second = sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs))
        assert [r.tags["blocks/tenant"] for r in second.run_requests] == ["globex"]


def test_event_feed_reads_in_bounded_batches_and_resumes(blocks_env):
    from blocks_pipelines.tenants.event_feed import asset_events_after

    with dg.instance_for_test() as instance:
        for hour in range(5):
            _mat(instance, "acme_corp", "cur_line_items", f"2026-09-02-0{hour}:00")
        _mat(instance, "stranger", "cur_line_items", "2026-09-02-05:00")  # another location's tenant
        kind = dg.DagsterEventType.ASSET_MATERIALIZATION
        events, after = asset_events_after(instance, kind, None, ("cur_line_items",), {"acme_corp"}, limit=3)
        assert [e.partition for e in events] == [f"2026-09-02-0{h}:00" for h in range(3)]
        rest, end = asset_events_after(instance, kind, after, ("cur_line_items",), {"acme_corp"}, limit=3)
        assert [e.partition for e in rest] == ["2026-09-02-03:00", "2026-09-02-04:00"]
        assert end > after  # past the stranger's event too: it is never read again
        assert asset_events_after(instance, kind, end, ("cur_line_items",), {"acme_corp"}) == ([], end)


def test_sensor_intervals_land_on_the_daemons_loop():
    from blocks_pipelines.sensor_intervals import cadence_of, every

    # one second under the cadence: the daemon's loop at the cadence is always due, never a loop late
    assert [every(s) for s in (15, 30, 60)] == [14, 29, 59]
    assert [cadence_of(every(s)) for s in (15, 30, 60)] == [15, 30, 60]
    assert cadence_of(15) == 15 and cadence_of(16) == 20
    for bad in (0, 12):
        try:
            every(bad)
        except ValueError as exc:
            assert "5 s loop" in str(exc)
        else:
            raise AssertionError(f"every({bad}) accepted")
    # every sensor of the location asks an interval of that shape
    from blocks_pipelines.definitions import defs

    intervals = {s.name.split("__")[-1]: s.minimum_interval_seconds for s in defs.sensors}
    assert intervals and all((i + 1) % 5 == 0 for i in intervals.values()), intervals


def test_the_approval_sweep_is_a_tenth_of_the_location_per_tick():
    assert [sp_defs.sweep_size(n) for n in (1, 9, 10, 200, 2000, 5000)] == [1, 1, 1, 20, 200, 250]


def test_a_tenant_without_live_proposals_costs_no_event_log_read(blocks_env):
    from blocks_pipelines.savings_plans.approval.view import status_changes

    class NoEventLog:
        def __getattr__(self, name):
            raise AssertionError(f"the event log was read ({name}) for a tenant with nothing to check")

    store = get_state_store()
    assert status_changes(store, NoEventLog(), "t00") == []
    pid = _approved(store, "t01", 1)  # pending approval: its status must be checked against sp_proposals
    with dg.instance_for_test() as instance:
        changes = status_changes(store, instance, "t01")
    assert changes and all(pid in str(e.metadata) for e in changes)
