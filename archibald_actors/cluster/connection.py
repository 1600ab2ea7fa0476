"""The dedicated connections of the cluster threads, and their reconnect backoff.

A leader must notice within its lease that it can no longer prove it leads, whatever
broke: the server restarted (an error at once), the backend was terminated (an error at
once), the network vanished or the server hangs (no error at all). So every connection
made here has

- a client-side deadline on each query (:func:`query_value`, on libpq's non-blocking
  interface: a blocking psycopg call could wait forever on a half-open socket);
- TCP keepalives and ``tcp_user_timeout`` on the client, so the kernel reports a dead peer;
- the same on the server (``tcp_keepalives_*``, ``tcp_user_timeout``), so the server drops the
  backend of a replica whose host vanished, and with it the leader lock, within
  ``SERVER_DEAD_AFTER`` seconds;
- a ``statement_timeout``.

A leader steps down after at most ``poll + lease`` seconds without an answer, which must be
less than ``SERVER_DEAD_AFTER``: the old leader has stopped before the server lets another
replica take the lock.
"""

from __future__ import annotations

import contextlib
import selectors
from time import monotonic
from typing import Any

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

__all__ = [
    "BACKOFF_FIRST",
    "BACKOFF_MAX",
    "CONNECTION_ERRORS",
    "SERVER_DEAD_AFTER",
    "Backoff",
    "DeadlineError",
    "close_quietly",
    "connect",
    "query_value",
]

#: Reconnect delays: the first, doubling up to the last.
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0

#: Keepalive timing asked of the server (seconds): idle time, probe interval, probes.
_SERVER_KEEPALIVE = (2, 1, 2)
#: Seconds after which the server drops the backend of a client that vanished.
SERVER_DEAD_AFTER = float(_SERVER_KEEPALIVE[0] + _SERVER_KEEPALIVE[1] * _SERVER_KEEPALIVE[2])
#: Keepalive timing of the client side (seconds): idle time, probe interval, probes.
_CLIENT_KEEPALIVE = (1, 1, 2)
#: Seconds to wait for a connection (libpq counts whole seconds and treats less than 2 as 2).
_CONNECT_TIMEOUT = 2


class DeadlineError(TimeoutError):
    """The server did not answer a query within its deadline; the connection is unusable."""


#: What a broken, hung or refused connection raises (anything else is a bug, logged as such).
CONNECTION_ERRORS: tuple[type[Exception], ...] = (psycopg.Error, DeadlineError, OSError)


class Backoff:
    """Reconnect delays: ``BACKOFF_FIRST`` seconds, doubling up to ``BACKOFF_MAX``; reset after a success."""

    def __init__(self) -> None:
        self._next = BACKOFF_FIRST

    def next(self) -> float:
        """The delay before the next attempt (and double the one after)."""
        delay = self._next
        self._next = min(delay * 2, BACKOFF_MAX)
        return delay

    def reset(self) -> None:
        """Start again from the first delay."""
        self._next = BACKOFF_FIRST


def connect(dsn: str, *, application_name: str, statement_timeout: float) -> psycopg.Connection[Any]:
    """A new autocommit connection with keepalives and timeouts (settings in ``dsn`` win).

    Args:
        dsn: a libpq connection string or URI.
        application_name: how the backend shows in ``pg_stat_activity``.
        statement_timeout: seconds after which the server cancels a statement.

    Raises:
        psycopg.Error: the connection failed.
    """
    given = conninfo_to_dict(dsn)
    idle, interval, count = _CLIENT_KEEPALIVE
    params: dict[str, Any] = {
        "application_name": application_name,
        "connect_timeout": _CONNECT_TIMEOUT,
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": interval,
        "keepalives_count": count,
        "tcp_user_timeout": round(1000 * (idle + interval * count)),
    }
    params = {key: value for key, value in params.items() if key not in given}
    server_idle, server_interval, server_count = _SERVER_KEEPALIVE
    server = (
        f"-c statement_timeout={max(1, round(statement_timeout * 1000))}"
        f" -c tcp_keepalives_idle={server_idle} -c tcp_keepalives_interval={server_interval}"
        f" -c tcp_keepalives_count={server_count} -c tcp_user_timeout={round(SERVER_DEAD_AFTER * 1000)}"
    )
    params["options"] = f"{given['options']} {server}" if given.get("options") else server
    return psycopg.connect(dsn, autocommit=True, **params)


def close_quietly(conn: psycopg.Connection[Any] | None) -> None:
    """Close ``conn`` (which may be broken) without raising."""
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            conn.close()


def query_value(conn: psycopg.Connection[Any], query: str, timeout: float) -> str | None:
    """Run ``query`` on ``conn`` and return the first column of its first row, as text.

    The whole exchange must finish within ``timeout`` seconds, or :class:`DeadlineError` is
    raised and the connection must be closed. Notifications that arrive meanwhile are handed
    to psycopg, so ``conn.notifies()`` still yields them.

    Raises:
        DeadlineError: no complete answer within ``timeout``.
        psycopg.OperationalError: the connection is broken, or the query failed.
    """
    pgconn = conn.pgconn
    deadline = monotonic() + timeout
    pgconn.send_query(query.encode())
    while pgconn.flush():
        _wait(pgconn, selectors.EVENT_WRITE, deadline)
    value: bytes | None = None
    error: str | None = None
    while True:
        pgconn.consume_input()
        while pgconn.is_busy():
            _wait(pgconn, selectors.EVENT_READ, deadline)
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            break
        if result.status == pq.ExecStatus.TUPLES_OK:
            if result.ntuples and value is None:
                value = result.get_value(0, 0)
        elif result.status != pq.ExecStatus.COMMAND_OK:
            error = (result.error_message or b"query failed").decode(errors="replace").strip()
    _hand_over_notifications(pgconn)
    if error is not None:
        raise psycopg.OperationalError(error)
    return None if value is None else value.decode()


def _wait(pgconn: pq.abc.PGconn, event: int, deadline: float) -> None:
    """Wait until the socket of ``pgconn`` is ready for ``event``, or raise at ``deadline``."""
    remaining = deadline - monotonic()
    if remaining <= 0:
        raise DeadlineError("the server did not answer in time")
    with selectors.DefaultSelector() as selector:
        selector.register(pgconn.socket, event)
        if not selector.select(remaining):
            raise DeadlineError("the server did not answer in time")


def _hand_over_notifications(pgconn: pq.abc.PGconn) -> None:
    """Pass notifications libpq queued during a query to psycopg, as its own queries do."""
    while notification := pgconn.notifies():
        if pgconn.notify_handler is not None:
            pgconn.notify_handler(notification)
