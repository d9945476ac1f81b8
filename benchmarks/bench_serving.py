"""Serving benchmark: uvicorn on loopback, 32 concurrent keep-alive connections, a cheap load generator.

Targets: GET /api/spend over a year of hourly data at daily granularity p95 < 50 ms with zero errors;
Major Tom (POST /api/chat) first-token p95 < 200 ms.

The load generator shares the machine with the server, so it must cost little per request: wrk when installed
(`apt-get install wrk`), else raw asyncio streams in separate processes (benchmarks/http_load.py); never httpx, whose
~3-5 ms of client CPU per request used to be most of the measured latency. Every response is checked: a first pass
validates each distinct answer (tenant, query echo, totals vs series; Major Tom's grounding), and under load each
response must be byte-identical to the validated answer for that tenant and request.

    python -m benchmarks.bench_serving                 # 365 days, 2 tenants, 10 s per phase
    BENCH_SERVING_SECONDS=30 BENCH_SERVING_DAYS=730 python -m benchmarks.bench_serving
    BENCH_SERVING_CLIENT=wrk|lean (default: wrk when installed), BENCH_SERVING_CLIENT_PROCS=1|2 (lean client
    processes), BENCH_SERVING_WORKERS (uvicorn workers, default 1)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

from benchmarks.http_load import (
    Job,
    Outcome,
    drive,
    drive_processes,
    http_request,
    process_cpu_seconds,
    run_wrk,
    wrk_available,
)

REPO = Path(__file__).resolve().parent.parent
CONCURRENCY = 32
HOST = "127.0.0.1"
TENANTS = {"acme_corp": 1.0, "globex": 2.0}
GROUPINGS = [
    "",
    "&group_by=service",
    "&group_by=account",
    "&group_by=region",
    "&group_by=charge_class",
    "&group_by=tag:user:team",
    "&group_by=service&cost_type=unblended",
    "&service=AmazonEC2&group_by=account",
]
QUESTIONS = {
    "Where did the savings come from?": "savings_source",
    "What should I do next?": "next_actions",
    "What drives my cost?": "cost_drivers",
}
FIRST_TOKEN = b"event: token"
MARKER = re.compile(r"\[(\d+)\]")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def prepare(root: Path, days: int) -> dict[str, str]:
    from serving.testing import write_fixture_lake

    home, config, lake = root / "home", root / "assets_config", root / "lake"
    (config / "tenants").mkdir(parents=True)
    home.mkdir()
    for f in (REPO / "assets_config" / "tenants").glob("*.yaml"):
        shutil.copy(f, config / "tenants" / f.name)
    t = time.perf_counter()
    write_fixture_lake(lake, TENANTS, days=days)
    rows = _count_rows(lake)
    print(
        f"fixture marts: {len(TENANTS)} tenants x {days} days hourly = {rows:,} spend_hourly rows "
        f"({time.perf_counter() - t:.1f} s)"
    )
    env = dict(
        os.environ,
        BLOCKS_HOME=str(home),
        BLOCKS_ASSETS_CONFIG=str(config),
        BLOCKS_LAKE_URI=str(lake),
        BLOCKS_ENV="local",
        BLOCKS_CHAT_BURST="1000000",
        BLOCKS_CHAT_PER_MINUTE="1000000",
    )
    for var in ("BLOCKS_COGNITO_USER_POOL_ID", "BLOCKS_BEDROCK_MODEL_ID", "BLOCKS_S3_ENDPOINT_URL"):
        env.pop(var, None)
    return env


def _count_rows(lake: Path) -> int:
    import duckdb

    return duckdb.sql(f"SELECT count(*) FROM read_parquet('{lake}/marts/spend_hourly/*/*.parquet')").fetchall()[0][0]


def tokens(home: Path) -> dict[str, str]:
    from serving.auth.dev_issuer import DevIssuer

    issuer = DevIssuer(home)
    return {t: issuer.issue(t, ["viewer"], ttl=3600) for t in TENANTS}


def check_spend(job: Job, body: bytes, start: date, end: date) -> str | None:
    """What is wrong with a /api/spend answer, or None: right tenant, the query echoed back, a full year of days,
    totals that add up."""
    try:
        r = json.loads(body)
    except ValueError:
        return "not JSON"
    want_group = re.search(r"group_by=([^&]+)", job.label)
    days = {pt["period_start"] for pt in r["series"]}
    if r["tenant_id"] != job.tenant or r["data_status"] != "ready" or r["sample"]:
        return f"tenant/status {r['tenant_id']}/{r['data_status']}/sample={r['sample']}"
    if (r["query"]["start"], r["query"]["end"]) != (start.isoformat(), end.isoformat()):
        return f"range {r['query']['start']}..{r['query']['end']}"
    if r["query"]["group_by"] != (want_group.group(1) if want_group else None):
        return f"group_by {r['query']['group_by']}"
    if len(days) != (end - start).days + 1 or min(days) < start.isoformat() or max(days) > end.isoformat():
        return f"{len(days)} days in the series"
    series_total = sum(pt["cost"] for pt in r["series"])
    if abs(series_total - r["totals"]["cost"]) > 0.01 + 1e-9 * series_total:
        return f"series sum {series_total:.2f} != totals.cost {r['totals']['cost']:.2f}"
    if r["totals"]["by_group"] and abs(sum(g["cost"] for g in r["totals"]["by_group"]) - r["totals"]["cost"]) > 0.01:
        return "by_group does not add up to totals.cost"
    return None


def sse_events(body: bytes) -> list[tuple[str, dict]]:
    events = []
    for block in body.decode().strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def check_chat(job: Job, body: bytes) -> str | None:
    """What is wrong with a Major Tom stream, or None: the expected intent answered (not refused), the tokens make up
    the final text, and every [n] in it is a reference sent before the token that cites it, backed by facts."""
    try:
        events = sse_events(body)
    except (ValueError, KeyError):
        return "not a server-sent event stream"
    (first, meta), (last, done) = events[0], events[-1]
    if first != "meta" or last != "done":
        return f"stream runs {first}..{last}"
    if meta["intent"] != QUESTIONS[job.label] or meta["refused"] or meta["data_status"] != "ready":
        return f"meta {meta}"
    sent: set[int] = set()
    text = ""
    for kind, data in events[1:-1]:
        if kind == "reference":
            sent.add(data["n"])
        elif kind == "token":
            text += data["text"]
            if not {int(n) for n in MARKER.findall(text)} <= sent:
                return "a token cites a reference not sent yet"
    if text != done["text"] or sent != {r["n"] for r in done["references"]}:
        return "tokens or references differ from the done event"
    if not done["facts"] or not MARKER.search(text):
        return "an answer without referenced facts"
    return None


def validated(jobs: list[Job], outcome: Outcome, check) -> list[Job]:
    """The jobs with their expected body set to the first-pass answer, after `check` accepted it."""
    problems = []
    for job in jobs:
        body = outcome.bodies.get(job)
        problem = "no answer" if body is None else check(job, body)
        if problem:
            problems.append(f"{job.tenant} {job.label}: {problem}")
    if problems or outcome.errors:
        raise SystemExit("wrong answers, not benchmarking them:\n  " + "\n  ".join(problems + list(outcome.errors)))
    return [Job(job.tenant, job.label, job.request, outcome.bodies[job]) for job in jobs]


def report(name: str, outcome: Outcome, server_cpu_s: float, load: tuple[float, float], target_ms: float) -> None:
    done = max(1, outcome.ok + sum(outcome.errors.values()))
    errors = sum(outcome.errors.values())
    if not outcome.ok:
        print(f"{name}: no successful requests, errors={dict(outcome.errors)}")
        return
    p95 = outcome.percentile(95)
    verdict = "OK" if p95 < target_ms and errors == 0 else "MISSED"
    print(
        f"{name:<42} n={outcome.ok:>6}  p50={outcome.percentile(50):6.1f}  p95={p95:6.1f}  "
        f"p99={outcome.percentile(99):6.1f} ms  errors={errors}  {outcome.ok / outcome.seconds:5.0f} req/s  "
        f"CPU/req server {server_cpu_s * 1000 / done:4.2f} client {outcome.client_cpu_s * 1000 / done:4.2f} ms  "
        f"| target p95 < {target_ms:.0f} ms, 0 errors: {verdict}"
    )
    print(
        f"{'':<42} client: {outcome.client}; load average {load[0]:.2f} before, {load[1]:.2f} after "
        f"({os.cpu_count()} cores shared by client and server)"
    )
    for what, n in outcome.errors.most_common(5):
        print(f"{'':<42} error x{n}: {what}")


def measured(pid: int, run) -> tuple[Outcome, float, tuple[float, float]]:
    """Run a phase; also return the server's CPU seconds spent in it and the 1-minute load before and after."""
    load0, cpu0 = os.getloadavg()[0], process_cpu_seconds(pid)
    outcome = run()
    return outcome, process_cpu_seconds(pid) - cpu0, (load0, os.getloadavg()[0])


def main() -> int:
    days = int(os.environ.get("BENCH_SERVING_DAYS", "365"))
    seconds = float(os.environ.get("BENCH_SERVING_SECONDS", "10"))
    workers = os.environ.get("BENCH_SERVING_WORKERS", "1")
    procs = int(os.environ.get("BENCH_SERVING_CLIENT_PROCS", "2"))
    client = os.environ.get("BENCH_SERVING_CLIENT") or ("wrk" if wrk_available() else "lean")
    if client == "wrk" and not wrk_available():
        raise SystemExit("BENCH_SERVING_CLIENT=wrk but wrk is not installed (apt-get install wrk)")
    root = Path(tempfile.mkdtemp(prefix="bench_serving_"))
    proc = None
    try:
        env = prepare(root, days)
        sys.path.insert(0, str(REPO))
        toks = tokens(root / "home")
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "serving.app:create_app",
                "--factory",
                "--host",
                HOST,
                "--port",
                str(port),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--log-level",
                "warning",
                "--workers",
                workers,
                "--no-access-log",
            ],
            cwd=REPO,
            env=env,
        )
        base = f"http://{HOST}:{port}"
        _wait_healthy(base, proc)
        print(
            "startup warm-up (snapshots, dashboard and Major Tom aggregates) done "
            f"{_wait_idle(proc.pid):.1f} s after healthy"
        )
        from serving.testing import yesterday

        end = yesterday()
        start = end - timedelta(days=min(days, 365) - 1)
        paths = [f"/api/spend?start={start}&end={end}&granularity=day{g}" for g in GROUPINGS]
        print(f"uvicorn: {workers} worker(s), uvloop + httptools, access log off; {os.cpu_count()} cores")

        spend = [Job(t, path, http_request("GET", path, HOST, port, toks[t])) for t in TENANTS for path in paths]
        first, cpu, load = measured(proc.pid, lambda: asyncio.run(drive(HOST, port, spend, len(spend), None)))
        report("/api/spend cold (first request per query)", first, cpu, load, 600)
        spend = validated(spend, first, lambda job, body: check_spend(job, body, start, end))

        name = f"/api/spend {min(days, 365)} days, daily, {CONCURRENCY} conns"
        if client == "wrk":
            by_tenant = {t: [("GET", j.label, toks[t], j.expected) for j in spend if j.tenant == t] for t in TENANTS}
            run = lambda: run_wrk(base, by_tenant, CONCURRENCY, seconds, root)  # noqa: E731
        else:
            run = lambda: drive_processes(HOST, port, spend, CONCURRENCY, seconds, procs)  # noqa: E731
        report(name, *measured(proc.pid, run), 50)

        chat = [
            Job(t, q, http_request("POST", "/api/chat", HOST, port, toks[t], json.dumps({"message": q}).encode()))
            for t in TENANTS
            for q in QUESTIONS
        ]
        first, _, _ = measured(proc.pid, lambda: asyncio.run(drive(HOST, port, chat, len(chat), None, FIRST_TOKEN)))
        chat = validated(chat, first, check_chat)
        run = lambda: drive_processes(HOST, port, chat, CONCURRENCY, seconds, procs, FIRST_TOKEN)  # noqa: E731
        report(f"Major Tom first token, {CONCURRENCY} conns", *measured(proc.pid, run), 200)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
    return 0


def _wait_healthy(base: str, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"uvicorn exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not become healthy in 30 s")


def _wait_idle(pid: int, timeout: float = 60.0) -> float:
    """Wait until the server's background warm-up is over (its CPU goes quiet), so the phases measure requests."""
    t0 = time.perf_counter()
    last = process_cpu_seconds(pid)
    while time.perf_counter() - t0 < timeout:
        time.sleep(0.3)
        now = process_cpu_seconds(pid)
        if now - last < 0.02:
            break
        last = now
    return time.perf_counter() - t0


if __name__ == "__main__":
    sys.exit(main())
