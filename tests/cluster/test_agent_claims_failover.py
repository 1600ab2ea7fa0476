"""Per-agent jobs on two ``archibald-sync serve`` replicas sharing one PostgreSQL schema, the leader killed.

Each replica runs ``serve --demo-agents 5 --max-concurrent 3`` (the real split: orders,
customers, ddt and invoices per agent) at ``--speed 300``, where one schedule minute is
0.2 real seconds, so orders comes round for every agent every 2 real seconds and an
orders job runs for 100 to 200 ms (slow enough to be caught running). The test reads
both replicas' Server-Sent Events from the start. Once the leader has recorded a run of
every agent, it is SIGKILLed the moment its stream says an orders job started while
another agent's orders job still waits: jobs are running, claimed but unfinished, and
others are queued. The survivor takes over, a replacement replica joins as a follower,
and the survivor must run every agent's jobs again. Then both get SIGTERM and the store
is read (``agent_claims`` and the ``runs`` ledger with ``agent_id``):

* no (type, agent, slot) is claimed twice, and no try of one (its ``attempt``) runs twice;
* every run of a slot went through its claim (a breaker's skip records without one);
* no (type, agent, slot) started on both replicas, and none the killed leader left
  running (claimed, unfinished) started again on the survivor;
* both replicas' recorded runs are in the ledger, and every agent has runs of at least
  two orders slots recorded by the survivor.

No sleeps: every wait is on a replica's output, its event stream or its status, bounded.
"""

from __future__ import annotations

import http.client
import json
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from pg_server import PG_DSN
from psycopg import sql
from serve_process import LISTENING, START_TIMEOUT, STOP_TIMEOUT, LineReader, call, spawn_serve, stop

from archibald_actors.breaker import BREAKER_OPEN_REASON
from archibald_actors.handlers.demo_agents import PER_AGENT_TYPES, demo_agent_ids
from archibald_actors.store import postgres_url
from archibald_actors.web.auth import make_token

SPEED = 300.0  # one schedule minute = 0.2 real seconds
AGENTS = demo_agent_ids(5)
#: Real seconds one phase may take (a start, an election, the runs a phase waits for).
PHASE_TIMEOUT = 20.0
#: Orders slots every agent must have recorded on the survivor after the failover.
SLOTS_AFTER = 2

Key = tuple[str, str, int]  # (syncType, agentId, slot in whole schedule minutes after the epoch)
Try = tuple[str, str, int, int]  # a Key and its attempt

_pause = threading.Event()  # never set: its wait() is the bounded pause between polls


class EventStream:
    """A replica's ``GET /api/sync/events``, read on a thread of the test until the stream ends.

    The stream is subscribed when the constructor returns (the server adds the client
    before it sends its headers), so no event after that is missed.
    """

    def __init__(self, name: str, base: str, token: str) -> None:
        request = urllib.request.Request(
            f"{base}/api/sync/events", headers={"Authorization": f"Bearer {token}"}
        )
        self._response = urllib.request.urlopen(request, timeout=60)
        self.events: list[dict[str, Any]] = []
        self.ended = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, name=f"test-sse-{name}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        data: list[str] = []
        try:
            for raw in self._response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    event = json.loads("\n".join(data))
                    data.clear()
                    with self._cond:
                        self.events.append(event)
                        self._cond.notify_all()
        except (OSError, http.client.HTTPException):
            pass  # the replica was killed under the stream
        finally:
            self._response.close()
            with self._cond:
                self.ended.set()
                self._cond.notify_all()

    def wait_for(self, what: str, done: Callable[[list[dict[str, Any]]], bool]) -> None:
        """Wait until ``done(events)``; AssertionError after ``PHASE_TIMEOUT`` or if the stream ends first."""
        with self._cond:
            ok = self._cond.wait_for(lambda: done(self.events) or self.ended.is_set(), PHASE_TIMEOUT)
            assert ok and done(self.events), (
                f"{what}: not seen in {PHASE_TIMEOUT} s (ended: {self.ended.is_set()})"
            )

    def snapshot(self) -> list[dict[str, Any]]:
        """The events seen so far."""
        with self._cond:
            return list(self.events)

    def join(self) -> None:
        """Wait for the reading thread (its replica is gone, so the stream has ended)."""
        self._thread.join(STOP_TIMEOUT)
        assert not self._thread.is_alive(), "an event stream did not end with its replica"


class Replicas:
    """``serve`` subprocesses on one schema: started, found, killed; ``close()`` kills any left."""

    def __init__(self, schema: str, logs: Path) -> None:
        self.schema = schema
        self.logs = logs
        secret = secrets.token_hex(32)
        self.secret = secret
        self.token = make_token(secret, role="admin", sub="test", ttl=3600)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.bases: dict[str, str] = {}

    def start(self, count: int) -> list[str]:
        """Start ``count`` replicas at once; return their names once each is listening."""
        args = ["--port", "0", "--db", postgres_url(PG_DSN), "--schema", self.schema, "--speed", f"{SPEED:g}"]
        args += ["--demo-agents", str(len(AGENTS)), "--max-concurrent", "3", "--seed", "1"]
        readers: dict[str, LineReader] = {}
        for _ in range(count):
            name = f"r{len(self.procs)}"
            proc, readers[name] = spawn_serve(args, secret=self.secret, stderr_path=self.logs / f"{name}.err")
            self.procs[name] = proc
        deadline = time.monotonic() + START_TIMEOUT
        for name, reader in readers.items():
            self.bases[name] = reader.until(LISTENING, deadline)[1]
        return list(readers)

    def status(self, name: str) -> dict[str, Any]:
        """The replica's ``GET /api/sync/status`` data."""
        code, answer = call("GET", f"{self.bases[name]}/api/sync/status", self.token)
        assert code == 200 and answer["success"], (name, code, answer)
        data: dict[str, Any] = answer["data"]
        return data

    def await_leader(self, among: Iterable[str]) -> str:
        """Poll every 10 ms until exactly one of ``among`` leads; assert no sweep sees two."""
        names, deadline = list(among), time.monotonic() + PHASE_TIMEOUT
        while not (leaders := [n for n in names if self.status(n)["role"] == "leader"]):
            assert time.monotonic() < deadline, f"no leader among {names} within {PHASE_TIMEOUT} s"
            _pause.wait(0.01)
        assert len(leaders) == 1, f"two leaders at once: {leaders}"
        return leaders[0]

    def kill(self, name: str) -> None:
        """SIGKILL the replica and reap it."""
        self.procs[name].kill()
        self.procs[name].wait(STOP_TIMEOUT)

    def terminate(self) -> dict[str, int | None]:
        """SIGTERM every replica still running; return each one's exit code (None: it hung)."""
        running = [name for name, proc in self.procs.items() if proc.poll() is None]
        for name in running:
            self.procs[name].send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name in running:
            try:
                codes[name] = self.procs[name].wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                codes[name] = None
        return codes

    def close(self) -> None:
        """Kill and reap every replica (a no-op for those already gone)."""
        for proc in self.procs.values():
            stop(proc)

    def tails(self) -> str:
        """The end of every replica's stderr, for a failure's report."""
        return "".join(
            f"--- {name} stderr ---\n{(self.logs / f'{name}.err').read_text(errors='replace')[-3000:]}\n"
            for name in self.procs
        )


class Slots:
    """Slot keys relative to the stored epoch (every replica's schedule time starts there)."""

    def __init__(self, epoch: datetime) -> None:
        self.epoch = epoch

    def minute(self, at: datetime) -> int:
        """``at`` (a slot's schedule wall time) as whole minutes after the epoch.

        A replica's ``scheduledAt`` is off by a few milliseconds of real time, so a few
        schedule seconds at this speed; slots are whole minutes, so rounding is exact.
        """
        return round((at - self.epoch).total_seconds() / 60.0)

    def tries(self, events: Iterable[dict[str, Any]], kinds: Iterable[str]) -> set[Try]:
        """The per-agent slot jobs (and their attempt) of ``events`` of the given types."""
        wanted = set(kinds)
        return {
            (e["syncType"], e["agentId"], self.minute(datetime.fromisoformat(e["scheduledAt"])), e["attempt"])
            for e in events
            if e["type"] in wanted and e.get("agentId") is not None and e.get("scheduledAt") is not None
        }


STARTED = ("sync.started",)
ENDED = ("sync.completed", "sync.failed", "sync.cancelled", "sync.skipped")


def keys(tries: Iterable[Try]) -> set[Key]:
    """The (type, agent, slot) of each try."""
    return {(t, a, s) for t, a, s, _ in tries}


def orders_slots(tries: Iterable[Try]) -> dict[str, set[int]]:
    """Per agent, the orders slots among ``tries``."""
    found: dict[str, set[int]] = {agent: set() for agent in AGENTS}
    for sync_type, agent, slot, _ in tries:
        if sync_type == "orders":
            found[agent].add(slot)
    return found


def read_epoch(admin: psycopg.Connection[tuple[Any, ...]], schema: str) -> datetime:
    """The stored epoch (a real instant), written when the first replica made the schema."""
    row = admin.execute(sql.SQL("SELECT epoch FROM {}.epoch").format(sql.Identifier(schema))).fetchone()
    assert row is not None
    epoch: datetime = row[0]
    return epoch


def test_agent_jobs_are_claimed_and_run_once_across_a_leader_kill(
    schema: str, admin: psycopg.Connection[tuple[Any, ...]], tmp_path: Path
) -> None:
    replicas = Replicas(schema, tmp_path)
    streams: dict[str, EventStream] = {}
    try:
        try:
            names = replicas.start(2)
            slots = Slots(read_epoch(admin, schema))
            streams = {name: EventStream(name, replicas.bases[name], replicas.token) for name in names}
            leader = replicas.await_leader(names)
            [survivor] = [name for name in names if name != leader]
            first, second = streams[leader], streams[survivor]

            # The leader at work: a run of every agent recorded (seen ending on its stream).
            first.wait_for(
                "a recorded run of every agent on the leader",
                lambda evs: {e.get("agentId") for e in evs if e["type"] in ENDED} >= set(AGENTS),
            )

            # Killed mid-stream: an orders job of an agent that ran fine just started and
            # another agent's orders job waits in the queue.
            mark = len(first.snapshot())

            def burst(events: list[dict[str, Any]]) -> bool:
                succeeded = {e["agentId"] for e in events if e["type"] == "sync.completed"}
                return any(
                    e["type"] == "sync.started"
                    and e["syncType"] == "orders"
                    and e["agentId"] in succeeded
                    and "orders" in e["queue"]
                    for e in events[mark:]
                )

            first.wait_for("an orders job starting with another queued", burst)
            replicas.kill(leader)
            first.wait_for("the end of the killed leader's stream", lambda _: first.ended.is_set())
            before = first.snapshot()
            left_running = keys(slots.tries(before, STARTED) - slots.tries(before, ENDED))

            assert replicas.await_leader([survivor]) == survivor
            [replacement] = replicas.start(1)
            assert replicas.status(replacement)["role"] == "follower"

            # The survivor goes on with every agent: two orders slots each, recorded.
            second.wait_for(
                f"{SLOTS_AFTER} orders slots of every agent recorded on the survivor",
                lambda evs: all(
                    len(s) >= SLOTS_AFTER for s in orders_slots(slots.tries(evs, ENDED)).values()
                ),
            )
            replacement_runs = sum(t["runs"] for t in replicas.status(replacement)["types"].values())
            exit_codes = replicas.terminate()
        except BaseException:
            sys.stderr.write(replicas.tails())
            raise
    finally:
        replicas.close()
        for stream in streams.values():
            stream.join()

    after = second.snapshot()
    ran = {"first": slots.tries(before, ENDED), "second": slots.tries(after, ENDED)}
    started = {"first": keys(slots.tries(before, STARTED)), "second": keys(slots.tries(after, STARTED))}

    schema_id = sql.Identifier(schema)
    claim_rows = admin.execute(
        sql.SQL("SELECT sync_type, agent_id, slot_ms FROM {}.agent_claims").format(schema_id)
    ).fetchall()
    run_rows = admin.execute(
        sql.SQL(
            "SELECT sync_type, agent_id, scheduled_at, attempt, outcome, reason FROM {}.runs"
            " WHERE agent_id IS NOT NULL AND scheduled_at IS NOT NULL"
        ).format(schema_id)
    ).fetchall()
    claims = Counter((t, a, round(ms / 60_000)) for t, a, ms in claim_rows)
    tries = Counter((t, a, slots.minute(at), n) for t, a, at, n, _, _ in run_rows)
    claimed_runs = {
        (t, a, slots.minute(at))
        for t, a, at, _, outcome, reason in run_rows
        if not (outcome == "skipped" and reason == BREAKER_OPEN_REASON)
    }

    assert exit_codes == {survivor: 0, replacement: 0}
    assert replacement_runs == 0, "the replacement ran jobs while the survivor led"
    assert {t for t, _, _ in claims} == set(PER_AGENT_TYPES)
    assert {a for _, a, _ in claims} == set(AGENTS)
    # Claimed once, run once: per (type, agent, slot), and per try of one.
    assert [k for k, n in claims.items() if n > 1] == []
    assert [k for k, n in tries.items() if n > 1] == []
    assert claimed_runs - set(claims) == set(), "runs of a slot nobody claimed"
    # The failover: nothing started on both, nothing the leader left running restarted.
    assert left_running, "the leader was killed with no job running"
    assert left_running <= set(claims)
    assert started["first"] & started["second"] == set()
    assert left_running & started["second"] == set()
    # Both replicas' runs are in the ledger; every agent went on after the failover.
    assert ran["first"] and ran["first"] <= set(tries)
    assert ran["second"] and ran["second"] <= set(tries)
    assert {a for _, a, _, _ in ran["first"]} == set(AGENTS)
    assert all(len(s) >= SLOTS_AFTER for s in orders_slots(ran["second"]).values())
