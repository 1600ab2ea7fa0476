"""Per-agent scheduling at scale: queueing, overhead per job, API latency, memory, a simulated week.

What it measures
----------------
With ``--agents`` (1,000) agents and the four per-agent types of the real split (orders,
customers, ddt, invoices; prices and products paused), instant handlers, on a real clock:

* ``queued``: from a slot's time to its ``queue.changed`` event announcing one job per
  agent (the timer's lateness included), on a ``ScaledClock`` at 60x whose four slots are
  5 clock minutes (5 real seconds) apart, as in the real table; the worst of the four.
  Goal < 100 ms.
* ``overhead``: four manual requests for every agent (4,000 instant jobs) sent at once;
  real time until the 4,000th run ended, divided by 4,000, with ``max_concurrent`` 1 and 8.
  The handler does nothing, so this is all orchestration: queueing, the runner's thread,
  the ledger, the events. Goal < 1 ms.
* ``api``: GET /api/sync/status and GET /api/sync/agents, one after the other, over a
  real aiohttp server on loopback (a process of its own) with a real admin token, the
  service holding the agents and 4,000 runs of history. p50/p99. Goal p99 < 50 ms.
* ``rss``: resident memory of a process whose service ran the four types five times for
  every agent (20,000 runs), minus that of the same process with no agent, per agent
  (both after a full collection). Goal < 50 KiB.

And a simulated week of ``--week-agents`` (60) agents with the demo's durations and ERP
logins (every agent logs in and succeeds), with ``max_concurrent`` 1, 2 and 4, run as
``simulate`` runs it: the real service on a ``ManualClock`` in the planning sandbox,
each run one wait of its drawn duration. Staleness of a (type, agent) pair is the
time since its last success (since the start before the first), sampled every 10 clock
minutes; the table gives its p99 per type against the type's threshold: the table an
operator needs to choose the budget. Goal: each week simulated in < 10 s of wall time.

Run (from the repo root)::

    .venv/bin/python bench/agents.py                 # everything, 3 rounds of the real-clock parts
    .venv/bin/python bench/agents.py --rounds 5 --skip-week
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web

from archibald_actors import DEFAULT_SCHEDULE, ScheduleEntry, SyncService
from archibald_actors.agent import Agent
from archibald_actors.clock import Clock, ScaledClock
from archibald_actors.events import RUN_END_EVENTS, Event
from archibald_actors.handlers.demo_agents import PER_AGENT_TYPES, agent_split, demo_agent_ids
from archibald_actors.planning.runs import SimulatedRun
from archibald_actors.planning.sandbox import Scenario, run_scenario
from archibald_actors.planning.workload import Workload
from archibald_actors.store import MemoryStore
from archibald_actors.web import create_app, freeze_heap, make_token

SECRET = "bench-secret-" + "a" * 40
SPEED = 60.0  # clock seconds per real second for the slots
SLOT_GAP = 5.0  # clock minutes between the four slots, as in the real table: the last slot's jobs ended
WAIT = 300.0  # real seconds any phase may take before the bench gives up
KIB = 1024


def instant(ctx: Any) -> None:
    """A handler that does nothing: what is left is the orchestration."""


def real_clock_schedule() -> dict[str, ScheduleEntry]:
    """The real split; per-agent types' slots ``SLOT_GAP`` clock minutes apart, once; shared types paused."""
    table = agent_split(DEFAULT_SCHEDULE)
    for i, sync_type in enumerate(PER_AGENT_TYPES):
        delay = 1.0 + SLOT_GAP * i
        table[sync_type] = replace(table[sync_type], interval_minutes=180.0, start_delay_minutes=delay)
    for sync_type, entry in table.items():
        if not entry.per_agent:
            table[sync_type] = replace(entry, enabled=False)
    return table


def agent_store(count: int) -> MemoryStore:
    store = MemoryStore()
    for agent_id in demo_agent_ids(count):
        store.put_agent(agent_id)
    return store


class Ends:
    """Counts run ends and queue events; ``wait(n)`` blocks until ``n`` runs ended in all."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self.ended = 0
        self.queued: dict[str, float] = {}  # type -> clock time its per-agent slot was queued

    def __call__(self, event: Event) -> None:
        kind = event["type"]
        with self._cond:
            if kind in RUN_END_EVENTS:
                self.ended += 1
                self._cond.notify_all()
            elif kind == "queue.changed" and event["trigger"] == "auto":
                self.queued.setdefault(event["syncType"], self._clock.now())

    def wait(self, total: int) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.ended >= total, WAIT):
                raise RuntimeError(f"only {self.ended} of {total} runs ended in {WAIT} s")


def orchestration(agents: int, max_concurrent: int) -> dict[str, Any]:
    """One service: the four slots' queue times (ms), then 4 x ``agents`` manual jobs' overhead (ms/job)."""
    clock = ScaledClock(SPEED)
    table = real_clock_schedule()
    service = SyncService(
        dict.fromkeys(table, instant), clock=clock, schedule=table, store=agent_store(agents),
        max_concurrent=max_concurrent,
    )
    ends = Ends(clock)
    service.events.subscribe(ends)
    service.start()
    try:
        jobs = agents * len(PER_AGENT_TYPES)
        ends.wait(jobs)  # the four slots
        assert service.epoch is not None
        queued_ms = [
            (ends.queued[t] - (service.epoch + table[t].start_delay)) / SPEED * 1000 for t in PER_AGENT_TYPES
        ]
        began = time.perf_counter()
        futures = [service.request_sync_future(t, "manual") for t in PER_AGENT_TYPES]
        for future in futures:
            future.result(WAIT)
        ends.wait(2 * jobs)
        overhead_ms = (time.perf_counter() - began) / jobs * 1000
    finally:
        service.stop()
    return {"queued_ms": queued_ms, "overhead_ms": overhead_ms}


def run_all_types(service: SyncService, ends: Ends, rounds: int, agents: int) -> None:
    for _ in range(rounds):
        target = ends.ended + agents * len(PER_AGENT_TYPES)
        for sync_type in PER_AGENT_TYPES:
            service.request_sync(sync_type, "manual", timeout=WAIT)
        ends.wait(target)


def paused_service(agents: int) -> tuple[SyncService, Ends]:
    clock = ScaledClock(1.0)
    table = {t: replace(e, enabled=False) for t, e in agent_split(DEFAULT_SCHEDULE).items()}
    store = agent_store(agents)
    handlers = dict.fromkeys(table, instant)
    service = SyncService(handlers, clock=clock, schedule=table, store=store, max_concurrent=8)
    ends = Ends(clock)
    service.events.subscribe(ends)
    return service, ends


def rss_child(agents: int) -> None:
    """Print this process's RSS (KiB) after its service ran every per-agent type 5 times per agent."""
    service, ends = paused_service(agents)
    service.start()
    try:
        run_all_types(service, ends, 5, agents)
        gc.collect()
        with open("/proc/self/status") as status:
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        print(json.dumps({"rss_kib": rss, "runs": ends.ended}), flush=True)
    finally:
        service.stop()


def rss_per_agent(agents: int) -> tuple[float, int]:
    """KiB per agent: RSS with ``agents`` minus RSS with none; and the runs made."""
    figures = []
    for count in (0, agents):
        out = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(count)], capture_output=True, text=True, check=True,
            timeout=WAIT,
        )
        figures.append(json.loads(out.stdout))
    return (figures[1]["rss_kib"] - figures[0]["rss_kib"]) / agents, figures[1]["runs"]


async def api_server(agents: int) -> None:
    """Serve the API over a service with ``agents`` agents and 4 runs each; READY <port>; until stdin ends."""
    service, ends = paused_service(agents)
    runner = web.AppRunner(create_app(service, secret=SECRET), access_log=None)
    await runner.setup()  # starts the service
    await asyncio.to_thread(run_all_types, service, ends, 1, agents)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    freeze_heap()  # as archibald-sync serve does
    print(f"READY {runner.addresses[0][1]}", flush=True)
    await asyncio.to_thread(sys.stdin.read)
    await runner.cleanup()


async def api_load(base: str, count: int) -> dict[str, list[float]]:
    """``count`` sequential GETs of each path (after 20 unmeasured), latencies in ms."""
    token = make_token(SECRET, role="admin", sub="bench")
    headers = {"Authorization": f"Bearer {token}"}
    result: dict[str, list[float]] = {}
    async with aiohttp.ClientSession() as session:
        for path in ("/api/sync/status", "/api/sync/agents"):
            latencies = []
            for i in range(count + 20):
                began = time.perf_counter()
                async with session.get(base + path, headers=headers) as response:
                    body = await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
                if i >= 20:
                    latencies.append((time.perf_counter() - began) * 1000)
            result[path] = latencies
    return result


def api_latency(agents: int, count: int) -> dict[str, dict[str, float]]:
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-api", str(agents)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        port = int(server.stdout.readline().split()[1])
        latencies = asyncio.run(api_load(f"http://127.0.0.1:{port}", count))
    finally:
        server.stdin.close()
        server.wait(60)
    return {path: {"p50": percentile(v, 0.5), "p99": percentile(v, 0.99)} for path, v in latencies.items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


# --- the simulated week --------------------------------------------------------------

WEEK_HOURS = 7 * 24.0
SAMPLE_EVERY = 600.0


def staleness_samples(
    runs: Sequence[SimulatedRun], pairs: list[tuple[str, str | None]]
) -> dict[str, list[float]]:
    """Per type, the staleness of each of its (type, agent) pairs every ``SAMPLE_EVERY`` seconds."""
    successes: dict[tuple[str, str | None], list[float]] = {pair: [] for pair in pairs}
    for run in runs:
        if run.outcome == "success" and run.finished is not None:
            successes[(run.sync_type, run.agent_id)].append(run.finished)
    samples: dict[str, list[float]] = {}
    end = WEEK_HOURS * 3600.0
    for (sync_type, _agent), finished in successes.items():
        finished.sort()
        taken, last, now = samples.setdefault(sync_type, []), 0.0, SAMPLE_EVERY
        i = 0
        while now <= end:
            while i < len(finished) and finished[i] <= now:
                last, i = finished[i], i + 1
            taken.append(now - last)
            now += SAMPLE_EVERY
    return samples


def simulate_week(agents: int, max_concurrent: int, seed: int) -> tuple[float, dict[str, list[float]], int]:
    """Wall seconds, staleness samples (clock seconds) per type, runs; over a simulated week.

    The week runs in the planning sandbox (the real service on a ``ManualClock``, what
    ``simulate`` and the console's previews run), with the demo's durations and logins.
    """
    table = agent_split(DEFAULT_SCHEDULE)
    ids = demo_agent_ids(agents)
    scenario = Scenario(
        schedule=table,
        hours=WEEK_HOURS,
        workload=Workload(seed=seed),
        agents=tuple(Agent(agent_id) for agent_id in ids),
        max_concurrent=max_concurrent,
    )
    began = time.perf_counter()
    result = run_scenario(scenario)
    wall = time.perf_counter() - began
    pairs = [(t, a) for t, e in table.items() for a in (ids if e.per_agent else [None])]
    ended = [r for r in result.runs if r.outcome != "running"]
    return wall, staleness_samples(ended, pairs), len(ended)


def week_table(agents: int, budgets: list[int], seed: int) -> None:
    table = agent_split(DEFAULT_SCHEDULE)
    print(f"\nSimulated week, {agents} agents, demo durations (no flaws), seed {seed}:")
    results: dict[int, dict[str, float]] = {}
    for budget in budgets:
        wall, samples, runs = simulate_week(agents, budget, seed)
        results[budget] = {t: percentile(v, 0.99) for t, v in samples.items()}
        verdict = "met" if wall < 10 else "NOT met"
        print(f"  max_concurrent {budget}: {wall:.1f} s wall for {runs} runs (goal < 10 s: {verdict})")
    header = "".join(f" {'mc ' + str(b):>12}" for b in budgets)
    print(f"\n  p99 staleness (h:mm) per type{' ' * 4}\n  {'type':<10} {'scope':<9} {'threshold':>9}{header}")
    for sync_type, entry in table.items():
        threshold = entry.stale_after_minutes * 60
        cells = "".join(
            f" {hm(results[b][sync_type]) + (' ok' if results[b][sync_type] <= threshold else ' OVER'):>12}"
            for b in budgets
        )
        scope = "per agent" if entry.per_agent else "shared"
        print(f"  {sync_type:<10} {scope:<9} {hm(threshold):>9}{cells}")


def hm(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


# --- main ----------------------------------------------------------------------------


def summary(name: str, values: list[float], goal: float, unit: str, fmt: Callable[[float], str]) -> None:
    median = statistics.median(values)
    rounds = ", ".join(fmt(v) for v in values)
    verdict = "met" if median < goal else "NOT met"
    print(f"  {name:<34} median {fmt(median):>8} {unit} (rounds: {rounds}) goal < {goal:g} {unit}: {verdict}")


def real_clock_part(args: argparse.Namespace) -> None:
    print(f"{args.agents} agents, 4 per-agent types, instant handlers, real clock; {args.rounds} rounds")
    figures: Mapping[str, list[float]] = {
        k: [] for k in ("queued1", "queued8", "overhead1", "overhead8", "status", "agents", "rss")
    }
    for _ in range(args.rounds):
        for budget in (1, 8):
            result = orchestration(args.agents, budget)
            figures[f"queued{budget}"].append(max(result["queued_ms"]))
            figures[f"overhead{budget}"].append(result["overhead_ms"])
        api = api_latency(args.agents, args.requests)
        figures["status"].append(api["/api/sync/status"]["p99"])
        figures["agents"].append(api["/api/sync/agents"]["p99"])
        rss, _runs = rss_per_agent(args.agents)
        figures["rss"].append(rss)
        print(
            f"  round: queued max {max(figures['queued1'][-1], figures['queued8'][-1]):.1f} ms, overhead "
            f"{figures['overhead1'][-1]:.3f}/{figures['overhead8'][-1]:.3f} ms/job (mc 1/8), status p50 "
            f"{api['/api/sync/status']['p50']:.1f} p99 {figures['status'][-1]:.1f} ms, agents p50 "
            f"{api['/api/sync/agents']['p50']:.1f} p99 {figures['agents'][-1]:.1f} ms, "
            f"RSS {rss:.1f} KiB/agent",
            flush=True,
        )
    two = lambda v: f"{v:.2f}"  # noqa: E731
    three = lambda v: f"{v:.3f}"  # noqa: E731
    summary("slot to jobs queued (worst of 4), mc 1", figures["queued1"], 100, "ms", two)
    summary("slot to jobs queued (worst of 4), mc 8", figures["queued8"], 100, "ms", two)
    summary("overhead per job, mc 1", figures["overhead1"], 1, "ms", three)
    summary("overhead per job, mc 8", figures["overhead8"], 1, "ms", three)
    summary("GET /api/sync/status p99", figures["status"], 50, "ms", two)
    summary("GET /api/sync/agents p99", figures["agents"], 50, "ms", two)
    summary("RSS per agent", figures["rss"], 50, "KiB", two)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300, help="measured GETs per path per round")
    parser.add_argument("--week-agents", type=int, default=60)
    parser.add_argument("--budgets", default="1,2,4", help="max_concurrent values of the week")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-week", action="store_true")
    parser.add_argument("--only-week", action="store_true")
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-api", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child is not None:
        rss_child(args.rss_child)
        return
    if args.serve_api is not None:
        asyncio.run(api_server(args.serve_api))
        return
    if not args.only_week:
        real_clock_part(args)
    if not args.skip_week:
        week_table(args.week_agents, [int(b) for b in args.budgets.split(",")], args.seed)


if __name__ == "__main__":
    main()
