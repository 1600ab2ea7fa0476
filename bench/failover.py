"""Leader failover after SIGKILL: time to the next leader, and what the ledger shows afterwards.

What it measures
----------------
``--replicas`` (default 3) real ``archibald-sync serve`` processes share a throwaway
PostgreSQL schema at ``--speed`` (default 600: one schedule minute is 0.1 real seconds).
``--kills`` times (default 20) the bench finds the leader (``GET /api/sync/status``,
``role``), SIGKILLs it, and times how long until a survivor announces
``leadership.changed`` with ``role: leader`` on its Server-Sent Events stream (open on
every replica before the kill; the event is pushed the moment the survivor's supervisor
takes over). Then it starts a replacement and lets the new leader run a few syncs.

At the end every replica gets SIGTERM and the ledger (``runs`` and ``slot_claims``) is
checked, on every type's grid from the epoch to 10 schedule minutes before the end:

* duplicates: a slot recorded twice (must be 0);
* each slot that did not run is classified: ``in flight`` (claimed, so it was running
  when its leader was killed: at most once, by design), ``caught up`` (not claimed, inside
  a leaderless window [kill - 10 min, elected], and the next slot of its type ran no
  later than the election: skipped by the catch-up of the slot rule, docs/design.md) or
  ``unexplained``.

Schedule time across processes: every replica anchors its scaled clock at the stored
epoch (a real instant), so all of them, and this script, share one time line.

Peers (not run here, no such cluster on this machine): Quartz's JDBC job store notices a
dead node after about 2 x ``clusterCheckinInterval`` (7.5 s), about 15 s; Oban and
APScheduler 4 rely on leases/heartbeats of about 30 s. Our survivors poll an advisory
lock every 0.25 s, and PostgreSQL frees it the moment the killed process's socket closes.

Run (from the repo root; needs PostgreSQL, default the test server)::

    .venv/bin/python bench/failover.py                    # 20 kills among 3 replicas, ~1 min
    .venv/bin/python bench/failover.py --kills 5 --replicas 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import select
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import psycopg
from psycopg import sql

from archibald_actors import DEFAULT_SCHEDULE
from archibald_actors.store import PostgresStore, postgres_url
from archibald_actors.web.auth import make_token

MINUTE = 60.0
QUEUED_SLACK = 10 * MINUTE
EPSILON = 1 * MINUTE
FIRST_ELECTION = 5 * MINUTE
START_TIMEOUT = 30.0
ELECT_TIMEOUT = 5.0
_pause = threading.Event()  # never set: its wait() is the bounded pause between polls


@dataclass
class Replica:
    """A ``serve`` subprocess and the times its event stream announced it the leader."""

    name: str
    proc: subprocess.Popen[bytes]
    base: str = ""
    elected: list[float] = field(default_factory=list)  # monotonic


class Bench:
    """Starts replicas, watches their event streams, kills leaders."""

    def __init__(self, args: argparse.Namespace, schema: str, anchor: datetime) -> None:
        self.args = args
        self.schema = schema
        self.anchor = anchor
        self.secret = secrets.token_hex(32)
        self.token = make_token(self.secret, role="admin", sub="bench", ttl=3600)
        self.live: list[Replica] = []
        self.all: list[Replica] = []
        self.changed = threading.Condition()

    def start(self, count: int) -> None:
        """Start ``count`` replicas at once; return when each listens and its stream is open."""
        serve = ["serve", "--port", "0", "--db", postgres_url(self.args.pg_dsn), "--schema", self.schema]
        serve += ["--speed", f"{self.args.speed:g}", "--log-level", "WARNING"]
        command = [sys.executable, "-m", "archibald_actors", *serve]
        env = {**os.environ, "ARCHIBALD_JWT_SECRET": self.secret}
        new = []
        for _ in range(count):
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0
            )
            new.append(Replica(f"r{len(self.all)}", proc))
            self.all.append(new[-1])
        deadline = time.monotonic() + START_TIMEOUT
        for replica in new:
            replica.base = _listening(replica.proc, deadline)
            ready = threading.Event()
            threading.Thread(
                target=self._watch, args=(replica, ready), name=f"sse-{replica.name}", daemon=True
            ).start()
            if not ready.wait(START_TIMEOUT):
                raise RuntimeError(f"no event stream from {replica.name}")
            self.live.append(replica)

    def _watch(self, replica: Replica, ready: threading.Event) -> None:
        """Record every ``leadership.changed`` to ``leader`` of one replica (its thread)."""
        url = f"{replica.base}/api/sync/events?token={self.token}"
        event = ""
        try:
            with urllib.request.urlopen(url, timeout=3600) as stream:
                ready.set()
                for raw in stream:
                    line = raw.decode().rstrip("\n")
                    if line.startswith("event: "):
                        event = line[7:]
                    elif event == "leadership.changed" and line.startswith("data: "):
                        role = json.loads(line[6:]).get("role")
                        with self.changed:
                            if role == "leader":
                                replica.elected.append(time.monotonic())
                            self.changed.notify_all()
        except OSError:
            pass  # the replica is gone
        finally:
            ready.set()

    def status(self, replica: Replica) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{replica.base}/api/sync/status", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())["data"]
            return data

    def leader(self) -> Replica:
        """The one replica reporting ``leader`` (polled every 10 ms until there is one)."""
        deadline = time.monotonic() + ELECT_TIMEOUT
        while True:
            leaders = [r for r in self.live if self.status(r)["role"] == "leader"]
            if len(leaders) > 1:
                raise AssertionError(f"two leaders at once: {[r.name for r in leaders]}")
            if leaders:
                return leaders[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no leader within {ELECT_TIMEOUT} s")
            _pause.wait(0.01)

    def kill_leader(self) -> tuple[float, float, float]:
        """SIGKILL the leader; return (real seconds to the next leader, kill wall time, elected wall time)."""
        leader = self.leader()
        survivors = [r for r in self.live if r is not leader]
        killed_wall, killed = time.time(), time.monotonic()
        leader.proc.kill()
        leader.proc.wait(10)
        self.live.remove(leader)
        with self.changed:
            found = self.changed.wait_for(
                lambda: any(t > killed for r in survivors for t in r.elected), ELECT_TIMEOUT
            )
        if not found:
            raise AssertionError(f"no survivor announced leadership within {ELECT_TIMEOUT} s")
        elected = min(t for r in survivors for t in r.elected if t > killed)
        return elected - killed, killed_wall, killed_wall + (elected - killed)

    def await_runs(self, count: int, timeout: float) -> bool:
        """Until the leader has completed ``count`` runs; False if it did not within ``timeout``."""
        leader = self.leader()
        deadline = time.monotonic() + timeout
        while sum(t["runs"] for t in self.status(leader)["types"].values()) < count:
            if time.monotonic() > deadline:
                return False
            _pause.wait(0.05)
        return True

    def terminate(self) -> list[int | None]:
        for replica in self.live:
            replica.proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for replica in self.live:
            try:
                codes.append(replica.proc.wait(20))
            except subprocess.TimeoutExpired:
                codes.append(None)
        self.live.clear()
        return codes

    def close(self) -> None:
        for replica in self.all:
            if replica.proc.poll() is None:
                replica.proc.kill()
            replica.proc.wait(20)
            if replica.proc.stdout is not None:
                replica.proc.stdout.close()


def _listening(proc: subprocess.Popen[bytes], deadline: float) -> str:
    assert proc.stdout is not None
    buffer = b""
    while not (match := re.search(rb"^listening on (http://\S+)$", buffer, re.MULTILINE)):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([proc.stdout], [], [], remaining)[0]:
            raise RuntimeError("a replica did not start in time")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            raise RuntimeError("a replica exited before listening")
        buffer += chunk
    return match[1].decode()


def audit(
    dsn: str, schema: str, anchor: datetime, speed: float, kills: list[tuple[float, float]], end: float
) -> dict[str, Any]:
    """Duplicates and misses in the ledger (see the module docstring)."""
    store = PostgresStore(dsn, schema)
    try:
        epoch = store.load().epoch
        runs = store.runs(limit=1_000_000)
    finally:
        store.close()
    assert epoch is not None
    with psycopg.connect(dsn, autocommit=True) as conn:
        query = sql.SQL("SELECT sync_type, slot_ms FROM {}.slot_claims").format(sql.Identifier(schema))
        claims = {(t, int(ms)) for t, ms in conn.execute(query).fetchall()}
    origin = (epoch - anchor).total_seconds() * speed  # the epoch is a real instant

    def at(wall: float) -> float:  # real wall time as schedule seconds after the epoch
        return (wall - anchor.timestamp()) * speed - origin

    windows = [(float("-inf"), FIRST_ELECTION)] + [(at(k) - QUEUED_SLACK, at(e)) for k, e in kills]
    cutoff = at(end) - QUEUED_SLACK
    counts: Counter[str] = Counter()
    unexplained: list[str] = []
    for sync_type, entry in DEFAULT_SCHEDULE.items():
        recorded = [
            round((r.scheduled_at - epoch).total_seconds() / MINUTE) * 60_000
            for r in runs
            if r.sync_type == sync_type and r.scheduled_at is not None
        ]
        counts["duplicates"] += sum(n - 1 for n in Counter(recorded).values())
        ran = set(recorded)
        claimed = {ms for t, ms in claims if t == sync_type}
        taken = sorted(ran | claimed)
        k = 0
        while (slot := entry.start_delay + k * entry.interval) <= cutoff:
            k += 1
            key = round(slot * 1000)
            counts["due"] += 1
            after = next((ms / 1000 for ms in taken if ms > key), None)
            if key in ran:
                counts["ran"] += 1
            elif key in claimed and any(
                at(kill) - QUEUED_SLACK <= slot <= at(kill) + EPSILON for kill, _ in kills
            ):
                counts["in flight"] += 1
            elif (
                key not in claimed
                and after is not None
                and any(a <= slot <= e and after <= e + EPSILON for a, e in windows)
            ):
                counts["caught up"] += 1
            else:
                counts["unexplained"] += 1
                unexplained.append(f"{sync_type} T+{slot / MINUTE:g}")
    return {"runs": len(runs), "counts": counts, "unexplained": unexplained}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=3, choices=[2, 3, 4])
    parser.add_argument("--speed", type=float, default=600.0)
    parser.add_argument(
        "--runs-between", type=int, default=2, help="runs of each new leader before the next kill"
    )
    parser.add_argument(
        "--term-timeout", type=float, default=5.0, help="real seconds to wait for those runs (default 5)"
    )
    parser.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 user=postgres dbname=test")
    args = parser.parse_args()

    schema = f"bench_failover_{uuid4().hex[:8]}"
    anchor = datetime.now(UTC)
    bench = Bench(args, schema, anchor)
    failovers: list[float] = []
    kills: list[tuple[float, float]] = []
    stalls = 0
    began = time.monotonic()
    try:
        try:
            bench.start(args.replicas)
            bench.await_runs(2, 20.0)
            for _ in range(args.kills):
                seconds, killed, elected = bench.kill_leader()
                failovers.append(seconds)
                kills.append((killed, elected))
                bench.start(1)
                if not bench.await_runs(args.runs_between, args.term_timeout):
                    stalls += 1
            end = time.time()
            codes = bench.terminate()
        finally:
            bench.close()
        result = audit(args.pg_dsn, schema, anchor, args.speed, kills, end)
    finally:
        with psycopg.connect(args.pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    ms = sorted(f * 1000 for f in failovers)
    print(f"{len(ms)} SIGKILLs of the leader among {args.replicas} replicas, --speed {args.speed:g}")
    print(f"wall time {time.monotonic() - began:.1f} s; SIGTERM exit codes at the end: {codes}")
    print(f"terms whose leader ran fewer than {args.runs_between} syncs in {args.term_timeout:g} s: {stalls}")
    print()
    print("kill -> survivor announces leadership (SSE leadership.changed), real ms")
    print(f"  {'p50':>8} {'p99':>8} {'max':>8} {'mean':>8} {'min':>8}")
    p50, p99 = ms[len(ms) // 2], ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"  {p50:>8.0f} {p99:>8.0f} {ms[-1]:>8.0f} {statistics.fmean(ms):>8.0f} {ms[0]:>8.0f}")
    print("  each:", " ".join(f"{f * 1000:.0f}" for f in failovers))
    print()
    counts = result["counts"]
    print(f"ledger: {result['runs']} runs; slots due in the audited span: {counts['due']}")
    print(f"  {'ran':>6} {'in flight':>10} {'caught up':>10} {'unexplained':>12} {'duplicates':>11}")
    print(
        f"  {counts['ran']:>6} {counts['in flight']:>10} {counts['caught up']:>10}"
        f" {counts['unexplained']:>12} {counts['duplicates']:>11}"
    )
    if result["unexplained"]:
        print("  unexplained misses:", ", ".join(result["unexplained"]))
    print()
    print(
        f"peers, in words: Quartz (JDBC, clustered) ~15 s, Oban / APScheduler 4 ~30 s to notice a dead node;"
        f" here p99 {p99:.0f} ms, i.e. {15000 / p99:.0f}x and {30000 / p99:.0f}x faster."
    )


if __name__ == "__main__":
    main()
