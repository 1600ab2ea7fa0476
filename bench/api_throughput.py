"""Throughput and p99 of GET /api/sync/schedule against a bare aiohttp handler.

What it measures
----------------
Two servers, each in a process of its own on 127.0.0.1, are loaded in turn by a load
generator in a third process (an aiohttp client keeping ``--concurrency`` connections
busy for ``--seconds`` after a warm-up):

* ``bare``: one aiohttp handler that does the same JWT check (``JWTAuthenticator.decode``
  of the bearer token) and returns a JSON body of the same size (a snapshot of the real
  schedule, encoded once at start-up: the cheapest possible peer).
* ``api``: the real thing, ``create_app(SyncService())`` on the SystemClock: sub-app
  routing, JSON-error and access middlewares, and the bridge's round trip to the
  supervisor actor (``schedule_future`` awaited through ``asyncio.wrap_future``).

It prints requests/s, p50 and p99 latency seen by the client, and the server's own CPU
time per request, then the ratios api/bare (goal: throughput ratio >= 0.85). The two
servers take turns for ``--rounds`` rounds, so that the VM's noise (which moves single
figures by 10 %) falls on both; the verdict is the median of the rounds' ratios.

Run (from the repo root)::

    .venv/bin/python bench/api_throughput.py                    # 3 rounds, 5 s per server, 32 connections
    .venv/bin/python bench/api_throughput.py --seconds 10 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import aiohttp
from aiohttp import web

from archibald_actors import SyncService
from archibald_actors.web import AuthError, JWTAuthenticator, create_app, freeze_heap, make_token

SECRET = "bench-secret-" + "b" * 40
PATH = "/api/sync/schedule"


def _bare_app() -> web.Application:
    service = SyncService()
    service.start()
    body = json.dumps({"success": True, "data": service.schedule()}).encode()
    service.stop()
    authenticator = JWTAuthenticator(SECRET)

    async def schedule(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        try:
            authenticator.decode(header.removeprefix("Bearer "))
        except AuthError:
            return web.json_response({"success": False, "error": "unauthorized"}, status=401)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get(PATH, schedule)
    return app


async def serve(kind: str) -> None:
    """Serve ``kind`` until told STOP on stdin; print READY <port>, then CPU <seconds since MARK>."""
    # _bare_app's blocking service calls may not run on the loop
    app = create_app(SyncService(), secret=SECRET) if kind == "api" else await asyncio.to_thread(_bare_app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    freeze_heap()  # as archibald-sync serve does, for both servers
    port = runner.addresses[0][1]
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        # The loop may be gone by the time stdin closes (the server is exiting): nothing to tell.
        with contextlib.suppress(RuntimeError, ValueError):
            for line in sys.stdin:
                loop.call_soon_threadsafe(commands.put_nowait, line.strip())
            loop.call_soon_threadsafe(commands.put_nowait, "STOP")

    threading.Thread(target=read_stdin, daemon=True).start()
    print(f"READY {port}", flush=True)
    mark = time.process_time()
    while (command := await commands.get()) != "STOP":
        if command == "MARK":
            mark = time.process_time()
    print(f"CPU {time.process_time() - mark}", flush=True)
    await runner.cleanup()


async def load(url: str, token: str, concurrency: int, seconds: float, warmup: float) -> dict[str, Any]:
    """Keep ``concurrency`` requests in flight; latencies of the requests sent after the warm-up."""
    latencies: list[float] = []
    total = errors = 0
    headers = {"Authorization": f"Bearer {token}"}
    begin = time.perf_counter()
    measure_from = begin + warmup
    end = measure_from + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal total, errors
            while (t0 := time.perf_counter()) < end:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    ok = response.status == 200
                total += 1
                if t0 >= measure_from:
                    latencies.append(time.perf_counter() - t0)
                    errors += not ok

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    return {
        "requests": len(latencies),
        "total": total,
        "errors": errors,
        "rps": len(latencies) / seconds,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        port = int(server.stdout.readline().split()[1])
        server.stdin.write("MARK\n")
        server.stdin.flush()
        token = make_token(SECRET, role="agent", sub="bench")
        command = [sys.executable, __file__, "--load", f"http://127.0.0.1:{port}{PATH}", "--token", token]
        command += ["--concurrency", str(args.concurrency), "--seconds", str(args.seconds)]
        command += ["--warmup", str(args.warmup)]
        limit = args.seconds + args.warmup + 60
        client = subprocess.run(command, capture_output=True, text=True, check=True, timeout=limit)
        server.stdin.write("STOP\n")
        server.stdin.flush()
        cpu = float(server.stdout.readline().split()[1])
        result: dict[str, Any] = json.loads(client.stdout)
        result["cpu_us_per_request"] = cpu / max(result["total"], 1) * 1e6
        return result
    finally:
        server.stdin.close()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="turns each server takes")
    parser.add_argument("--serve", choices=["api", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    if args.load:
        print(
            json.dumps(asyncio.run(load(args.load, args.token, args.concurrency, args.seconds, args.warmup)))
        )
        return
    print(
        f"GET {PATH}: {args.concurrency} connections, {args.seconds:g} s each (+{args.warmup:g} s warm-up),"
        f" {args.rounds} rounds"
    )
    print(f"{'round':<6} {'server':<6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}", end="")
    print(f" {'CPU us/req':>11} {'errors':>7}")
    ratios: dict[str, list[float]] = {"throughput": [], "p99": [], "cpu": []}
    for round_no in range(1, args.rounds + 1):
        results = {kind: run_one(kind, args) for kind in ("bare", "api")}
        for kind, r in results.items():
            print(
                f"{round_no:<6} {kind:<6} {r['rps']:>9.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"
                f" {r['cpu_us_per_request']:>11.0f} {r['errors']:>7}"
            )
        bare, api = results["bare"], results["api"]
        ratios["throughput"].append(api["rps"] / bare["rps"])
        ratios["p99"].append(api["p99_ms"] / bare["p99_ms"])
        ratios["cpu"].append(api["cpu_us_per_request"] / bare["cpu_us_per_request"])
    for name, values in ratios.items():
        shown = ", ".join(f"{v:.2f}" for v in values)
        print(f"ratio api/bare {name:<10} median {statistics.median(values):.2f}  (rounds: {shown})")
    throughput = statistics.median(ratios["throughput"])
    print(f"goal throughput ratio >= 0.85: {'MET' if throughput >= 0.85 else 'NOT MET'} ({throughput:.2f})")


if __name__ == "__main__":
    main()
