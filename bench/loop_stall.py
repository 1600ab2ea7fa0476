"""The longest event-loop stall of the API server while a sync blocks and clients hammer it.

What it measures
----------------
A standalone app (``create_app`` over a ``SyncService`` on the SystemClock, every timer
paused) runs in a server process, and two things are recorded on its loop:

* **stall**: how long each callback the loop runs holds it (``asyncio.Handle._run``
  timed, as asyncio's debug mode does for ``slow_callback_duration``). This is what
  blocking the loop means: while one callback runs, nothing else can. The goal applies
  to the longest one.
* **tick lateness**: a ticker coroutine sleeps 1 ms over and over and records how late
  each wake-up is. That includes waiting behind other ready callbacks of the same loop
  turn, so under saturation it measures queueing, not blocking: the bare peer below
  shows it too.

Three phases, in order:

1. ``idle``: nothing happens.
2. ``blocking sync``: ``POST /api/sync/orders/run`` starts a plain (non-coroutine) handler
   that blocks its thread for ``--block`` seconds (``time.sleep``; ``--busy`` makes it
   spin on the CPU instead, which shows the GIL's share).
3. ``blocking sync + N clients``: the same run goes on while a load generator in another
   process keeps ``--concurrency`` requests in flight on GET schedule, status and history.

The same load then hits a peer in a fresh server process: a bare aiohttp app whose
handlers do the same JWT check and return same-size JSON bodies captured from the real
service (no actors). Under saturation a single-threaded loop queues work whatever it
runs, so the peer shows how much of the stall the load itself causes.

One request before the first phase warms the server up (its first accepted connection
costs a one-off ~18 ms in the kernel on this machine, whatever the app).

It prints, per phase, the longest callback and its p99, then the ticker's longest and p99
lateness (goal: the longest callback under 5 ms), and the ratios to the peer under load.

Run (from the repo root)::

    .venv/bin/python bench/loop_stall.py              # 10 s blocking handler, 64 clients
    .venv/bin/python bench/loop_stall.py --busy       # the handler spins instead of sleeping
    .venv/bin/python bench/loop_stall.py --no-freeze  # without freeze_heap: full collections stall
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp import web

from archibald_actors import DEFAULT_SCHEDULE, SyncService
from archibald_actors.web import AuthError, JWTAuthenticator, create_app, freeze_heap, make_token

SECRET = "bench-secret-" + "b" * 40
PAUSED = {t: e.retuned(enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
PATHS = ("/api/sync/schedule", "/api/sync/status", "/api/sync/history?limit=10")
TICK = 0.001


def blocking_handler(seconds: float, busy: bool) -> Any:
    def handler(ctx: Any) -> None:
        if not busy:
            time.sleep(seconds)
            return
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            sum(range(1000))

    return handler


def bare_app() -> web.Application:
    """The peer: the same JWT check and same-size bodies, no actors."""
    service = SyncService(schedule=PAUSED)
    service.start()
    service.request_sync("orders")
    service.wait_idle(5)
    bodies = {
        "/api/sync/schedule": service.schedule(),
        "/api/sync/status": service.status(),
        "/api/sync/history": service.history(limit=10),
    }
    service.stop()
    authenticator = JWTAuthenticator(SECRET)
    app = web.Application()
    for path, data in bodies.items():
        body = json.dumps({"success": True, "data": data}).encode()

        async def handler(request: web.Request, body: bytes = body) -> web.Response:
            try:
                authenticator.decode(request.headers.get("Authorization", "").removeprefix("Bearer "))
            except AuthError:
                return web.json_response({"success": False, "error": "unauthorized"}, status=401)
            return web.Response(body=body, content_type="application/json")

        app.router.add_get(path, handler)
    return app


async def serve(kind: str, block: float, busy: bool, freeze: bool) -> None:
    """Serve with a ticker; stdin: PHASE <name> starts a phase, STOP prints the figures and ends."""
    if kind == "api":
        service = SyncService({"orders": blocking_handler(block, busy)}, schedule=PAUSED)
        app = create_app(service, secret=SECRET)
    else:
        app = await asyncio.to_thread(bare_app)  # its blocking service calls may not run on the loop
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    if freeze:
        freeze_heap()  # as archibald-sync serve does, for both servers
    loop = asyncio.get_running_loop()
    # array('d'), not lists: the garbage collector walks every item of a list it tracks, and
    # a list of 300,000 durations made each full collection 1-4 ms longer.
    stalls: dict[str, array[float]] = {}
    callbacks: dict[str, array[float]] = {}
    phase: list[str] = ["warm-up"]
    time_callbacks(callbacks, phase)

    async def ticker() -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(TICK)
            stalls.setdefault(phase[0], array("d")).append(time.perf_counter() - t0 - TICK)

    commands: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, line.strip())
        loop.call_soon_threadsafe(commands.put_nowait, "STOP")

    threading.Thread(target=read_stdin, daemon=True).start()
    tick_task = asyncio.create_task(ticker())
    print(f"READY {runner.addresses[0][1]}", flush=True)
    while (command := await commands.get()) != "STOP":
        phase[0] = command.removeprefix("PHASE ")
    tick_task.cancel()
    report: dict[str, dict[str, float]] = {}
    for name, values in stalls.items():
        report[name] = {"ticks": len(values), **summary("tick", values)}
        report[name].update(summary("callback", callbacks.get(name, [])))
        report[name]["callbacks"] = len(callbacks.get(name, []))
    print(json.dumps(report), flush=True)
    await runner.cleanup()


def time_callbacks(durations: dict[str, array[float]], phase: list[str]) -> None:
    """Record how long every callback of the loop runs (seconds), by phase: the loop's stalls."""
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        t0 = time.perf_counter()
        try:
            run(handle)
        finally:
            durations.setdefault(phase[0], array("d")).append(time.perf_counter() - t0)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign]


def summary(prefix: str, values: Sequence[float]) -> dict[str, float]:
    """``{prefix}_max_ms`` and ``{prefix}_p99_ms`` of ``values`` (seconds)."""
    if not values:
        return {f"{prefix}_max_ms": float("nan"), f"{prefix}_p99_ms": float("nan")}
    values = sorted(values)
    return {f"{prefix}_max_ms": values[-1] * 1000, f"{prefix}_p99_ms": values[int(len(values) * 0.99)] * 1000}


async def hammer(base: str, token: str, concurrency: int, seconds: float) -> dict[str, Any]:
    """Keep ``concurrency`` GETs in flight for ``seconds``."""
    headers = {"Authorization": f"Bearer {token}"}
    end = time.perf_counter() + seconds
    done = errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker(n: int) -> None:
            nonlocal done, errors
            while time.perf_counter() < end:
                async with session.get(base + PATHS[(n + done) % len(PATHS)], headers=headers) as response:
                    await response.read()
                    errors += response.status != 200
                    done += 1

        await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return {"requests": done, "errors": errors, "rps": done / seconds}


def get_once(url: str) -> None:
    async def get() -> None:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            await response.read()

    asyncio.run(get())


def post_run(base: str, token: str) -> int:
    async def post() -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{base}/api/sync/orders/run", headers={"Authorization": f"Bearer {token}"}) as r,
        ):
            return r.status

    return asyncio.run(post())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--block", type=float, default=10.0, help="seconds the sync handler blocks")
    parser.add_argument("--busy", action="store_true", help="spin on the CPU instead of sleeping")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--no-freeze", action="store_true", help="skip freeze_heap after start-up"
    )
    parser.add_argument("--serve", choices=["api", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--hammer", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.block, args.busy, not args.no_freeze))
        return
    if args.hammer:
        print(json.dumps(asyncio.run(hammer(args.hammer, args.token, args.concurrency, args.seconds))))
        return

    loaded = f"blocking sync + {args.concurrency} clients"
    api, api_load = run_server("api", args, ["idle", "blocking sync", loaded])
    bare, bare_load = run_server("bare", args, ["idle", f"{args.concurrency} clients"])
    kind = "spins on the CPU" if args.busy else "sleeps (blocks its thread)"
    heap = "left to the collector" if args.no_freeze else "frozen after start-up, as serve does"
    print(f"plain sync handler that {kind} for {args.block:g} s; ticker every {TICK * 1000:g} ms")
    print(f"heap: {heap}")
    print(f"{'':<41} {'longest callback':>21} {'tick lateness':>21}")
    print(f"{'server':<6} {'phase':<34} {'max ms':>10} {'p99 ms':>10} {'max ms':>10} {'p99 ms':>10}")
    for server, report in (("api", api), ("bare", bare)):
        for name, r in report.items():
            if name != "warm-up":
                print(
                    f"{server:<6} {name:<34} {r['callback_max_ms']:>10.2f} {r['callback_p99_ms']:>10.2f}"
                    f" {r['tick_max_ms']:>10.2f} {r['tick_p99_ms']:>10.2f}"
                )
    for server, load in (("api", api_load), ("bare", bare_load)):
        print(f"load on {server}: {load['requests']} requests ({load['rps']:.0f}/s), {load['errors']} errors")
    phases = [name for name in api if name != "warm-up"]
    worst = max(phases, key=lambda name: api[name]["callback_max_ms"])
    stall = api[worst]["callback_max_ms"]
    peer = bare[f"{args.concurrency} clients"]
    print(f"api longest stall (one callback) {stall:.2f} ms in '{worst}': "
          f"{'MET' if stall < 5 else 'NOT MET'} (goal < 5 ms, ratio {stall / 5:.2f})")  # fmt: skip
    callback_ratio = api[loaded]["callback_max_ms"] / peer["callback_max_ms"]
    tick_ratio = api[loaded]["tick_max_ms"] / peer["tick_max_ms"]
    print(f"under load, api/bare: longest callback {callback_ratio:.2f}, tick lateness {tick_ratio:.2f}")


def run_server(
    kind: str, args: argparse.Namespace, phases: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start a server, go through ``phases`` (the last one under load), return stalls and load figures."""
    command = [sys.executable, __file__, "--serve", kind, "--block", str(args.block)]
    command += ["--busy"] if args.busy else []
    command += ["--no-freeze"] if args.no_freeze else []
    server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None

    def tell(line: str) -> None:
        assert server.stdin is not None
        server.stdin.write(line + "\n")
        server.stdin.flush()

    try:
        base = f"http://127.0.0.1:{int(server.stdout.readline().split()[1])}"
        token = make_token(SECRET, role="admin", sub="bench")
        # Warm-up: the first connection a process accepts costs a one-off ~18 ms in the kernel
        # here (setsockopt TCP_NODELAY, seen in any aiohttp server); keep it out of the phases.
        get_once(f"{base}/healthz")
        time.sleep(0.5)
        tell(f"PHASE {phases[0]}")
        time.sleep(2.0)
        started = time.perf_counter()
        if kind == "api":
            tell(f"PHASE {phases[1]}")
            assert post_run(base, token) == 202
            time.sleep(args.block * 0.3)
        tell(f"PHASE {phases[-1]}")
        remaining = (
            args.block * 0.7 - 0.5 if kind == "bare" else args.block - (time.perf_counter() - started) - 0.5
        )
        load = [sys.executable, __file__, "--hammer", base, "--token", token]
        load += ["--concurrency", str(args.concurrency), "--seconds", str(remaining)]
        hammered = json.loads(subprocess.run(load, capture_output=True, text=True, check=True).stdout)
        tell("STOP")
        report: dict[str, Any] = json.loads(server.stdout.readline())
    finally:
        server.stdin.close()
        server.wait(30)
    return report, hammered


if __name__ == "__main__":
    main()
