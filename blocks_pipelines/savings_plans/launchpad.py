"""A link that opens the Dagster launchpad of `<tenant>/sp_approvals` with the decision's config filled in.

The Dagster UI reads `config` and `assetSelection` from the query string of a job's `playground/setup` page and
opens a launchpad tab with them (ui-core LaunchpadSetupRoot). The link is relative to the UI, so it works on
whatever host and port the webserver runs; the code location is found in workspace.yaml, the way the webserver
finds it (one location for all tenants, or the shard `shard_<i>_of_<n>` that holds the tenant)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urlencode

import yaml

from blocks_pipelines.settings import REPO_ROOT

ASSET_JOB = "__ASSET_JOB"  # the implicit job every asset belongs to
REPOSITORY = "__repository__"  # the repository name Dagster gives a Definitions object


@lru_cache(maxsize=8)
def _locations(workspace: Path) -> tuple[tuple[str, str], ...]:
    """(attribute, location_name) of each python_module entry of blocks_pipelines.definitions."""
    try:
        entries = (yaml.safe_load(workspace.read_text()) or {}).get("load_from") or []
    except (OSError, yaml.YAMLError):
        return ()
    out = []
    for entry in entries:
        module = entry.get("python_module") if isinstance(entry, dict) else None
        if isinstance(module, dict) and module.get("module_name") == "blocks_pipelines.definitions":
            out.append((str(module.get("attribute", "defs")), str(module.get("location_name", "blocks"))))
    return tuple(out)


def location_of(tenant_id: str, workspace: Path = REPO_ROOT / "workspace.yaml") -> str | None:
    """The code location serving `tenant_id`, or None when workspace.yaml does not say."""
    from blocks_pipelines.definitions import shard_of  # the sharding rule lives with the shards

    for attribute, location in _locations(workspace):
        if attribute == "defs":
            return location
        if attribute.startswith("shard_") and "_of_" in attribute:
            i, n = attribute[len("shard_"):].split("_of_")
            if shard_of(tenant_id, int(n)) == int(i):
                return location
    return None


def launchpad_path(location: str, tenant_id: str, config_yaml: str) -> str:
    selection = [(f"assetSelection[0][assetKey][path][{i}]", part) for i, part in
                 enumerate((tenant_id, "sp_approvals"))]
    query = urlencode([("config", config_yaml), *selection], quote_via=quote)
    return f"/locations/{REPOSITORY}@{quote(location)}/jobs/{ASSET_JOB}/playground/setup?{query}"
