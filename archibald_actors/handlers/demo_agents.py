"""Demo agents for ``serve --demo-agents N``: ids, names, the real split, and handlers with flaws.

Each agent has its own ERP session (a full login, then reuse while it stays open), so its
jobs take the demo durations of ``handlers/demo.py`` plus its own login. A few agents,
chosen by the seed, cannot log in without a person (their jobs raise ``NeedsLogin`` and
are recorded ``skipped``), and a few others fail now and then (a ``RuntimeError`` on about
one run in four): what an operator sees on a real deployment, reproducible by ``--seed``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from archibald_actors.actors.runner import SyncContext, SyncHandler
from archibald_actors.clock import Clock
from archibald_actors.errors import NeedsLogin
from archibald_actors.handlers.demo import (
    LOGIN_SECONDS,
    SESSION_IDLE_SECONDS,
    SESSION_REUSE_SECONDS,
    DemoErp,
)
from archibald_actors.schedule import DEFAULT_SCHEDULE, ScheduleEntry

__all__ = [
    "MAX_DEMO_AGENTS",
    "PER_AGENT_TYPES",
    "DemoAgents",
    "agent_split",
    "demo_agent_ids",
]

#: Most demo agents ``serve --demo-agents`` creates.
MAX_DEMO_AGENTS = 1000
#: The types each agent syncs on its own session (the real split); the rest are shared.
PER_AGENT_TYPES = ("orders", "customers", "ddt", "invoices")
#: Share of a flaky agent's runs that fail.
FLAKY_FAILURE_RATE = 0.25
#: One agent in this many needs a login, and one in this many is flaky (at least one each from 3).
_ONE_IN = 20
_FIRST = ("Giulia", "Marco", "Sara", "Luca", "Chiara", "Paolo", "Elena", "Davide", "Anna", "Matteo")
_LAST = ("Rossi", "Bianchi", "Esposito", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Conti", "Gallo")


def agent_split(schedule: Mapping[str, ScheduleEntry] = DEFAULT_SCHEDULE) -> dict[str, ScheduleEntry]:
    """``schedule`` with ``PER_AGENT_TYPES`` run per agent and every other type shared."""
    return {
        t: replace(e, scope="per_agent" if t in PER_AGENT_TYPES else "shared") for t, e in schedule.items()
    }


def demo_agent_ids(count: int) -> list[str]:
    """``agent-001`` .. (zero-padded to at least three digits, so they sort by number)."""
    width = max(3, len(str(count)))
    return [f"agent-{i:0{width}d}" for i in range(1, count + 1)]


def _name(index: int) -> str:
    return f"{_FIRST[index % len(_FIRST)]} {_LAST[(index // len(_FIRST)) % len(_LAST)]}"


@dataclass
class _Session:
    """One agent's ERP session: when it was last used (None: never logged in)."""

    used_at: float | None = None


class DemoAgents:
    """``count`` demo agents and the handlers of their per-agent types.

    Args:
        count: how many agents, 0 to ``MAX_DEMO_AGENTS``.
        seed: chooses which agents need a login or fail, and their durations.
        clock: the service clock (sessions expire after ``SESSION_IDLE_SECONDS`` of it).
        flawed: False makes every agent log in and succeed (durations only, for benchmarks).

    Raises:
        ValueError: ``count`` out of range.
    """

    def __init__(self, count: int, *, seed: int = 0, clock: Clock | None = None, flawed: bool = True) -> None:
        if not 0 <= count <= MAX_DEMO_AGENTS:
            raise ValueError(f"count must be from 0 to {MAX_DEMO_AGENTS}, got {count!r}")
        self.ids = demo_agent_ids(count)
        picker = random.Random(f"demo-agents:{seed}")
        few = max(1, count // _ONE_IN) if count >= 3 and flawed else 0
        chosen = picker.sample(self.ids, 2 * few)
        #: Agents whose jobs raise ``NeedsLogin``.
        self.needs_login = frozenset(chosen[:few])
        #: Agents whose jobs fail on about ``FLAKY_FAILURE_RATE`` of their runs.
        self.flaky = frozenset(chosen[few:])
        self._erp = DemoErp(seed=seed, clock=clock)  # durations only; sessions are per agent
        self._clock = clock
        self._failures = random.Random(f"demo-failures:{seed}")
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}

    def names(self) -> dict[str, str]:
        """Display name per agent id."""
        return {agent_id: _name(i) for i, agent_id in enumerate(self.ids)}

    def _login_seconds(self, agent_id: str) -> float:
        now = self._clock.now() if self._clock is not None else 0.0
        with self._lock:
            session = self._sessions.setdefault(agent_id, _Session())
            fresh = session.used_at is not None and now - session.used_at <= SESSION_IDLE_SECONDS
            session.used_at = now
        return SESSION_REUSE_SECONDS if fresh else LOGIN_SECONDS

    def _fails(self, agent_id: str) -> bool:
        if agent_id not in self.flaky:
            return False
        with self._lock:
            return self._failures.random() < FLAKY_FAILURE_RATE

    def handler(self, sync_type: str) -> SyncHandler:
        """The demo handler of ``sync_type`` for every agent: log in, export, import, reporting progress."""

        async def sync(ctx: SyncContext) -> None:
            agent_id = ctx.agent_id or "service"
            if agent_id in self.needs_login:
                raise NeedsLogin(f"{agent_id} has no cached ERP password: log in once from the PWA")
            ctx.progress(0, 3, "logging in")
            await ctx.sleep(self._login_seconds(agent_id))
            total = self._erp.sync_seconds(sync_type)
            ctx.progress(1, 3, "exporting")
            await ctx.sleep(total * 0.6)
            if self._fails(agent_id):
                raise RuntimeError(f"the ERP export of {sync_type} for {agent_id} timed out (demo)")
            ctx.progress(2, 3, "importing")
            await ctx.sleep(total * 0.4)
            ctx.progress(3, 3)

        sync.__name__ = sync.__qualname__ = f"demo_agent_{sync_type}_sync"
        return sync

    def handlers(self, sync_types: Iterable[str]) -> dict[str, SyncHandler]:
        """A handler for each of ``sync_types``."""
        return {t: self.handler(t) for t in sync_types}
