"""``Leadership`` against the real server: one leader, prompt failover, stepping down first."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from time import monotonic
from typing import Any

import psycopg
import pytest
from pg_server import PG_DSN

from archibald_actors.cluster import Leadership
from archibald_actors.cluster.channel import lock_key
from archibald_actors.errors import InvalidValueError, ServiceStateError

from .support import WAIT, FreezableProxy, Transitions, advisory_holders

MakeLeadership = Callable[..., tuple[Leadership, Transitions]]
Admin = psycopg.Connection[tuple[Any, ...]]
#: The failover budget of the cluster (SIGKILL or termination of the leader to a new leader).
FAILOVER = 2.0
REPO = Path(__file__).resolve().parents[2]


def _elect_one(make: MakeLeadership, **options: Any) -> tuple[tuple[Leadership, Transitions], ...]:
    """Two instances on one schema, once one of them leads: ``(leader, follower)``."""
    first, second = make(**options), make(**options)
    deadline = monotonic() + WAIT
    while "leader" not in (first[0].role, second[0].role):
        # Whichever wins sets its event; waiting on both in turn stays bounded.
        first[1].elected.wait(0.05)
        second[1].elected.wait(0.05)
        assert monotonic() < deadline, "nobody became the leader"
    return (first, second) if first[0].role == "leader" else (second, first)


def test_exactly_one_of_two_leads(make_leadership: MakeLeadership, admin: Admin, schema: str) -> None:
    (leader, seen), (follower, other) = _elect_one(make_leadership)
    # Several polls later the other one still follows.
    assert not other.elected.wait(1.0)
    assert (leader.role, follower.role) == ("leader", "follower")
    assert len(advisory_holders(admin, lock_key(schema))) == 1
    assert [what for what, _, _ in seen.log] == ["elected"]
    assert seen.log[0][2] == "archibald-leader", "callbacks run on the leadership thread"


def test_terminated_leader_steps_down_and_the_other_takes_over(
    make_leadership: MakeLeadership, admin: Admin, schema: str
) -> None:
    (leader, seen), (follower, other) = _elect_one(make_leadership)
    [pid] = advisory_holders(admin, lock_key(schema))
    start = monotonic()
    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert seen.deposed.wait(FAILOVER), "the leader did not notice it lost its connection"
    assert other.elected.wait(FAILOVER), "the follower did not take over"
    assert other.first("elected") - start < FAILOVER
    assert (follower.role, leader.role) == ("leader", "follower")
    # The old leader reconnects and competes again, as a follower now.
    deadline = monotonic() + WAIT
    while len(holders := _backends(admin, schema)) < 2:
        seen.elected.wait(0.05)
        assert monotonic() < deadline, f"the old leader did not reconnect: {holders}"
    assert leader.role == "follower" and [w for w, _, _ in seen.log] == ["elected", "deposed"]


def test_stop_hands_over_after_stepping_down(make_leadership: MakeLeadership) -> None:
    (leader, seen), (follower, other) = _elect_one(make_leadership)
    leader.stop()
    assert seen.deposed.is_set(), "stop() calls on_deposed of a leader"
    assert other.elected.wait(FAILOVER)
    # The old leader stepped down before releasing the lock: no two leaders at once.
    assert seen.first("deposed") <= other.first("elected")
    assert follower.role == "leader"
    assert leader.role == "follower"


def test_a_hung_connection_is_noticed_within_the_lease(make_leadership: MakeLeadership) -> None:
    proxy = FreezableProxy(PG_DSN)
    try:
        leader, seen = make_leadership(proxy.dsn, poll=0.1, lease=0.5)
        assert seen.elected.wait(WAIT)
        follower, other = make_leadership(poll=0.1)
        proxy.freeze()  # the server keeps the session, and the lock: no error, just silence
        start = monotonic()
        assert seen.deposed.wait(WAIT)
        assert seen.first("deposed") - start < 0.1 + 0.5 + 1.0  # poll + lease, with room for a busy host
        assert follower.role == "follower", "the hung session still holds the lock"
        proxy.close()  # the session ends at last, and the lock is free
        assert other.elected.wait(FAILOVER)
        assert leader.role == "follower"
    finally:
        proxy.close()


def test_unreachable_server_is_retried_without_crashing(make_leadership: MakeLeadership) -> None:
    with _closed_port() as port:
        leadership, seen = make_leadership(f"host=127.0.0.1 port={port} user=postgres dbname=test")
        assert not seen.elected.wait(0.5)
        assert leadership.role == "follower"
    leadership.stop()
    assert not seen.deposed.is_set()


def test_sigkilled_leader_process_fails_over_within_two_seconds(
    make_leadership: MakeLeadership, schema: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with _leader_process(schema) as child:
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(
            target=lambda: [lines.put(line) for line in child.stdout or ()], daemon=True
        )
        reader.start()
        try:
            assert lines.get(timeout=WAIT * 2).strip() == "elected", "the child process did not lead"
            _, seen = make_leadership()
            assert not seen.elected.wait(0.5), "the lock is the child's"
            start = monotonic()
            child.send_signal(signal.SIGKILL)
            assert seen.elected.wait(FAILOVER), "no failover within 2 s of SIGKILL"
            took = seen.first("elected") - start
            with capsys.disabled():
                print(f"\n[failover] SIGKILL of the leader process -> new leader in {took * 1000:.0f} ms")
            assert took < FAILOVER
        finally:
            child.kill()
            child.wait(WAIT)
            reader.join(WAIT)


def test_bad_settings_and_double_start_are_refused(schema: str) -> None:
    def make(**options: Any) -> Leadership:
        return Leadership(PG_DSN, schema, on_elected=lambda: None, on_deposed=lambda: None, **options)

    with pytest.raises(InvalidValueError, match="poll"):
        make(poll=0)
    with pytest.raises(InvalidValueError, match="lease"):
        make(lease=-1)
    with pytest.raises(InvalidValueError, match="lease"):
        make(poll=1.0, lease=10.0)  # a cut-off leader would outlive its lock
    leadership = make()
    leadership.start()
    try:
        with pytest.raises(ServiceStateError):
            leadership.start()
    finally:
        leadership.stop()


def test_lock_key_is_stable_and_per_schema() -> None:
    assert lock_key("archibald") == lock_key("archibald")
    assert lock_key("archibald") != lock_key("archibald2")
    assert -(2**63) <= lock_key("x") < 2**63


# --- helpers ------------------------------------------------------------------------


def _backends(admin: Admin, schema: str) -> list[int]:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (f"archibald-leader:{schema}",)
    ).fetchall()
    return [pid for (pid,) in rows]


@contextmanager
def _closed_port() -> Iterator[int]:
    """A local TCP port nobody listens on (bound, never listening, so connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


_CHILD = """
import sys
from archibald_actors.cluster import Leadership
leadership = Leadership(
    sys.argv[1], sys.argv[2], on_elected=lambda: print("elected", flush=True), on_deposed=lambda: None
)
leadership.start()
sys.stdin.read()  # until killed, or the test closes stdin
leadership.stop()
"""


def _leader_process(schema: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, PG_DSN, schema],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
