"""``Leadership``: which replica of a cluster leads, decided by a PostgreSQL advisory lock.

Replicas sharing a schema compete for one session-level advisory lock, each on a dedicated
connection of its own; the holder leads (runs the timers and the syncs). The lock lives as
long as the holder's session, so a leader that dies (SIGKILL, a crashed host) loses it when
the server notices: at once for a dead process, within ``SERVER_DEAD_AFTER`` seconds for a
vanished host. A leader that can no longer reach the server steps down within
``poll + lease`` seconds, before the server can hand the lock to anyone else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

import psycopg

from archibald_actors.cluster.channel import lock_key
from archibald_actors.cluster.connection import (
    CONNECTION_ERRORS,
    SERVER_DEAD_AFTER,
    Backoff,
    close_quietly,
    connect,
    query_value,
)
from archibald_actors.errors import InvalidValueError, ServiceStateError

__all__ = ["Leadership", "Role"]

log = logging.getLogger("archibald_actors.cluster.leadership")

Role = Literal["leader", "follower"]
THREAD_NAME = "archibald-leader"


class Leadership:
    """A thread that competes for leadership of the replicas on ``schema`` and holds it.

    Args:
        dsn: a libpq connection string or URI (the lock needs a session: no transaction pooler).
        schema: the store's schema; replicas on one schema compete with each other only.
        on_elected: called when this replica becomes the leader.
        on_deposed: called when it stops being the leader: its connection broke or hung
            (called before reconnecting), or ``stop()``.
        poll: seconds between lock attempts (follower) and liveness checks (leader).
        lease: seconds a check may take before the connection counts as lost.

    Both callbacks run on the leadership thread, alternate (elected, deposed, elected, ...),
    and must return quickly: tell the actors, do not wait for them. An exception they raise
    is logged and otherwise ignored.

    Raises:
        InvalidValueError: ``poll`` or ``lease`` is not positive, or ``poll + lease`` is not
            below ``SERVER_DEAD_AFTER`` (a cut-off leader would outlive its lock).
    """

    def __init__(
        self,
        dsn: str,
        schema: str = "archibald",
        *,
        on_elected: Callable[[], None],
        on_deposed: Callable[[], None],
        poll: float = 0.25,
        lease: float = 1.0,
    ) -> None:
        for field, value in (("poll", poll), ("lease", lease)):
            if not value > 0:
                raise InvalidValueError(field, f"must be a positive number of seconds, got {value!r}")
        if not poll + lease < SERVER_DEAD_AFTER:
            raise InvalidValueError(
                "lease", f"plus poll must be below {SERVER_DEAD_AFTER:g} s, got {poll:g} + {lease:g}"
            )
        self.schema = schema
        self.key = lock_key(schema)
        self._dsn = dsn
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._poll = poll
        self._lease = lease
        self._stopping = threading.Event()
        self._transition = threading.Lock()  # orders elections, depositions and stop
        self._leader = False
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"Leadership(schema={self.schema!r}, role={self.role!r})"

    @property
    def role(self) -> Role:
        """``"leader"`` while this replica holds the lock and its connection answers, else ``"follower"``."""
        return "leader" if self._leader else "follower"

    def start(self) -> None:
        """Start competing (returns at once; ``on_elected`` tells when this replica leads).

        Raises:
            ServiceStateError: started before.
        """
        if self._thread is not None:
            raise ServiceStateError("Leadership.start() runs once")
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop competing: step down (``on_deposed`` if leading), release the lock, end the thread.

        Returns within about ``timeout`` seconds. If the thread is stuck (a connection
        attempt), this replica steps down here, on the caller's thread, and the lock goes
        when the thread gives up its connection.
        """
        self._stopping.set()
        thread = self._thread
        if thread is None:
            return
        thread.join(timeout)
        if thread.is_alive():
            log.warning("the leadership thread did not end within %s s; stepping down anyway", timeout)
            self._depose("stopped")

    # --- the thread ---------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff()
        conn: psycopg.Connection[Any] | None = None
        try:
            while not self._stopping.is_set():
                try:
                    conn = connect(
                        self._dsn,
                        application_name=f"{THREAD_NAME}:{self.schema}",
                        statement_timeout=self._lease,
                    )
                    self._compete(conn, backoff)
                except Exception as exc:  # the thread must outlive any failure, or nobody competes
                    # Step down first: without a live session this replica cannot prove it leads.
                    self._depose(f"lost its connection ({_one_line(exc)})")
                    close_quietly(conn)
                    conn = None
                    delay = backoff.next()
                    what = "leader election on %s: %s; retrying in %.1f s"
                    if isinstance(exc, CONNECTION_ERRORS):
                        log.warning(what, self.schema, _one_line(exc), delay)
                    else:
                        log.exception(what, self.schema, f"unexpected {type(exc).__name__}", delay)
                    self._stopping.wait(delay)
        finally:
            self._depose("stopped")  # before the lock goes, so two leaders never overlap
            close_quietly(conn)  # ends the session, and the lock with it

    def _compete(self, conn: psycopg.Connection[Any], backoff: Backoff) -> None:
        """Try for the lock, or check the held one, every ``poll`` seconds until stopped."""
        try_lock = f"SELECT pg_try_advisory_lock({self.key:d})"
        while not self._stopping.is_set():
            if self._leader:
                query_value(conn, "SELECT 1", self._lease)
            elif query_value(conn, try_lock, self._lease) == "t":
                self._elect()
            backoff.reset()
            self._stopping.wait(self._poll)

    def _elect(self) -> None:
        with self._transition:
            if self._leader or self._stopping.is_set():
                return
            self._leader = True
            log.info("this replica is now the leader on %s", self.schema)
            _call(self._on_elected, "on_elected")

    def _depose(self, why: str) -> None:
        with self._transition:
            if not self._leader:
                return
            self._leader = False
            level = logging.INFO if why == "stopped" else logging.WARNING
            log.log(level, "this replica is no longer the leader on %s: %s", self.schema, why)
            _call(self._on_deposed, "on_deposed")


def _call(callback: Callable[[], None], name: str) -> None:
    try:
        callback()
    except Exception:
        log.exception("the leadership callback %s raised", name)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
