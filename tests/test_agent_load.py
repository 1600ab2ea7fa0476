"""The orchestrator knows the agents before anything may run, and after every change."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from archibald_actors import ManualClock, SyncService
from archibald_actors.actors.orchestrator import OrchestratorActor
from archibald_actors.agent import Agent
from archibald_actors.messages import (
    AgentsChanged,
    RequestSync,
    SetLeading,
)
from archibald_actors.store import MemoryStore
from archibald_actors.store_messages import (
    Booted,
)


class Seen:
    """Messages the orchestrator handled, in order (of the types a test looks at)."""

    KINDS = (AgentsChanged, Booted, SetLeading, RequestSync)

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.messages: list[Any] = []
        self._lock = threading.Lock()
        handle = OrchestratorActor.handle

        def spy(actor: OrchestratorActor, message: Any) -> None:
            if isinstance(message, self.KINDS):
                with self._lock:
                    self.messages.append(message)
            handle(actor, message)

        monkeypatch.setattr(OrchestratorActor, "handle", spy)

    def kinds(self) -> list[str]:
        with self._lock:
            return [type(m).__name__ for m in self.messages]

    def agents(self) -> list[tuple[Agent, ...]]:
        with self._lock:
            return [m.agents for m in self.messages if isinstance(m, AgentsChanged)]


def test_the_stored_agents_reach_the_orchestrator_before_the_first_slot(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    seen = Seen(monkeypatch)
    store = MemoryStore()
    store.put_agent("mario")
    store.put_agent("anna", enabled=False)
    service = make_service(store=store)  # orders' first slot is at T+0: it fires at once
    kinds = seen.kinds()
    assert kinds[0] == "AgentsChanged", kinds
    assert kinds.index("AgentsChanged") < kinds.index("SetLeading") < kinds.index("RequestSync")
    assert seen.agents() == [(Agent("anna", None, False), Agent("mario"))]
    assert service.wait_idle(5)


def test_every_change_tells_the_orchestrator_every_agent(
    monkeypatch: pytest.MonkeyPatch, make_service: Callable[..., SyncService]
) -> None:
    seen = Seen(monkeypatch)
    service = make_service()
    service.put_agent("mario")
    service.put_agent("luigi", name="Luigi")
    service.put_agent("luigi", name="Luigi")  # nothing changes: nothing to tell
    service.remove_agent("mario")
    assert service.wait_idle(5)
    assert seen.agents() == [
        (),
        (Agent("mario"),),
        (Agent("luigi", "Luigi"), Agent("mario")),
        (Agent("luigi", "Luigi"),),
    ]
