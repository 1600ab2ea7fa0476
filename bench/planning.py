"""Planning: latency of POST /api/sync/schedule/preview, and the wall time of ``simulate``.

What it measures
----------------
* **preview**: a live service (the default table, demo handlers, a ``ManualClock`` run for
  two hours so each type has a history) behind the real app on 127.0.0.1; a client sends
  ``--requests`` previews one after another (a retune of prices' start delay) for 6 and for
  48 hours, and the p50/p99 of the round trips are printed. Each preview copies the live
  state into a sandboxed service and runs it on the real actors: the cost grows with the
  number of runs simulated, so with the hours and the jobs per slot.
* **simulate**: wall time of ``archibald-sync simulate --json`` for a week (168 hours),
  including the JSON document, in this process.

``--agents N`` stores N agents in both and makes orders, customers, invoices and ddt
per-agent (the real backend's split; ``scope="per_agent"``, on a version with the agents'
lanes): each of their slots becomes one job per agent. Without agents every type is shared
(the default table); on a version without scopes the agents change nothing, which the
output says.

Run (from the repo root)::

    .venv/bin/python bench/planning.py                  # 0 agents
    .venv/bin/python bench/planning.py --agents 60
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import time
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from archibald_actors import DEFAULT_SCHEDULE, ManualClock, ScheduleEntry, SyncService
from archibald_actors.handlers.demo import demo_handlers
from archibald_actors.planning.report import simulation_json
from archibald_actors.planning.simulation import simulate
from archibald_actors.web import create_app, make_token

SECRET = "bench-secret-" + "p" * 40
#: The types the real backend fetches per agent.
PER_AGENT = ("orders", "customers", "invoices", "ddt")
#: The change every preview asks about.
RETUNE = {"syncType": "prices", "startDelayMinutes": 13}


def _table(agents: int) -> tuple[dict[str, ScheduleEntry], bool]:
    """The default table (all shared); with agents, its per-agent types marked if this version has scopes."""
    scoped = agents > 0 and "scope" in {f.name for f in dataclasses.fields(ScheduleEntry)}
    table = dict(DEFAULT_SCHEDULE)
    if scoped:
        for t in PER_AGENT:
            table[t] = dataclasses.replace(table[t], scope="per_agent")
    return table, scoped


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


async def _previews(agents: int, requests: dict[float, int]) -> dict[float, dict[str, Any]]:
    table, _ = _table(agents)
    clock = ManualClock()
    service = SyncService(demo_handlers(clock=clock, sync_types=table), clock=clock, schedule=table)
    server = TestServer(create_app(service, secret=SECRET))
    await server.start_server()
    try:
        for n in range(1, agents + 1):
            await asyncio.to_thread(service.put_agent, f"agent-{n:02d}")
        await asyncio.to_thread(clock.advance, 2 * 3600.0)  # a history for every type
        token = make_token(SECRET, role="agent", sub="bench")
        results = {}
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
            for hours, count in requests.items():
                url = server.make_url(f"/api/sync/schedule/preview?hours={hours:g}")
                took, runs, cut = [], 0, 0
                for i in range(count + 1):  # the first one warms up
                    began = time.perf_counter()
                    async with session.post(url, json=RETUNE) as answer:
                        body = await answer.json()
                        assert answer.status == 200, body
                    if i:
                        took.append((time.perf_counter() - began) * 1000)
                    runs = len(body["data"]["runs"])
                    cut += 0 if body["data"]["complete"] else 1
                results[hours] = {
                    "requests": count,
                    "runs": runs,
                    "p50_ms": statistics.median(took),
                    "p99_ms": _percentile(took, 0.99),
                    "max_ms": max(took),
                    "cut": cut,
                }
        return results
    finally:
        await server.close()
        await asyncio.to_thread(service.stop, 10.0)


def _simulate_week(agents: int) -> dict[str, Any]:
    table, _ = _table(agents)
    began = time.perf_counter()
    sim = simulate(168.0, schedule=table, agents=agents)
    text = json.dumps(simulation_json(sim))
    return {"seconds": time.perf_counter() - began, "runs": len(sim.runs), "json_bytes": len(text)}


def main() -> None:
    """Run both measurements and print them."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--agents", type=int, default=0, help="agents in the store (default 0)")
    parser.add_argument("--requests", type=int, default=30, help="previews of 6 hours timed (default 30)")
    parser.add_argument("--requests-48", type=int, default=10, help="previews of 48 hours timed (default 10)")
    args = parser.parse_args()
    _, scoped = _table(args.agents)
    fan_out = f"per-agent types {', '.join(PER_AGENT)}" if scoped else "every type shared"
    print(f"agents: {args.agents} ({fan_out})")
    previews = asyncio.run(_previews(args.agents, {6.0: args.requests, 48.0: args.requests_48}))
    for hours, r in previews.items():
        print(
            f"preview {hours:>4g} h: p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
            f"max {r['max_ms']:7.1f} ms  ({r['requests']} requests, {r['runs']} runs simulated each, "
            f"{r['cut']} cut short by the 5 s budget)"
        )
    week = _simulate_week(args.agents)
    print(
        f"simulate --json, 168 h: {week['seconds']:.2f} s wall ({week['runs']} runs, "
        f"{week['json_bytes'] / 1e6:.1f} MB of JSON)"
    )


if __name__ == "__main__":
    main()
