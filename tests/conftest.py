"""Shared fixtures: an isolated BLOCKS_HOME per test and one moto server on 127.0.0.1 for the session."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _real_cur() -> Path:
    """The real-format CUR fixtures live in ../shared beside the checkout (never copied in). A clone made elsewhere
    (a temp dir) finds them beside the repository it was cloned from; BLOCKS_REAL_CUR overrides both."""
    roots = [REPO]
    origin = subprocess.run(["git", "-C", str(REPO), "remote", "get-url", "origin"], capture_output=True, text=True)
    if origin.returncode == 0 and Path(origin.stdout.strip()).is_dir():
        roots.append(Path(origin.stdout.strip()))
    candidates = [Path(os.environ["BLOCKS_REAL_CUR"])] if os.environ.get("BLOCKS_REAL_CUR") else []
    candidates += [(r.parent / "shared" / "data" / "real-cur").resolve() for r in roots]
    return next((c for c in candidates if c.is_dir()), candidates[0])


REAL_CUR = _real_cur()
DEMO_TENANTS = REPO / "assets_config" / "tenants"


@pytest.fixture
def blocks_env(tmp_path, monkeypatch):
    """A fresh BLOCKS_HOME, lake and assets config (with the three demo tenants) for one test."""
    home = tmp_path / "home"
    config = tmp_path / "assets_config"
    (config / "tenants").mkdir(parents=True)
    for f in DEMO_TENANTS.glob("*.yaml"):
        shutil.copy(f, config / "tenants" / f.name)
    monkeypatch.setenv("BLOCKS_HOME", str(home))
    monkeypatch.setenv("BLOCKS_ASSETS_CONFIG", str(config))
    monkeypatch.setenv("BLOCKS_LAKE_URI", str(home / "lake"))
    monkeypatch.setenv("BLOCKS_ENV", "local")
    for var in ("BLOCKS_S3_ENDPOINT_URL", "BLOCKS_DBT_TARGET", "BLOCKS_STATE_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    home.mkdir()
    return home


@pytest.fixture(scope="session")
def moto_server():
    """A moto server on 127.0.0.1 (S3, STS, DynamoDB, Glue, Athena, IAM...). Yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_server, monkeypatch):
    """Point boto3 at the moto server with fake credentials; returns the endpoint URL."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("BLOCKS_S3_ENDPOINT_URL", moto_server)
    return moto_server


@pytest.fixture(params=["sqlite", "dynamodb"])
def store_on_each_backend(request, blocks_env, monkeypatch):
    """A state store on each backend in turn: SQLite, then DynamoDB on the moto server with fresh tables."""
    import uuid

    from blocks_pipelines.state import get_state_store

    if request.param == "dynamodb":
        endpoint = request.getfixturevalue("aws_env")
        monkeypatch.setenv("BLOCKS_STATE_BACKEND", "dynamodb")
        monkeypatch.setenv("BLOCKS_DYNAMODB_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("BLOCKS_STATE_TABLE_PREFIX", f"t{uuid.uuid4().hex[:10]}")
    return get_state_store()
