"""The dbt project on disk and its parsed manifest.

The manifest is produced once by `dbt parse` and cached under dbt_project/target/manifests/<hash>/ where the hash
covers every project file, so an edit re-parses and an unchanged project never does. One parsed manifest serves
every tenant: per-tenant values are vars, which only matter when dbt runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from blocks_pipelines.settings import get_settings

PROJECT_FILE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".md")
PROJECT_SUBDIRS = ("models", "macros", "tests", "seeds")

# The marts other domains read, in build order; each is exported to the lake after a build.
MARTS = (
    "spend_hourly",
    "spend_daily",
    "savings_projection",
    "sp_eligible_usage_hourly",
    "sp_position_hourly",
    "recommendations",
    "data_sources_daily",
    "savings_ledger",
)
HOURLY_MARTS = ("spend_hourly", "sp_eligible_usage_hourly", "sp_position_hourly")


def project_dir() -> Path:
    return get_settings().dbt_project_dir


def project_files(root: Path) -> list[Path]:
    files = [root / "dbt_project.yml", root / "profiles.yml"]
    for sub in PROJECT_SUBDIRS:
        files += sorted(p for p in (root / sub).rglob("*") if p.suffix in PROJECT_FILE_SUFFIXES)
    return files


def project_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in project_files(root):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_dbt_env() -> None:
    """profiles.yml reads BLOCKS_HOME from the environment: make it the settings' home when unset."""
    os.environ.setdefault("BLOCKS_HOME", str(get_settings().home))


def parse_vars() -> dict[str, Any]:
    """Vars for `dbt parse`: any valid tenant works, the manifest's structure does not depend on it."""
    return {"tenant_id": "manifest_parse"}


def ensure_manifest(root: Path | None = None) -> Path:
    """Path of a manifest.json matching the project files, running `dbt parse` only when none exists yet."""
    root = root or project_dir()
    settings = get_settings()
    # Materializations differ per engine (views vs ephemeral), so each target has its own manifest.
    target = root / "target" / "manifests" / f"{settings.dbt_target}-{project_hash(root)}"
    manifest = target / "manifest.json"
    if manifest.exists():
        return manifest
    from dbt.cli.main import dbtRunner

    ensure_dbt_env()
    result = dbtRunner().invoke(
        [
            "parse",
            "--project-dir",
            str(root),
            "--profiles-dir",
            str(root),
            "--target-path",
            str(target),
            "--target",
            settings.dbt_target,
            "--vars",
            json.dumps(parse_vars()),
            "--no-partial-parse",
            "--quiet",
        ]
    )
    if not result.success or not manifest.exists():
        raise RuntimeError(f"dbt parse of {root} failed: {result.exception or 'see dbt output above'}")
    return manifest


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def load_manifest(root: Path | None = None) -> dict[str, Any]:
    """The parsed manifest as a dict, loaded once per process and shared by every tenant's definitions."""
    return _load(str(ensure_manifest(root)))
