"""`blocks demo`: sample CUR for the demo tenants, the whole pipeline in-process, then the Dagster UI and the API."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click

from blocks_pipelines.settings import REPO_ROOT, get_settings
from blocks_pipelines.tenants.config import load_registry

DAGSTER_PORT = 3000
API_PORT = 8000


# A month's delivery is one run over 744 hourly partitions. By default Dagster writes one "planned" event per
# partition when it creates the run: measured on a 200k-row month with the SQLite instance, 19.6-25.5 s per run
# instead of 12.6-14.3 s with one planned event for the range (the ingestion itself: 0.5 s). The price: a failed
# run leaves its partitions showing their last success instead of "failed", which is what the lake holds (bad input
# never replaces data); the failed run itself shows on the asset. Processes that create runs read it: this one,
# `dagster dev` started from here or from the Makefile, and in production the webserver and the daemon (set it there
# too).
DAGSTER_RUN_ENV = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}


def prepare_dagster_home() -> Path:
    """A persistent instance (runs stay visible in the UI) configured by the repository's dagster.yaml."""
    home = Path(os.environ.get("DAGSTER_HOME") or get_settings().home / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    for name, value in DAGSTER_RUN_ENV.items():
        os.environ.setdefault(name, value)
    return home


def _wait_http(url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return True
        except OSError:
            time.sleep(1)
    return False


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _pending_proposals(tenants) -> str:
    from blocks_pipelines.state import ProposalStatus, get_state_store

    store = get_state_store()
    from blocks_pipelines.savings_plans.purchase.terms import purchase_terms

    lines = ["Savings Plans proposals awaiting back-office approval:"]
    for t in tenants:
        for p in store.list_proposals(t.id, [ProposalStatus.pending_approval]):
            lines.append(f"  {t.id}: {p.proposal_id}: approving buys {purchase_terms(p).summary()}")
            lines.append(
                f"    approve: .venv/bin/blocks sp approve {p.proposal_id} --approver NAME "
                f"(or from {t.id}/sp_proposal_status in the Dagster UI)"
            )
    return "\n".join(lines) if len(lines) > 1 else "No Savings Plans proposal is awaiting approval."


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_ports(dagster_port: int, api_port: int) -> None:
    """Fail before the long build when a port is taken (another demo, a `dagster dev` left running)."""
    if dagster_port == api_port:
        raise click.UsageError(f"--dagster-port and --api-port are both {api_port}: pick two ports")
    for flag, port in (("--dagster-port", dagster_port), ("--api-port", api_port)):
        if not _port_free(port):
            raise click.UsageError(
                f"port {port} on 127.0.0.1 is in use: stop what holds it or pass {flag} with a free port"
            )


def _open_alerts(tenants) -> str:
    from blocks_pipelines.state import get_state_store
    from blocks_pipelines.state.alert_models import AlertStatus

    store = get_state_store()
    lines = ["Open alerts (GET /api/anomalies; sent to $BLOCKS_HOME/alerts/<tenant>.jsonl):"]
    for t in tenants:
        for a in store.list_alerts(t.id, [AlertStatus.open])[:3]:
            lines.append(f"  {t.id}: [{a.severity.value}] {a.message}")
    return "\n".join(lines) if len(lines) > 1 else "No open alert."


@click.command()
@click.option("--no-serve", is_flag=True, help="Build everything, then exit instead of starting the UI and the API.")
@click.option(
    "--dagster-port",
    default=DAGSTER_PORT,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port of the Dagster UI.",
)
@click.option(
    "--api-port", default=API_PORT, show_default=True, type=click.IntRange(1, 65535), help="Port of the Blocks API."
)
@click.option("--months", default=3, show_default=True, help="Months of sample CUR per tenant.")
@click.option("--seed", default=42, show_default=True, help="Generator seed (same seed, same data).")
def demo(no_serve: bool, dagster_port: int, api_port: int, months: int, seed: int) -> None:
    """Generate sample CUR for the demo tenants, materialize every asset, start Dagster (:3000) and the API (:8000).

    Safe to run twice: generation is deterministic and skipped when present, every write replaces its slice."""
    from blocks_pipelines.in_process import generate_demo_sources, materialize_all

    if not no_serve:
        check_ports(dagster_port, api_port)
    settings = get_settings()
    dagster_home = prepare_dagster_home()
    tenants = load_registry(settings.tenants_dir)
    click.echo(f"Blocks demo: {len(tenants)} tenants, BLOCKS_HOME={settings.home}, DAGSTER_HOME={dagster_home}")
    generate_demo_sources(tenants, months=months, seed=seed, echo=click.echo)
    summary = materialize_all(tenants, echo=click.echo)
    click.echo(summary)
    failed = "FAILED" in summary.splitlines()[0]
    click.echo(_pending_proposals(tenants))
    click.echo(_open_alerts(tenants))
    if no_serve:
        if failed:
            raise SystemExit(1)
        return

    logs = settings.home / "logs"
    bin_dir = Path(sys.executable).parent
    os.environ.setdefault("BLOCKS_DAGSTER_URL", f"http://127.0.0.1:{dagster_port}")  # the API's onboarding calls it
    procs = [
        _start(
            [str(bin_dir / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(dagster_port)],
            logs / "dagster.log",
        ),
        _start([str(bin_dir / "blocks"), "serve", "--host", "127.0.0.1", "--port", str(api_port)], logs / "api.log"),
    ]
    ui_ok = _wait_http(f"http://127.0.0.1:{dagster_port}/server_info", 180)
    api_ok = _wait_http(f"http://127.0.0.1:{api_port}/healthz", 60)
    token = (
        subprocess.run(
            [str(bin_dir / "blocks"), "dev-token", "--tenant", tenants[0].id, "--role", "admin"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if tenants
        else ""
    )
    first = tenants[0].id if tenants else "ID"
    click.echo(f"""
Where to look
  Dagster UI   http://127.0.0.1:{dagster_port}   {"up" if ui_ok else "NOT UP: see " + str(logs / "dagster.log")}
               asset groups: {", ".join(t.id for t in tenants)}; each group's sp_proposal_status shows its
               proposals as they are now; a pending one with what approving buys and the config to approve it.
  API          http://127.0.0.1:{api_port}/docs   {"up" if api_ok else "NOT UP: see " + str(logs / "api.log")}
               curl -H "Authorization: Bearer $(.venv/bin/blocks dev-token --tenant {first})" \\
                    "http://127.0.0.1:{api_port}/api/projection?period=month"
  Dev token    {token[:40]}... (for {tenants[0].id if tenants else "-"})
  Logs         {logs}
Ctrl-C stops both.""")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
