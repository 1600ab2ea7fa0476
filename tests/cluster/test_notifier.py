"""``ChangeListener`` and ``PostgresStore.notify`` on the real server: delivery, reconnects, bad input."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from time import monotonic
from typing import Any

import psycopg
import pytest
from pg_server import PG_DSN

from archibald_actors.cluster import RESYNC, ChangeListener
from archibald_actors.cluster.channel import (
    MAX_NOTIFY_BYTES,
    channel_name,
    decode_change,
    encode_change,
)
from archibald_actors.errors import InvalidValueError
from archibald_actors.store import PostgresStore

from .support import WAIT

MakeListener = Callable[..., ChangeListener]
Admin = psycopg.Connection[tuple[Any, ...]]
Change = tuple[str, dict[str, Any], float]


class Inbox:
    """Collects what a listener reports, with the time it arrived."""

    def __init__(self) -> None:
        self.changes: queue.Queue[Change] = queue.Queue()

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        self.changes.put((kind, payload, monotonic()))

    def next(self, timeout: float = WAIT) -> Change:
        """The next change, waiting at most ``timeout`` seconds."""
        try:
            return self.changes.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no change reported within {timeout} s")

    def empty_for(self, seconds: float) -> bool:
        """True if nothing arrives within ``seconds``."""
        try:
            self.changes.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def store(schema: str) -> Iterator[PostgresStore]:
    """A ``PostgresStore`` on the test's schema."""
    made = PostgresStore(PG_DSN, schema=schema)
    try:
        yield made
    finally:
        made.close()


def _listening(make_listener: MakeListener) -> tuple[ChangeListener, Inbox]:
    inbox = Inbox()
    listener = make_listener(inbox)
    kind, _, _ = inbox.next()
    assert kind == RESYNC, "a listener reports a resync once it listens"
    return listener, inbox


def notify(conn: Admin, schema: str, kind: str, payload: dict[str, Any]) -> None:
    """Announce a change over a connection of the test (in its transaction, if one is open)."""
    conn.execute("SELECT pg_notify(%s, %s)", (channel_name(schema), encode_change(kind, payload)))


def test_a_change_arrives_within_one_second(make_listener: MakeListener, store: PostgresStore) -> None:
    _, inbox = _listening(make_listener)
    sent = monotonic()
    store.notify("retune", {"syncType": "orders", "intervalMinutes": 20})
    kind, payload, arrived = inbox.next(timeout=1.0)
    assert (kind, payload) == ("retune", {"syncType": "orders", "intervalMinutes": 20})
    assert arrived - sent < 1.0


def test_the_listener_survives_termination_and_resyncs(
    make_listener: MakeListener, store: PostgresStore, admin: Admin, schema: str
) -> None:
    _, inbox = _listening(make_listener)
    [pid] = [
        pid
        for (pid,) in admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (f"archibald-listen:{schema}",)
        )
    ]
    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    assert inbox.next()[:2] == (RESYNC, {})
    store.notify("request", {"syncType": "prices"})
    assert inbox.next(timeout=1.0)[:2] == ("request", {"syncType": "prices"})


def test_a_change_in_a_transaction_arrives_at_commit(
    make_listener: MakeListener, admin: Admin, schema: str
) -> None:
    _, inbox = _listening(make_listener)
    with admin.transaction():
        notify(admin, schema, "retune", {"syncType": "ddt"})
        assert inbox.empty_for(0.3), "nothing is announced before the commit"
    assert inbox.next(timeout=1.0)[:2] == ("retune", {"syncType": "ddt"})


def test_other_schemas_and_malformed_messages_are_not_reported(
    make_listener: MakeListener, admin: Admin, schema: str
) -> None:
    _, inbox = _listening(make_listener)
    notify(admin, f"{schema}_other", "retune", {"syncType": "orders"})
    admin.execute("SELECT pg_notify(%s, %s)", (channel_name(schema), "not json"))
    admin.execute("SELECT pg_notify(%s, %s)", (channel_name(schema), '{"kind": 3}'))
    notify(admin, schema, "retune", {"n": 1})
    assert inbox.next(timeout=1.0)[:2] == ("retune", {"n": 1})


def test_a_failing_callback_does_not_stop_the_listener(
    make_listener: MakeListener, admin: Admin, schema: str
) -> None:
    inbox = Inbox()

    def on_change(kind: str, payload: dict[str, Any]) -> None:
        inbox(kind, payload)
        if payload.get("boom"):
            raise RuntimeError("the owner failed")

    make_listener(on_change)
    assert inbox.next()[0] == RESYNC
    notify(admin, schema, "retune", {"boom": True})
    notify(admin, schema, "retune", {"n": 2})
    assert inbox.next()[1] == {"boom": True}
    assert inbox.next()[1] == {"n": 2}, "the listener lives on"


def test_stop_is_prompt(make_listener: MakeListener) -> None:
    listener, _ = _listening(make_listener)
    start = monotonic()
    listener.stop()
    assert monotonic() - start < 1.0
    assert "archibald-listen" not in [thread.name for thread in threading.enumerate()]


def test_change_messages_are_checked() -> None:
    assert decode_change(encode_change("retune", {"a": [1, 2]})) == ("retune", {"a": [1, 2]})
    with pytest.raises(InvalidValueError, match="kind"):
        encode_change("", {})
    with pytest.raises(InvalidValueError, match="payload"):
        encode_change("retune", {"when": object()})
    with pytest.raises(InvalidValueError, match="payload"):
        encode_change("retune", {"x": float("nan")})
    with pytest.raises(InvalidValueError, match="too long"):
        encode_change("retune", {"x": "y" * MAX_NOTIFY_BYTES})
    for bad in ("[]", '{"kind": ""}', '{"kind": "k", "payload": 1}', "nope"):
        with pytest.raises(ValueError):
            decode_change(bad)
    assert len(channel_name("s" * 63).encode()) <= 63
    assert channel_name("a" * 63) != channel_name("b" * 63)

