"""Latency of a live retune: from POST /api/sync/schedule sent to the new nextRunAt visible.

What it measures
----------------
A standalone app over a ``SyncService`` on the SystemClock with the default schedule runs
in a server process. A client in another process retunes ``customers`` over and over,
alternating its start delay between 5 and 6 minutes, so every retune moves its nextRunAt.
For each retune it records:

* ``POST``: until the answer arrives. The answer is the schedule after the timer re-armed
  (the supervisor answers once the timer reported back), so it already carries the new
  nextRunAt.
* ``visible``: until a following GET /api/sync/schedule shows the new nextRunAt (the
  client checks it equals the one the POST answered and differs from the previous one).

The peer is a plain read: GET /api/sync/schedule alone, the floor of any round trip.
Prints p50/p99 of each and the ratio of the visible p99 to the 10 ms goal.

Run (from the repo root)::

    .venv/bin/python bench/retune_latency.py               # 500 retunes
    .venv/bin/python bench/retune_latency.py --count 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from typing import Any

import aiohttp
from aiohttp import web

from archibald_actors import SyncService
from archibald_actors.web import create_app, make_token

SECRET = "bench-secret-" + "b" * 40


async def serve() -> None:
    """Serve until stdin closes; print READY <port>."""
    runner = web.AppRunner(create_app(SyncService(), secret=SECRET), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    threading.Thread(
        target=lambda: (sys.stdin.read(), loop.call_soon_threadsafe(stop.set)), daemon=True
    ).start()
    print(f"READY {runner.addresses[0][1]}", flush=True)
    await stop.wait()
    await runner.cleanup()


def _percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"p50_ms": values[len(values) // 2] * 1000, "p99_ms": values[int(len(values) * 0.99)] * 1000}


async def measure(base: str, token: str, count: int) -> dict[str, Any]:
    """Retune ``count`` times; return the percentiles of POST, visible and plain GET."""
    headers = {"Authorization": f"Bearer {token}"}
    posts: list[float] = []
    visible: list[float] = []
    reads: list[float] = []
    retries = 0
    async with aiohttp.ClientSession(base) as session:

        async def next_run() -> str:
            async with session.get("/api/sync/schedule", headers=headers) as r:
                return str((await r.json())["data"]["customers"]["nextRunAt"])

        previous = await next_run()
        for n in range(count + 20):
            delay = 6 if n % 2 == 0 else 5
            t0 = time.perf_counter()
            async with session.post(
                "/api/sync/schedule",
                headers=headers,
                json={"syncType": "customers", "startDelayMinutes": delay},
            ) as r:
                assert r.status == 200, await r.text()
                answered = (await r.json())["data"]["customers"]["nextRunAt"]
            t1 = time.perf_counter()
            while (seen := await next_run()) != answered:
                retries += 1
            t2 = time.perf_counter()
            assert seen != previous, "the retune did not move nextRunAt"
            previous = seen
            await next_run()
            t3 = time.perf_counter()
            if n >= 20:  # warm-up
                posts.append(t1 - t0)
                visible.append(t2 - t0)
                reads.append(t3 - t2)
    return {
        "count": len(posts),
        "retries": retries,
        "post": _percentiles(posts),
        "visible": _percentiles(visible),
        "get": _percentiles(reads),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve())
        return
    if args.measure:
        print(json.dumps(asyncio.run(measure(args.measure, args.token, args.count))))
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        base = f"http://127.0.0.1:{int(server.stdout.readline().split()[1])}"
        token = make_token(SECRET, role="admin", sub="bench")
        command = [sys.executable, __file__, "--measure", base, "--token", token, "--count", str(args.count)]
        result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    finally:
        server.stdin.close()
        server.wait(30)
    print(f"{result['count']} retunes of customers.startDelayMinutes (5 <-> 6), sequential")
    print(f"{'step':<34} {'p50 ms':>8} {'p99 ms':>8}")
    for name, key in (("POST answered (new nextRunAt)", "post"), ("new nextRunAt visible on GET", "visible")):
        print(f"{name:<34} {result[key]['p50_ms']:>8.2f} {result[key]['p99_ms']:>8.2f}")
    print(f"{'peer: a plain GET':<34} {result['get']['p50_ms']:>8.2f} {result['get']['p99_ms']:>8.2f}")
    print(f"GETs that still showed the old nextRunAt after the POST answered: {result['retries']}")
    p99 = result["visible"]["p99_ms"]
    print(f"ratio visible p99 / 10 ms goal: {p99 / 10:.2f} (goal < 1); "
          f"visible p99 / plain GET p99: {p99 / result['get']['p99_ms']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
