"""Tenant setup logic: registry entry, reload, one backfill per month, resume, rollback (the real webserver is in
test_connect_e2e)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
import yaml
from click.testing import CliRunner
from test_connect_support import make_tenant

from blocks_pipelines.connect.cli import tenants_setup
from blocks_pipelines.connect.dagster_api import DagsterApiError, LaunchedBackfill
from blocks_pipelines.connect.setup import setup_tenant
from blocks_pipelines.settings import get_settings
from blocks_pipelines.state import get_state_store
from blocks_pipelines.tenants.config import TenantConfigError, load_registry, load_tenant_file

NOW = datetime(2026, 11, 25, 12, 30, tzinfo=timezone.utc)


class FakeGateway:
    """In-memory Dagster for the setup logic's edge cases (the webserver tests cover the real API)."""

    location = "blocks"

    def __init__(self, fail_on_launch: int | None = None, reload_error: str | None = None):
        self.backfills: dict[str, str] = {}
        self.fail_on_launch = fail_on_launch
        self.reload_error = reload_error
        self.reloads = 0

    def reload(self):
        self.reloads += 1
        if self.reload_error:
            raise DagsterApiError(self.reload_error)

    def has_asset(self, key):
        return key[0] in {t.id for t in load_registry(get_settings().tenants_dir)}

    def launched_months(self, tenant_id):
        return dict(self.backfills)

    def launch_month(self, tenant_id, month):
        if self.fail_on_launch is not None and len(self.backfills) == self.fail_on_launch:
            raise DagsterApiError("webserver went away")
        self.backfills[month.billing_period] = f"bf-{month.billing_period}"
        return LaunchedBackfill(month.billing_period, self.backfills[month.billing_period])


def test_setup_registers_launches_each_month_once_and_audits(blocks_env):
    tenant = make_tenant(history_start=date(2026, 9, 15))
    gateway, progress = FakeGateway(), []

    first = setup_tenant(tenant, dagster=gateway, now=NOW, on_progress=progress.append)

    assert first.registry == "created"
    assert load_tenant_file(get_settings().tenants_dir / "newco.yaml") == tenant
    assert [b.billing_period for b in first.launched] == ["2026-09", "2026-10", "2026-11"]
    assert [(p.stage, p.done, p.total) for p in progress] == [
        ("registry", 1, 1),
        ("reload", 1, 1),
        ("backfill", 1, 3),
        ("backfill", 2, 3),
        ("backfill", 3, 3),
    ]
    second = setup_tenant(tenant, dagster=gateway, now=NOW)
    assert second.did_nothing_new and gateway.reloads == 2
    assert second.already_launched == {b.billing_period: b.backfill_id for b in first.launched}

    actions = [(e.action, e.result) for e in get_state_store().list_audit("newco/")]
    assert actions.count(("backfill.launch", "launched")) == 3
    assert ("tenant.registry_write", "created") in actions and ("tenant.registry_write", "unchanged") in actions
    assert actions.count(("dagster.reload", "ok")) == 2


def test_interrupted_setup_resumes_with_the_missing_months_only(blocks_env):
    tenant = make_tenant(history_start=date(2026, 7, 1))
    flaky = FakeGateway(fail_on_launch=2)
    with pytest.raises(DagsterApiError):
        setup_tenant(tenant, dagster=flaky, now=NOW)
    assert sorted(flaky.backfills) == ["2026-07", "2026-08"]

    flaky.fail_on_launch = None
    report = setup_tenant(tenant, dagster=flaky, now=NOW)

    assert report.registry == "unchanged"
    assert [b.billing_period for b in report.launched] == ["2026-09", "2026-10", "2026-11"]
    assert sorted(report.already_launched) == ["2026-07", "2026-08"]


def test_a_changed_tenant_updates_its_entry(blocks_env):
    gateway = FakeGateway()
    setup_tenant(make_tenant(history_start=date(2026, 11, 1)), dagster=gateway, now=NOW)
    changed = make_tenant(history_start=date(2026, 11, 1), region="eu-west-1")
    assert setup_tenant(changed, dagster=gateway, now=NOW).registry == "updated"
    assert load_tenant_file(get_settings().tenants_dir / "newco.yaml").cur_source.region == "eu-west-1"


def test_invalid_request_names_the_fields_and_writes_nothing(blocks_env):
    body = make_tenant().model_dump(mode="json")
    body["id"] = "New-Co"
    del body["guardrails"]
    with pytest.raises(TenantConfigError) as err:
        setup_tenant(body, dagster=FakeGateway(), now=NOW)
    assert "field 'id'" in str(err.value) and "field 'guardrails'" in str(err.value)
    assert sorted(p.stem for p in get_settings().tenants_dir.glob("*.yaml")) == ["acme_corp", "globex", "initech"]


def test_a_registry_dagster_could_not_load_is_rolled_back(blocks_env):
    broken = get_settings().tenants_dir / "broken.yaml"
    broken.write_text(yaml.safe_dump({"id": "broken"}))
    with pytest.raises(TenantConfigError):
        setup_tenant(make_tenant(), dagster=FakeGateway(), now=NOW)
    assert not (get_settings().tenants_dir / "newco.yaml").exists()


def test_reload_failure_is_audited_and_launches_nothing(blocks_env):
    gateway = FakeGateway(reload_error="Dagster could not reload code location 'blocks' (PythonError): boom")
    with pytest.raises(DagsterApiError, match="boom"):
        setup_tenant(make_tenant(), dagster=gateway, now=NOW)
    assert gateway.backfills == {}
    events = get_state_store().list_audit("newco/dagster")
    assert [(e.action, e.result) for e in events] == [("dagster.reload", "failed")]


def test_unreachable_dagster_says_where_it_looked(blocks_env):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = CliRunner().invoke(tenants_setup, ["--tenant", "acme_corp", "--dagster-url", f"http://127.0.0.1:{port}"])
    assert res.exit_code == 1
    assert "BLOCKS_DAGSTER_URL" in res.output
