"""SIGTERM to a real ``archibald-sync serve`` (SQLite store, 600x clock) at awkward moments.

Orders runs a handler (from ``--config``) that only ends when asked to stop, so a sync is
always running when the signal lands. Every test checks: exit code 0 within a bounded wait,
nothing logged at ERROR, and what the service answered is what the database holds: every
retune answered 200, the running sync in the ledger, and a manual run answered 202 but still
queued at the signal runs after the restart.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from serve_process import STOP_TIMEOUT

from archibald_actors.store.sqlite import SqliteStore

from .serve import Serve, call, start_serve, stop, wait_running

SPEED = "600"
HANDLERS = '''
def endless(ctx):
    """Runs until the service asks it to stop (ctx.sleep raises then)."""
    ctx.sleep(86400)
'''
CONFIG = """
[sync.orders]
handler = "attack_handlers:endless"
timeout_seconds = 86400
"""
#: Types whose timing the retuning clients own, one client each.
RETUNED = ("customers", "prices", "invoices", "ddt")
#: Answers each client must have had before the signal is sent.
ANSWERS_BEFORE_SIGNAL = 10


@pytest.fixture
def secret() -> str:
    return "shutdown-tests-secret-" + "s" * 42


@pytest.fixture
def server(tmp_path: Path, secret: str) -> Iterator[Serve]:
    """``serve`` with the endless orders handler, orders already running."""
    (tmp_path / "attack_handlers.py").write_text(HANDLERS, encoding="utf-8")
    (tmp_path / "sync.toml").write_text(CONFIG, encoding="utf-8")
    running = start_serve(tmp_path, secret, "--speed", SPEED, "--config", "sync.toml")
    try:
        wait_running(running, "orders")
        yield running
    finally:
        stop(running.proc)


def terminate(server: Serve) -> None:
    """SIGTERM; the process must exit 0 within the bound and log nothing at ERROR."""
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(STOP_TIMEOUT) == 0, server.stderr()
    assert not server.errors_logged(), server.errors_logged()


def stored(db: Path) -> tuple[dict[str, Any], list[Any]]:
    """The schedule entries and the ledger as the database holds them."""
    store = SqliteStore(db)
    try:
        return store.load().entries, store.runs(limit=1000)
    finally:
        store.close()


# --- clients that keep going until the server is gone ------------------------------------


@dataclass
class Retuner:
    """Retunes one type again and again, each time to a larger interval; remembers what was answered."""

    server: Serve
    sync_type: str
    answered: list[float] = field(default_factory=list)  # values answered 200, in order
    sent: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    enough: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        for step in range(1, 100_000):
            value = 5 + step / 1000  # a float, 5 to 105 minutes: every value distinct
            self.sent.append(value)
            try:
                status, _ = call(
                    "POST",
                    f"{self.server.api}/schedule",
                    self.server.admin_token,
                    {"syncType": self.sync_type, "intervalMinutes": value},
                )
            except OSError:  # refused or reset: the server is going away
                break
            self.statuses.append(status)
            if status != 200:
                break
            self.answered.append(value)
            if len(self.answered) >= ANSWERS_BEFORE_SIGNAL:
                self.enough.set()
        self.enough.set()


def run_threads(targets: list[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    return threads


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(STOP_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a client thread is still talking to a dead server"


def check_retunes_durable(retuners: list[Retuner], entries: dict[str, Any]) -> None:
    """The database holds the last value answered 200, or the one in flight when the server went."""
    for retuner in retuners:
        assert retuner.answered, f"{retuner.sync_type}: no retune was answered"
        assert 500 not in retuner.statuses, retuner.statuses
        last_ok = retuner.answered[-1]
        in_flight = retuner.sent[len(retuner.answered) :]  # sent after the last 200 (at most one)
        held = entries[retuner.sync_type].interval_minutes
        assert held == last_ok or held in in_flight, (retuner.sync_type, held, last_ok, in_flight)


# --- the tests -----------------------------------------------------------------------------


def test_sigterm_during_a_running_sync(server: Serve) -> None:
    terminate(server)
    _, runs = stored(server.db)
    orders = [r for r in runs if r.sync_type == "orders"]
    assert len(orders) == 1, runs
    assert orders[0].outcome in ("success", "cancelled"), orders[0]


def test_sigterm_during_retunes(server: Serve) -> None:
    retuners = [Retuner(server, t) for t in RETUNED]
    threads = run_threads([r.run for r in retuners])
    try:
        for retuner in retuners:
            assert retuner.enough.wait(STOP_TIMEOUT), f"{retuner.sync_type}: too few answers"
        terminate(server)  # the clients are still posting
    finally:
        stop(server.proc)
        join(threads)
    entries, runs = stored(server.db)
    check_retunes_durable(retuners, entries)
    assert [r.outcome for r in runs if r.sync_type == "orders"] in (["cancelled"], ["success"])


@dataclass
class Reader:
    """Reads schedule, status and history, and asks for manual runs, until the server is gone."""

    server: Serve
    index: int
    statuses: list[int] = field(default_factory=list)
    accepted: list[dict[str, Any]] = field(default_factory=list)  # 202 bodies of manual runs

    def run(self) -> None:
        reads = ("/schedule", "/status", "/history?limit=5")
        for step in range(100_000):
            try:
                if step % 4 == 3:
                    sync_type = RETUNED[(self.index + step) % len(RETUNED)]
                    status, body = call("POST", f"{self.server.api}/{sync_type}/run", self.server.admin_token)
                    if status == 202:
                        self.accepted.append(body["data"])
                else:
                    status, _ = call("GET", f"{self.server.api}{reads[step % 3]}", self.server.admin_token)
            except OSError:
                break
            self.statuses.append(status)
            if status >= 500:
                break


def test_sigterm_during_a_burst_of_requests(server: Serve) -> None:
    retuners = [Retuner(server, t) for t in RETUNED]
    readers = [Reader(server, i) for i in range(12)]
    threads = run_threads([r.run for r in retuners] + [r.run for r in readers])
    try:
        for retuner in retuners:
            assert retuner.enough.wait(STOP_TIMEOUT), f"{retuner.sync_type}: too few answers"
        terminate(server)
    finally:
        stop(server.proc)
        join(threads)
    entries, _ = stored(server.db)
    check_retunes_durable(retuners, entries)
    statuses = [s for r in readers for s in r.statuses]
    assert statuses, "the readers got no answer at all"
    assert set(statuses) <= {200, 202, 503}, sorted(set(statuses))  # 503: the service is stopping
    assert any(r.accepted for r in readers)


def test_a_queued_manual_run_survives_sigterm(server: Serve, tmp_path: Path, secret: str) -> None:
    status, body = call("POST", f"{server.api}/prices/run", server.admin_token)
    assert status == 202 and body["data"] == {"syncType": "prices", "coalesced": False}
    status, body = call("GET", f"{server.api}/status", server.admin_token)
    assert {"syncType": "prices", "trigger": "manual"} in [
        {k: q[k] for k in ("syncType", "trigger")} for q in body["data"]["queue"]
    ]
    terminate(server)
    _, runs = stored(server.db)
    ran = any(r.sync_type == "prices" and r.trigger == "manual" for r in runs)

    again = start_serve(tmp_path, secret, "--speed", SPEED, "--config", "sync.toml", name="restarted")
    try:
        wait_running(again, "orders")  # the restarted service is up and busy again
        status, body = call("GET", f"{again.api}/status", again.admin_token)
        assert status == 200
        queued = [(q["syncType"], q["trigger"]) for q in body["data"]["queue"]]
        running = body["data"]["running"]
        status, history = call("GET", f"{again.api}/history?syncType=prices", again.admin_token)
        assert status == 200
        restored = (
            ("prices", "manual") in queued
            or (running is not None and (running["syncType"], running["trigger"]) == ("prices", "manual"))
            or any(r["trigger"] == "manual" for r in history["data"])
        )
        assert ran or restored, f"the accepted manual prices run is gone: queue {queued}, ledger {runs}"
    finally:
        stop(again.proc)
