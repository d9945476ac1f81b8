"""Tenant onboarding: registry entry -> Dagster reload -> one backfill per billing month. Safe to run again.

`setup_tenant(...)` is what `blocks tenants setup` and `POST /api/tenant/setup` call. Running it twice launches
nothing new: months already launched are found in Dagster by the backfill tags set here (a failed or canceled month
is launched again). Every step is written to the state store's audit log.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from blocks_pipelines.connect.backfill import MonthRange, backfill_months
from blocks_pipelines.connect.dagster_api import (
    DagsterApiError,
    DagsterGateway,
    LaunchedBackfill,
    client_from_url,
)
from blocks_pipelines.settings import get_settings
from blocks_pipelines.tenants.config import TenantConfig, TenantConfigError, dump_tenant, load_registry

DEFAULT_ACTOR = "blocks-setup"
RegistryChange = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class SetupProgress:
    stage: Literal["registry", "reload", "backfill"]
    done: int
    total: int
    message: str


@dataclass
class SetupReport:
    tenant_id: str
    registry: RegistryChange
    registry_path: str
    months: int  # billing months from history_start to now
    launched: list[LaunchedBackfill] = field(default_factory=list)
    already_launched: dict[str, str] = field(default_factory=dict)  # billing month -> backfill id

    @property
    def did_nothing_new(self) -> bool:
        return self.registry == "unchanged" and not self.launched

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant_id": self.tenant_id,
            "registry": self.registry,
            "registry_path": self.registry_path,
            "months": self.months,
            "launched": [vars(r) for r in self.launched],
            "already_launched": self.already_launched,
        }


def dagster_gateway_from_env() -> DagsterGateway:
    """The webserver at BLOCKS_DAGSTER_URL (default http://127.0.0.1:3000)."""
    return DagsterGateway(client_from_url(get_settings().dagster_url))


def coerce_tenant(tenant: TenantConfig | Mapping[str, Any], source: str = "tenant setup request") -> TenantConfig:
    """A TenantConfig from an API body or parsed YAML; errors name each bad field."""
    if isinstance(tenant, TenantConfig):
        return tenant
    try:
        return TenantConfig.model_validate(dict(tenant))
    except ValidationError as exc:
        problems = [f"field '{'.'.join(str(p) for p in e['loc']) or '(root)'}': {e['msg']}" for e in exc.errors()]
        raise TenantConfigError(Path(source), problems) from exc


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)  # no .yaml suffix: never read as a tenant
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_registry_entry(tenant: TenantConfig, tenants_dir: Path) -> tuple[RegistryChange, Path]:
    """Write assets_config/tenants/{id}.yaml, then load the whole registry; on any error the old file comes back,
    so a bad request can never leave Dagster with a registry it cannot load."""
    tenants_dir.mkdir(parents=True, exist_ok=True)
    path = tenants_dir / f"{tenant.id}.yaml"
    text = dump_tenant(tenant)
    previous = path.read_text() if path.exists() else None
    if previous is not None and _same_tenant(previous, tenant):
        return "unchanged", path
    _write_atomic(path, text)
    try:
        load_registry(tenants_dir)
    except TenantConfigError:
        if previous is None:
            path.unlink()
        else:
            _write_atomic(path, previous)
        raise
    return ("created" if previous is None else "updated"), path


def _same_tenant(text: str, tenant: TenantConfig) -> bool:
    """Same tenant whatever the file's comments or key order."""
    try:
        return TenantConfig.model_validate(yaml.safe_load(text)) == tenant
    except (ValidationError, yaml.YAMLError, TypeError):
        return False


def setup_tenant(
    tenant: TenantConfig | Mapping[str, Any],
    *,
    dagster: DagsterGateway | None = None,
    now: datetime | None = None,
    actor: str = DEFAULT_ACTOR,
    on_progress: Callable[[SetupProgress], None] | None = None,
) -> SetupReport:
    """Register `tenant`, make Dagster load it and launch its history backfill, one per billing month.

    tenant: a TenantConfig or its dict form (an API body); invalid input raises TenantConfigError naming the fields.
    dagster: where to reload and launch; default: the webserver at BLOCKS_DAGSTER_URL.
    now: the end of the backfill (default: the current time; the last complete hour is the last partition).
    Raises DagsterApiError when Dagster cannot reload or does not know the tenant's assets after reloading.
    """
    from blocks_pipelines.state import get_state_store

    tenant = coerce_tenant(tenant)
    store = get_state_store()
    notify = on_progress or (lambda _p: None)
    gateway = dagster or dagster_gateway_from_env()

    change, path = write_registry_entry(tenant, get_settings().tenants_dir)
    store.append_audit(actor, "tenant.registry_write", f"{tenant.id}/registry", change, {"path": str(path)})
    notify(SetupProgress("registry", 1, 1, f"registry entry {path.name}: {change}"))

    _reload(gateway, tenant, store, actor)
    notify(SetupProgress("reload", 1, 1, f"Dagster code location {gateway.location!r} reloaded"))

    months = backfill_months(tenant, now)
    report = SetupReport(tenant.id, change, str(path), len(months))
    report.already_launched = {
        bp: bf for bp, bf in gateway.launched_months(tenant.id).items() if bp in {m.billing_period for m in months}
    }
    for i, month in enumerate(months, 1):
        if month.billing_period not in report.already_launched:
            report.launched.append(_launch(gateway, tenant, month, store, actor))
        notify(SetupProgress("backfill", i, len(months), f"{month.billing_period} ({month.hours} hours)"))
    store.append_audit(
        actor,
        "tenant.setup",
        f"{tenant.id}/setup",
        "ok",
        {"registry": change, "months": len(months), "launched": len(report.launched),
         "already_launched": len(report.already_launched)},
    )  # fmt: skip
    return report


def _reload(gateway: DagsterGateway, tenant: TenantConfig, store: Any, actor: str) -> None:
    asset_key = [tenant.id, "cur_line_items"]
    try:
        gateway.reload()
        if not gateway.has_asset(asset_key):
            raise DagsterApiError(
                f"Dagster reloaded code location {gateway.location!r} but has no asset {asset_key}: check that the "
                f"location loads tenants from {get_settings().tenants_dir} (BLOCKS_ASSETS_CONFIG) "
                "and that the ingestion assets are defined for every tenant."
            )
    except DagsterApiError as exc:
        store.append_audit(actor, "dagster.reload", f"{tenant.id}/dagster", "failed", {"error": str(exc)})
        raise
    store.append_audit(actor, "dagster.reload", f"{tenant.id}/dagster", "ok", {"location": gateway.location})


def _launch(
    gateway: DagsterGateway, tenant: TenantConfig, month: MonthRange, store: Any, actor: str
) -> LaunchedBackfill:
    launched = gateway.launch_month(tenant.id, month)
    store.append_audit(
        actor,
        "backfill.launch",
        f"{tenant.id}/backfill/{month.billing_period}",
        "launched",
        {"backfill_id": launched.backfill_id, "range_start": month.start_key, "range_end": month.end_key},
    )
    return launched
