"""Cheap HTTP/1.1 load for the serving benchmark, so the figures measure the server rather than the client.

Two generators, both closed-loop (each connection sends its next request when the previous answer is complete):
- wrk (C, Lua-scripted) when it is installed: the requests, the tenant per wrk thread and the exact bodies a correct
  answer has are written into a Lua script; any other status or body counts as an error.
- a lean asyncio client otherwise, and for Major Tom (wrk cannot time the first event of a stream): raw streams with
  keep-alive, pre-built request bytes, chunked decoding, in separate processes that start sending together.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import re
import resource
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)")
_WRK_RESULT = re.compile(r"WRK_RESULT (.*)")


@dataclass(frozen=True)
class Job:
    tenant: str
    label: str  # what is asked, for error messages
    request: bytes  # the complete HTTP/1.1 request
    expected: bytes | None = None  # the exact body of a correct answer; None accepts any 200


@dataclass
class Outcome:
    client: str
    latencies_ms: list[float] = field(default_factory=list)  # empty when the client reports percentiles itself
    errors: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    client_cpu_s: float = 0.0
    percentiles_ms: dict[int, float] = field(default_factory=dict)
    ok: int = 0
    bodies: dict[Job, bytes] = field(default_factory=dict)  # answers to jobs with no expected body yet

    def percentile(self, q: int) -> float:
        if q in self.percentiles_ms:
            return self.percentiles_ms[q]
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def http_request(method: str, path: str, host: str, port: int, token: str, body: bytes | None = None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Authorization: Bearer {token}"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


# --- lean asyncio client ---------------------------------------------------------------------------------------


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, marker: bytes | None
) -> tuple[int, bytes, float, bool]:
    """One request on an open connection: (status, body, seconds until `marker` arrived or the body was complete,
    whether the server keeps the connection open)."""
    t0 = time.perf_counter()
    writer.write(request)
    head = (await reader.readuntil(b"\r\n\r\n")).lower()
    status = int(head[9:12])
    seen_at = None
    if b"\r\ntransfer-encoding: chunked" in head:
        parts: list[bytes] = []
        tail = b""
        while size := int((await reader.readline()).split(b";")[0], 16):
            data = (await reader.readexactly(size + 2))[:-2]
            if marker is not None and seen_at is None and marker in tail + data:
                seen_at = time.perf_counter()
            tail = data[-len(marker) :] if marker else b""
            parts.append(data)
        while (await reader.readline()) not in (b"\r\n", b""):  # trailers
            pass
        body = b"".join(parts)
    else:
        m = _CONTENT_LENGTH.search(head)
        body = await reader.readexactly(int(m.group(1))) if m else b""
    done = time.perf_counter()
    if marker is not None and seen_at is None and marker in body:
        seen_at = done
    return status, body, (seen_at or done) - t0, b"\r\nconnection: close" not in head


async def _connection(
    host: str,
    port: int,
    jobs: Iterator[Job],
    marker: bytes | None,
    deadline: list[float],
    started: asyncio.Event,
    ready: list[int],
    out: Outcome,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    ready[0] += 1
    await started.wait()
    try:
        for job in jobs:
            if time.perf_counter() > deadline[0]:
                break
            try:
                status, body, seconds, keep = await exchange(reader, writer, job.request, marker)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                out.errors[f"{type(exc).__name__} on {job.label}"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            if status != 200:
                out.errors[f"HTTP {status} on {job.label}"] += 1
            elif job.expected is not None and body != job.expected:
                out.errors[f"unexpected body on {job.label} ({job.tenant})"] += 1
            else:
                out.ok += 1
                out.latencies_ms.append(seconds * 1000)
                if job.expected is None:
                    out.bodies[job] = body
            if not keep:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def drive(
    host: str,
    port: int,
    jobs: list[Job],
    connections: int,
    seconds: float | None,
    marker: bytes | None = None,
    barrier=None,
) -> Outcome:
    """`connections` keep-alive connections working through `jobs` (once, or round and round for `seconds`)."""
    out = Outcome(client="lean asyncio")
    source: Iterator[Job] = itertools.cycle(jobs) if seconds is not None else iter(jobs)
    deadline = [float("inf")]
    started, ready = asyncio.Event(), [0]
    tasks = [
        asyncio.create_task(_connection(host, port, source, marker, deadline, started, ready, out))
        for _ in range(connections)
    ]
    while ready[0] < connections:
        await asyncio.sleep(0.005)
    if barrier is not None:  # every client process starts sending at the same moment
        await asyncio.get_running_loop().run_in_executor(None, barrier.wait)
    t0 = time.perf_counter()
    if seconds is not None:
        deadline[0] = t0 + seconds
    started.set()
    await asyncio.gather(*tasks)
    out.seconds = time.perf_counter() - t0
    return out


def _process(host, port, jobs, connections, seconds, marker, barrier, results) -> None:
    cpu = time.process_time()
    out = asyncio.run(drive(host, port, jobs, connections, seconds, marker, barrier))
    out.client_cpu_s = time.process_time() - cpu
    results.put(out)


def drive_processes(
    host: str, port: int, jobs: list[Job], connections: int, seconds: float, procs: int, marker: bytes | None = None
) -> Outcome:
    """The connections split over `procs` client processes (one Python process alone would become the
    bottleneck), each cycling through its share of the jobs for `seconds`."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    workers = [
        ctx.Process(
            target=_process,
            args=(host, port, jobs[i::procs] or jobs, connections // procs, seconds, marker, barrier, results),
        )
        for i in range(procs)
    ]
    for w in workers:
        w.start()
    parts = [results.get(timeout=seconds + 120) for _ in workers]
    for w in workers:
        w.join()
    merged = Outcome(client=f"lean asyncio, {procs} process(es)")
    for part in parts:
        merged.latencies_ms += part.latencies_ms
        merged.errors += part.errors
        merged.ok += part.ok
        merged.client_cpu_s += part.client_cpu_s
        merged.seconds = max(merged.seconds, part.seconds)
    return merged


# --- wrk ---------------------------------------------------------------------------------------------------------

_WRK_SCRIPT = """-- generated by benchmarks/http_load.py
-- thread i sends tenant i's requests and accepts only the exact bodies validated for that tenant
local specs = {SPECS}
local threads, made = {}, 0
function setup(thread)
  made = made + 1
  thread:set("spec_no", made)
  table.insert(threads, thread)
end
function init(args)
  local spec = specs[spec_no]
  reqs, expected, next_req, ok, bad = {}, {}, 0, 0, 0
  for i, r in ipairs(spec) do
    reqs[i] = wrk.format(r.method, r.path, {["Authorization"] = "Bearer " .. r.token})
    local f = assert(io.open(r.body, "rb"))
    expected[f:read("*a")] = true
    f:close()
  end
end
function request()
  next_req = next_req % #reqs + 1
  return reqs[next_req]
end
function response(status, headers, body)
  if status == 200 and expected[body] then ok = ok + 1 else bad = bad + 1 end
end
function done(summary, latency, requests)
  local ok_all, bad_all = 0, 0
  for _, t in ipairs(threads) do
    ok_all, bad_all = ok_all + t:get("ok"), bad_all + t:get("bad")
  end
  local e = summary.errors
  io.write(string.format("WRK_RESULT ok=%d bad=%d connect=%d read=%d write=%d timeout=%d duration_us=%d "
    .. "p50=%.1f p95=%.1f p99=%.1f\\n", ok_all, bad_all, e.connect, e.read, e.write, e.timeout, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def _lua_string(s: str) -> str:
    if not re.fullmatch(r"[\w./:=&?%+@-]*", s):
        raise ValueError(f"not safe to embed in Lua: {s!r}")
    return f'"{s}"'


def run_wrk(
    base: str,
    jobs_by_tenant: dict[str, list[tuple[str, str, str, bytes]]],
    connections: int,
    seconds: float,
    workdir: Path,
) -> Outcome:
    """wrk with one thread per tenant; jobs are (method, path, token, expected body)."""
    specs = []
    for t, jobs in enumerate(jobs_by_tenant.values()):
        rows = []
        for i, (method, path, token, body) in enumerate(jobs):
            body_file = workdir / f"expected_{t}_{i}"
            body_file.write_bytes(body)
            rows.append(
                f"{{method={_lua_string(method)}, path={_lua_string(path)}, token={_lua_string(token)}, "
                f"body={_lua_string(str(body_file))}}}"
            )
        specs.append("{" + ", ".join(rows) + "}")
    script = workdir / "bench.lua"
    script.write_text(_WRK_SCRIPT.replace("{SPECS}", "{" + ", ".join(specs) + "}"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    run = subprocess.run(
        [
            "wrk",
            f"-t{len(jobs_by_tenant)}",
            f"-c{connections}",
            f"-d{seconds:.0f}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            base,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = _WRK_RESULT.search(run.stdout)
    if run.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed ({run.returncode}): {run.stdout}\n{run.stderr}")
    r = {k: float(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    errors = Counter({name: int(r[name]) for name in ("bad", "connect", "read", "write", "timeout") if r[name]})
    return Outcome(
        client=f"wrk {len(jobs_by_tenant)} threads",
        errors=errors,
        ok=int(r["ok"]),
        seconds=r["duration_us"] / 1e6,
        percentiles_ms={q: r[f"p{q}"] / 1000 for q in (50, 95, 99)},
        client_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children processes (uvicorn workers), from Linux /proc."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, IndexError, ValueError):
        return float("nan")
    return total + sum(process_cpu_seconds(int(c)) for c in children)
