"""The code's shape, checked: one place reads the environment, and core packages never import the edges."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("blocks_pipelines", "serving")
# Dagster's own home is process setup for the demo's webserver and daemon, not a platform setting.
ENV_WRITERS = {"blocks_pipelines/cli/demo.py", "blocks_pipelines/models/project.py"}


def _modules():
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            yield path.relative_to(REPO).as_posix(), ast.parse(path.read_text(), filename=str(path))


def _reads_environment(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "getenv")
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        ):
            lines.append(node.lineno)
    return lines


def test_only_settings_reads_the_environment():
    offenders = {
        name: lines
        for name, tree in _modules()
        if name != "blocks_pipelines/settings.py" and name not in ENV_WRITERS and (lines := _reads_environment(tree))
    }
    assert offenders == {}, "read it through blocks_pipelines.settings.get_settings() instead"


def test_the_platform_never_imports_the_serving_edge():
    offenders = []
    for name, tree in _modules():
        if not name.startswith("blocks_pipelines/"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "serving":
                offenders.append(f"{name}:{node.lineno}")
            elif isinstance(node, ast.Import) and any(a.name.split(".")[0] == "serving" for a in node.names):
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []
