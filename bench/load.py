"""Soak of one ``archibald-sync serve``: 500 open event streams plus 2,000 reads/s, for 60 s.

What it measures
----------------
One ``serve`` subprocess (SQLite store in a temporary directory, ``--speed 600`` so the demo
syncs really run: 60 s is 10 hours of schedule) is loaded from processes of its own, each
with an aiohttp client, all on 127.0.0.1:

* ``--sse`` Server-Sent-Events clients in total, held by ``--sse-workers`` processes, all
  connected before the load starts;
* ``--rate`` requests/s in total, sent by ``--workers`` other processes (so parsing 500
  streams never delays the clock of the latency measurement), open loop (sent on a fixed
  timetable, whether or not earlier answers came back, at most ``--in-flight`` outstanding
  per worker), a mix of GET
  ``/schedule``, ``/status``, ``/history?limit=20`` and ``/history?syncType=orders&limit=10``.
  Latency is measured from the moment the timetable said to send, so a server that falls
  behind shows it (no coordinated omission).

Two marker retunes (``products`` start delay 30 -> 31 at the start, back to 30 at the end)
produce ``schedule.changed`` events that every stream sees; each stream collects the ids of
the run-end events (``sync.completed``, ``sync.failed``, ``sync.cancelled``) between the
markers. Every stream must hold the same ids, and about as many as the runs the service
counted in ``/status`` between the markers (within one per marker: a run finishing as
``/status`` is read may fall either side).

It prints: errors (any non-200, timeout, exception, stream drop or overflow: must be 0),
achieved rate, p50/p99/max latency, the server's VmRSS before, at peak and after
(from ``/proc/PID/status``), and the event-delivery check.

Run (from the repo root; not part of CI)::

    .venv/bin/python bench/load.py                   # 60 s, 500 streams, 2000 req/s
    .venv/bin/python bench/load.py --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import re
import secrets
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from archibald_actors.events import RUN_END_EVENTS
from archibald_actors.store.sqlite import SqliteStore
from archibald_actors.web.auth import SECRET_ENV, make_token

READS = ("/schedule", "/status", "/history?limit=20", "/history?syncType=orders&limit=10")
MARKER_TYPE = "products"
START_MARK, END_MARK = 31, 30  # products' start delay: 30 by default
COMPLETIONS = RUN_END_EVENTS
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


# --- the server ----------------------------------------------------------------------------


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    api: str
    token: str
    db: Path
    stderr: Path


def start_server(workdir: Path, secret: str, speed: str, log_level: str) -> Server:
    db, stderr_path = workdir / "load.db", workdir / "serve.stderr"
    command = [sys.executable, "-m", "archibald_actors", "serve", "--port", "0", "--db", str(db)]
    command += ["--speed", speed, "--log-level", log_level]
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, env={**os.environ, SECRET_ENV: secret}, bufsize=0
        )
    assert proc.stdout is not None
    deadline, buffer = time.monotonic() + START_TIMEOUT, b""
    while (match := re.search(rb"listening on (http://127\.0\.0\.1:\d+)", buffer)) is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or proc.poll() is not None:
            proc.kill()
            raise SystemExit(f"serve did not start: {buffer.decode()} {stderr_path.read_text()}")
        if select.select([proc.stdout], [], [], remaining)[0]:
            buffer += os.read(proc.stdout.fileno(), 4096)
    token = make_token(secret, role="admin", sub="bench-load", ttl=3600)
    return Server(proc, match[1].decode() + "/api/sync", token, db, stderr_path)


def call(server: Server, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"}
    request = urllib.request.Request(server.api + path, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


def runs_counted(server: Server) -> int:
    return sum(t["runs"] + t["failures"] for t in call(server, "GET", "/status")["types"].values())


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    """The server's peak VmRSS, sampled every 0.5 s until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_kib(self.pid))


# --- a load worker (its own process) -------------------------------------------------------


@dataclass
class Stream:
    """What one SSE client saw between the markers."""

    ids: list[int] = field(default_factory=list)
    phase: str = "before"  # before -> between -> after
    error: str | None = None


async def follow(session: aiohttp.ClientSession, url: str, stream: Stream, connected: asyncio.Event) -> None:
    event, event_id = None, 0
    try:
        async with session.get(url) as response:
            if response.status != 200:
                stream.error = f"status {response.status}"
                return
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line == ": connected":
                    connected.set()
                elif line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("event: "):
                    event = line[7:]
                    if event == "overflow":
                        stream.error = "overflow"
                        return
                elif line.startswith("data: ") and event == "schedule.changed":
                    data = json.loads(line[6:])
                    if data["syncType"] == MARKER_TYPE:
                        if data["startDelay"] == START_MARK and stream.phase == "before":
                            stream.phase = "between"
                        elif data["startDelay"] == END_MARK and stream.phase == "between":
                            stream.phase = "after"
                            return
                elif line.startswith("data: ") and event in COMPLETIONS and stream.phase == "between":
                    stream.ids.append(event_id)
        stream.error = stream.error or f"stream ended in phase {stream.phase}"
    except Exception as exc:  # counted, reported
        stream.error = f"{type(exc).__name__}: {exc}"
    finally:
        connected.set()


async def worker_main(index: int, opts: dict[str, Any], queue: Any, go: Any, ended: Any) -> None:
    api, token = opts["api"], opts["token"]
    headers = {"Authorization": f"Bearer {token}"}
    streams = [Stream() for _ in range(opts["sse"])]
    sse_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None, sock_read=60)
    )
    read_session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=opts["in_flight"]), timeout=aiohttp.ClientTimeout(total=10)
    )
    async with sse_session, read_session:
        connected = [asyncio.Event() for _ in streams]
        followers = [
            asyncio.create_task(follow(sse_session, f"{api}/events?token={token}", s, c))
            for s, c in zip(streams, connected, strict=True)
        ]
        for i in range(0, len(connected), 50):  # connect in batches, not 250 SYNs at once
            await asyncio.gather(*(c.wait() for c in connected[i : i + 50]))
        queue.put(("ready", index, None))
        await asyncio.get_running_loop().run_in_executor(None, go.wait)

        latencies: list[float] = []
        errors: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        skipped = 0
        in_flight = 0
        tasks: set[asyncio.Task[None]] = set()

        async def one(path: str, due: float) -> None:
            nonlocal in_flight
            try:
                async with read_session.get(api + path, headers=headers) as response:
                    await response.read()
                    statuses[response.status] += 1
                    if response.status != 200:
                        errors[f"status {response.status}"] += 1
                latencies.append(time.perf_counter() - due)
            except Exception as exc:
                errors[type(exc).__name__] += 1
            finally:
                in_flight -= 1

        rate, seconds = opts["rate"], opts["seconds"]
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        sent = 0
        while rate and (now := time.perf_counter()) < t0 + seconds:
            due_count = int((now - t0) * rate) + 1
            while sent < due_count:
                due = t0 + sent / rate
                if in_flight >= opts["in_flight"]:
                    skipped += 1
                else:
                    in_flight += 1
                    task = asyncio.create_task(one(READS[(sent + index) % len(READS)], due))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                sent += 1
            await asyncio.sleep(max(0.0, t0 + sent / rate - time.perf_counter()))
        if not rate:  # a stream holder: stay for the load, so its CPU time covers the same window
            await asyncio.sleep(seconds)
        if tasks:
            await asyncio.wait(tasks, timeout=15)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        queue.put(
            (
                "loaded",
                index,
                {
                    "latencies": latencies,
                    "errors": dict(errors),
                    "statuses": dict(statuses),
                    "skipped": skipped,
                    "scheduled": sent,
                    "elapsed": elapsed,
                    "cpu": cpu,
                },
            )
        )
        await asyncio.get_running_loop().run_in_executor(None, ended.wait, 60)
        if followers:
            await asyncio.wait(followers, timeout=15)
        for task in followers:
            task.cancel()
        queue.put(("streams", index, [(s.ids, s.error, s.phase) for s in streams]))


def worker(index: int, opts: dict[str, Any], queue: Any, go: Any, ended: Any) -> None:
    asyncio.run(worker_main(index, opts, queue, go, ended))


# --- the run -------------------------------------------------------------------------------


def collect(queue: Any, kind: str, count: int, timeout: float) -> dict[int, Any]:
    got: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    while len(got) < count:
        what, index, payload = queue.get(timeout=max(0.1, deadline - time.monotonic()))
        assert what == kind, (what, kind)
        got[index] = payload
    return got


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(len(values) * share))] if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--sse", type=int, default=500, help="event-stream clients in total")
    parser.add_argument("--rate", type=float, default=2000.0, help="reads per second in total")
    parser.add_argument("--workers", type=int, default=2, help="processes sending the reads")
    parser.add_argument("--sse-workers", type=int, default=2, help="processes holding the event streams")
    parser.add_argument("--in-flight", type=int, default=256, help="most outstanding reads per worker")
    parser.add_argument("--speed", default="600", help="serve --speed")
    parser.add_argument("--log-level", default="INFO", help="serve --log-level (INFO logs every request)")
    args = parser.parse_args()

    secret = secrets.token_hex(32)
    with tempfile.TemporaryDirectory(prefix="archibald-load-") as tmp:
        server = start_server(Path(tmp), secret, args.speed, args.log_level)
        context = mp.get_context("spawn")
        processes: list[Any] = []
        try:
            rss_start = rss_kib(server.proc.pid)
            queue, go, ended = context.Queue(), context.Event(), context.Event()
            common = {"api": server.api, "token": server.token, "seconds": args.seconds}
            common["in_flight"] = args.in_flight
            roles = [{**common, "sse": 0, "rate": args.rate / args.workers} for _ in range(args.workers)]
            roles += [
                {**common, "sse": args.sse // args.sse_workers, "rate": 0} for _ in range(args.sse_workers)
            ]
            processes = [
                context.Process(target=worker, args=(i, role, queue, go, ended), daemon=True)
                for i, role in enumerate(roles)
            ]
            for process in processes:
                process.start()
            collect(queue, "ready", len(roles), 120)
            rss_connected = rss_kib(server.proc.pid)
            sampler = RssSampler(server.proc.pid)
            sampler.start()
            call(server, "POST", "/schedule", {"syncType": MARKER_TYPE, "startDelayMinutes": START_MARK})
            runs_before = runs_counted(server)
            server_cpu0 = cpu_seconds(server.proc.pid)
            go.set()
            loaded = collect(queue, "loaded", len(roles), args.seconds + 60)
            server_cpu = cpu_seconds(server.proc.pid) - server_cpu0
            call(server, "POST", "/schedule", {"syncType": MARKER_TYPE, "startDelayMinutes": END_MARK})
            runs_after = runs_counted(server)
            ended.set()
            streams = [s for part in collect(queue, "streams", len(roles), 90).values() for s in part]
            sampler.done.set()
            rss_loaded = rss_kib(server.proc.pid)
            for process in processes:
                process.join(30)
            server.proc.send_signal(signal.SIGTERM)
            exit_code = server.proc.wait(STOP_TIMEOUT)
        finally:
            for process in processes:
                if process.is_alive():
                    process.kill()
            if server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait(STOP_TIMEOUT)
        store = SqliteStore(server.db)
        try:
            ledger = len(store.runs(limit=100_000))
        finally:
            store.close()
        logged_errors = [
            line for line in server.stderr.read_text(errors="replace").splitlines() if " ERROR " in line
        ]

    latencies = sorted(x for r in loaded.values() for x in r["latencies"])
    errors: Counter[str] = Counter()
    for r in loaded.values():
        errors.update(r["errors"])
    scheduled = sum(r["scheduled"] for r in loaded.values())
    skipped = sum(r["skipped"] for r in loaded.values())
    elapsed = max(r["elapsed"] for r in loaded.values()) or args.seconds
    stream_errors = Counter(error for _, error, _ in streams if error)
    id_sets = Counter(tuple(ids) for ids, _, _ in streams)
    union = sorted({i for ids, _, _ in streams for i in ids})
    complete = sum(1 for ids, _, _ in streams if ids == union)

    print(
        f"serve --speed {args.speed}, {args.sse} SSE clients, {args.rate:g} reads/s target, "
        f"{args.seconds:g} s; {args.workers} processes send the reads, {args.sse_workers} hold the streams; "
        f"{os.cpu_count()} CPUs shared by all"
    )
    print(
        f"reads: {len(latencies)} answered of {scheduled} scheduled ({len(latencies) / elapsed:.0f}/s), "
        f"{skipped} not sent (in-flight cap), errors {sum(errors.values())} {dict(errors)}"
    )
    print(
        f"latency from the timetable (ms): p50 {percentile(latencies, 0.5) * 1000:.1f}, "
        f"p99 {percentile(latencies, 0.99) * 1000:.1f}, max {percentile(latencies, 1.0) * 1000:.1f}"
    )
    worker_cpu = sum(r["cpu"] for r in loaded.values())
    print(
        f"CPU during the load: server {server_cpu / elapsed:.0%} of a core, "
        f"load processes {worker_cpu / elapsed:.0%} of a core together (readers and streams)"
    )
    print(
        f"server VmRSS (MiB): start {rss_start / 1024:.1f}, streams connected {rss_connected / 1024:.1f}, "
        f"peak {max(sampler.peak, rss_loaded) / 1024:.1f}, after the load {rss_loaded / 1024:.1f}, "
        f"growth under load {(rss_loaded - rss_connected) / 1024:+.1f}"
    )
    print(
        f"event streams: {len(streams)}, errors {sum(stream_errors.values())} {dict(stream_errors)}; "
        f"sync.completed/failed between the markers: {len(union)} published (union of all streams), "
        f"{runs_after - runs_before} counted by /status; "
        f"streams holding every one: {complete}/{len(streams)}; distinct id sets: {len(id_sets)}"
    )
    print(
        f"ledger: {ledger} runs in total; serve exit code {exit_code}; "
        f"lines logged at ERROR: {len(logged_errors)}"
    )
    for line in logged_errors[:5]:
        print("  ", line)
    ok = (
        not errors
        and not stream_errors
        and complete == len(streams)
        and exit_code == 0
        and not logged_errors
        # /status is read just after each marker, so a run finishing at that moment may fall on
        # either side: the streams are compared with each other exactly, with /status within 1 per marker.
        and abs(len(union) - (runs_after - runs_before)) <= 2
    )
    print("RESULT", "ok" if ok else "NOT OK")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
