"""``TrackedActor``: what an actor tells itself is handled right after the message at hand,
counted as activity, and kept for the next incarnation if the actor dies first."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from archibald_actors.actors.base import Address, TrackedActor
from archibald_actors.clock import Activity


@dataclass(frozen=True)
class Note:
    text: str


class Echo(TrackedActor):
    """Logs what it handles; ``x>y`` tells itself ``y``, ``boom`` raises, ``wait`` blocks."""

    def __init__(self, address: Address, activity: Activity, log: list[str], gate: threading.Event) -> None:
        super().__init__(address, activity)
        self._log = log
        self._gate = gate

    def handle(self, message: Any) -> None:
        text = message.text
        self._log.append(text)
        if text == "wait":
            assert self._gate.wait(5.0)
        elif text == "boom":
            raise RuntimeError("boom")
        elif ">" in text:
            for told in text.split(">")[1:]:
                self._sv_address.tell(Note(told))


Start = Callable[[list[str], threading.Event], None]


@pytest.fixture
def activity() -> Activity:
    return Activity()


@pytest.fixture
def address(activity: Activity) -> Address:
    return Address("echo", activity)


@pytest.fixture
def start(address: Address, activity: Activity) -> Iterator[Start]:
    """Start an incarnation of ``Echo`` behind ``address``; every one is stopped at the end."""
    refs: list[Any] = []

    def start(log: list[str], gate: threading.Event) -> None:
        ref = Echo.start(address, activity, log, gate)
        refs.append(ref)
        address.attach(ref)

    yield start
    for ref in refs:
        ref.stop()


def queue_all(address: Address, gate: threading.Event, *texts: str) -> None:
    """Tell ``texts`` while the actor is held on ``wait``, then let it go: all wait in its mailbox."""
    for text in ["wait", *texts]:
        address.tell(Note(text))
    gate.set()


def test_what_an_actor_tells_itself_comes_before_its_mailbox(
    address: Address, activity: Activity, start: Start
) -> None:
    log: list[str] = []
    gate = threading.Event()
    start(log, gate)
    queue_all(address, gate, "a>a1>a2", "b")
    assert activity.wait_quiet(5.0)  # the messages told to itself counted too
    assert log == ["wait", "a>a1>a2", "a1", "a2", "b"]
    assert activity.count == 0


def test_what_a_dying_actor_told_itself_goes_to_its_next_incarnation_first(
    address: Address, activity: Activity, start: Start
) -> None:
    log: list[str] = []
    gate = threading.Event()
    start(log, gate)
    queue_all(address, gate, "a>boom>after", "b")
    assert activity.wait_quiet(5.0)  # dead: 'after' and 'b' wait for the next one, uncounted
    assert log == ["wait", "a>boom>after", "boom"]
    start(log, gate)
    assert activity.wait_quiet(5.0)
    assert log == ["wait", "a>boom>after", "boom", "after", "b"]
