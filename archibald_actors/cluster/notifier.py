"""``ChangeListener``: hears the changes other replicas announce with NOTIFY.

A change (a retune, a new manual request) is written to the database first and announced
after (``PostgresStore.notify``), as ``{"kind": ..., "payload": {...}}`` JSON on the schema's
channel (see ``channel``). Notifications are hints, not the data: one sent while a listener
was disconnected is gone, so after each (re)connection the listener reports a ``"resync"``
change and its owner reloads what it may have missed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from time import monotonic
from typing import Any

import psycopg
from psycopg import sql

from archibald_actors.cluster.channel import channel_name, decode_change
from archibald_actors.cluster.connection import (
    CONNECTION_ERRORS,
    Backoff,
    close_quietly,
    connect,
    query_value,
)
from archibald_actors.errors import ServiceStateError

__all__ = ["RESYNC", "ChangeListener"]

log = logging.getLogger("archibald_actors.cluster.notifier")

#: The kind reported after each (re)connection: reload everything, changes may have been missed.
RESYNC = "resync"
THREAD_NAME = "archibald-listen"
#: Seconds between checks whether ``stop()`` was called.
_POLL = 0.25
#: Seconds of silence after which the connection is checked.
_CHECK_EVERY = 2.0
#: Seconds that check may take before the connection counts as lost.
_LEASE = 1.0


class ChangeListener:
    """A thread that LISTENs on the channel of ``schema`` and reports every change.

    Args:
        dsn: a libpq connection string or URI (LISTEN needs a session: no transaction pooler).
        schema: the store's schema.
        on_change: called as ``on_change(kind, payload)`` for each change, and as
            ``on_change("resync", {})`` once listening after every (re)connection, the first
            included (whatever changed before LISTEN took effect is covered by it). Runs on
            the listener thread; must return quickly. An exception it raises is logged.
    """

    def __init__(
        self, dsn: str, schema: str = "archibald", *, on_change: Callable[[str, dict[str, Any]], None]
    ) -> None:
        self.schema = schema
        self.channel = channel_name(schema)
        self._dsn = dsn
        self._on_change = on_change
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"ChangeListener(channel={self.channel!r})"

    def start(self) -> None:
        """Start listening (returns at once; the first ``"resync"`` tells when it listens).

        Raises:
            ServiceStateError: started before.
        """
        if self._thread is not None:
            raise ServiceStateError("ChangeListener.start() runs once")
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and end the thread (returns within about ``timeout`` seconds)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the change listener did not end within %s s", timeout)

    # --- the thread ---------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            conn: psycopg.Connection[Any] | None = None
            try:
                conn = connect(
                    self._dsn,
                    application_name=f"{THREAD_NAME}:{self.schema}",
                    statement_timeout=_LEASE,
                )
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                backoff.reset()
                log.info("listening for changes on %s", self.channel)
                self._report(RESYNC, {})
                self._listen(conn)
            except Exception as exc:  # the thread must outlive any failure, or changes go unheard
                delay = backoff.next()
                what = "change listener on %s: %s; reconnecting in %.1f s"
                if isinstance(exc, CONNECTION_ERRORS):
                    log.warning(what, self.channel, " ".join(str(exc).split()) or type(exc).__name__, delay)
                else:
                    log.exception(what, self.channel, f"unexpected {type(exc).__name__}", delay)
                self._stopping.wait(delay)
            finally:
                close_quietly(conn)

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        """Report notifications until stopped; check the connection after each silence."""
        checked = monotonic()
        while not self._stopping.is_set():
            for notification in conn.notifies(timeout=_POLL):
                checked = monotonic()  # the server just spoke
                if notification.channel == self.channel:
                    self._decode_and_report(notification.payload)
                if self._stopping.is_set():
                    return
            if monotonic() - checked >= _CHECK_EVERY:
                query_value(conn, "SELECT 1", _LEASE)
                checked = monotonic()

    def _decode_and_report(self, text: str) -> None:
        try:
            kind, payload = decode_change(text)
        except ValueError as exc:
            log.warning("ignoring a malformed change on %s (%s): %.200r", self.channel, exc, text)
            return
        self._report(kind, payload)

    def _report(self, kind: str, payload: dict[str, Any]) -> None:
        try:
            self._on_change(kind, payload)
        except Exception:
            log.exception("the change callback raised on %r", kind)
