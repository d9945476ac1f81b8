"""The proposal as a back-office person sees it in the Dagster UI, rendered by a headless Chromium: the live status
after a decision, and the approve hint intact (the config to paste, the link to the sp_approvals asset).

Runs a real dagster-webserver over the tenant definitions and a persistent instance; skipped where Chromium is not
installed (Debian: apt-get install chromium)."""

from __future__ import annotations

import html
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from test_sp_defs import T, lake, latest_metadata, run  # noqa: F401 (fixtures)

from blocks_pipelines.savings_plans import defs as sp_defs
from blocks_pipelines.settings import REPO_ROOT
from blocks_pipelines.state import get_state_store
from sp_purchase_helpers import tenant

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(1)
    return False


def dom(url: str) -> str:
    """The page's DOM after its scripts ran (the Dagster UI is a single-page app fed by GraphQL)."""
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=30000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout


def text(page: str) -> str:
    body = re.sub(r"<script.*?</script>|<style.*?</style>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def dom_until(url: str, expected: str, timeout_s: float = 120) -> str:
    """Retried while the webserver still loads the code location."""
    deadline, page = time.monotonic() + timeout_s, ""
    while time.monotonic() < deadline:
        page = dom(url)
        if expected in text(page):
            return page
        time.sleep(2)
    raise AssertionError(f"{expected!r} not on {url}: {text(page)[:2000]}")


@pytest.fixture
def webserver(lake, tmp_path, monkeypatch):  # noqa: F811
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: blocks_pipelines.definitions\n"
        f"      attribute: defs\n      location_name: blocks\n      working_directory: {REPO_ROOT}\n"
    )
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    log = (tmp_path / "webserver.log").open("wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster-webserver"),
            "-w",
            str(workspace),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        assert _up(f"http://127.0.0.1:{port}/server_info", 180), (tmp_path / "webserver.log").read_text()[-3000:]
        yield f"http://127.0.0.1:{port}", dg.DagsterInstance.get()
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def test_the_proposal_page_shows_the_live_status_and_an_intact_approve_hint(webserver):
    base, instance = webserver
    defs = sp_defs.build_sp_defs(tenant())
    run(defs, instance, ["sp_proposals"])
    pid = latest_metadata(instance, "sp_proposals")["proposal_id"]
    hourly = get_state_store().get_proposal(pid).hourly_commitment

    page = dom_until(f"{base}/assets/{T}/sp_proposal_status", pid)
    shown = text(page)
    assert "PendingApproval" in shown and "not decided" in shown
    # the config to paste, every part of it on the page (nothing taken for an HTML tag)
    for part in (
        f"{T}__sp_approvals:",
        f"proposal_id: {pid}",
        "decision: approve # or reject",
        'approver: "" # your name, required',
        f"confirm_hourly_commitment: {hourly:.3f}",
    ):
        assert part in shown, part
    # the link to the approvals asset, whose launchpad takes that config
    assert re.search(rf'href="/assets/{T}/sp_approvals"', page), "no link to the sp_approvals asset"
    assert "Materialize" in text(dom_until(f"{base}/assets/{T}/sp_approvals", "sp_approvals"))

    run(
        defs,
        instance,
        ["sp_approvals"],
        {
            "ops": {
                f"{T}__sp_approvals": {
                    "config": {"proposal_id": pid, "approver": "alice", "confirm_hourly_commitment": round(hourly, 3)}
                }
            }
        },
    )
    live = text(dom_until(f"{base}/assets/{T}/sp_proposal_status", "approve by alice"))
    assert "Approved" in live and "Nothing to decide: the proposal is Approved" in live
    assert 'approver: ""' not in live  # no approve hint left for a decided proposal
    events = text(dom_until(f"{base}/assets/{T}/sp_proposals?view=events", f"{pid} is now Approved"))
    assert "decided_by approve by alice" in events
