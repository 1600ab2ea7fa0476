"""Helpers of the cluster tests (plain code; the fixtures are in ``conftest.py``)."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from time import monotonic
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from archibald_actors import SyncService
from archibald_actors.events import Event

#: Real seconds any single bounded wait of these tests may take before the test fails.
WAIT = 5.0


@dataclass
class Transitions:
    """Records the callbacks of one ``Leadership``: events to wait on, times to compare."""

    elected: threading.Event = field(default_factory=threading.Event)
    deposed: threading.Event = field(default_factory=threading.Event)
    log: list[tuple[str, float, str]] = field(default_factory=list)  # (what, monotonic, thread)

    def on_elected(self) -> None:
        """Leadership callback."""
        self.log.append(("elected", monotonic(), threading.current_thread().name))
        self.elected.set()

    def on_deposed(self) -> None:
        """Leadership callback."""
        self.log.append(("deposed", monotonic(), threading.current_thread().name))
        self.deposed.set()

    def first(self, what: str) -> float:
        """Monotonic time of the first ``what`` callback."""
        return next(t for name, t, _ in self.log if name == what)


def advisory_holders(conn: Any, key: int) -> list[int]:
    """Backend pids holding the advisory lock ``key`` (a signed 64-bit key)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    rows = conn.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"
        " AND classid::bigint = %s AND objid::bigint = %s",
        (unsigned >> 32, unsigned & 0xFFFFFFFF),
    ).fetchall()
    return [int(pid) for (pid,) in rows]


class FreezableProxy:
    """A TCP proxy to the test server that can stop forwarding without closing anything.

    Frozen, it behaves like a hung network or server: the kernel still accepts the bytes a
    client sends, but no answer ever comes back. ``close()`` then drops every connection,
    as a dead host's sockets would eventually be dropped.
    """

    def __init__(self, dsn: str) -> None:
        info = conninfo_to_dict(dsn)
        self._upstream = (str(info.get("host", "127.0.0.1")), int(info.get("port", 5432)))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.dsn = make_conninfo(dsn, host="127.0.0.1", port=self._listener.getsockname()[1])
        self._peers: dict[socket.socket, socket.socket] = {}
        self._frozen = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._pump, name="test-proxy", daemon=True)
        self._thread.start()

    def freeze(self) -> None:
        """Stop forwarding, keeping every connection open."""
        self._frozen.set()

    def close(self) -> None:
        """Stop the proxy and close every connection."""
        self._closed.set()
        self._thread.join(WAIT)
        for sock in [self._listener, *self._peers]:
            sock.close()

    def _pump(self) -> None:
        while not self._closed.is_set():
            if self._frozen.is_set():
                self._closed.wait(0.05)
                continue
            readable, _, _ = select.select([self._listener, *self._peers], [], [], 0.05)
            for sock in readable:
                if sock is self._listener:
                    client, _ = sock.accept()
                    server = socket.create_connection(self._upstream)
                    self._peers[client], self._peers[server] = server, client
                    continue
                try:
                    data = sock.recv(65536)
                    if data:
                        self._peers[sock].sendall(data)
                        continue
                except OSError:
                    pass
                other = self._peers.pop(sock)
                self._peers.pop(other, None)
                sock.close()
                other.close()


class Watch:
    """A service's events, waited for with a bound; ``mark()`` starts a new window."""

    def __init__(self, service: SyncService) -> None:
        self._seen: list[Event] = []
        self._from = 0
        self._cond = threading.Condition()
        service.events.subscribe(self._add)

    def _add(self, event: Event) -> None:
        with self._cond:
            self._seen.append(event)
            self._cond.notify_all()

    def mark(self) -> None:
        """From now on, :meth:`wait_for` looks only at events that come after this call."""
        with self._cond:
            self._from = len(self._seen)

    def wait_for(self, match: Callable[[Event], bool], timeout: float = WAIT) -> Event:
        """The first event since the last ``mark()`` that matches; AssertionError after ``timeout``."""
        found: list[Event] = []

        def seen() -> bool:
            found[:] = [e for e in self._seen[self._from :] if match(e)]
            return bool(found)

        with self._cond:
            assert self._cond.wait_for(seen, timeout), f"no matching event within {timeout} s"
        return found[0]
