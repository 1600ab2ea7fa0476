"""Shared fixtures: services on a ManualClock that are always stopped, and recording handlers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from archibald_actors import SYNC_TYPES, ManualClock, SyncService
from archibald_actors.clock import Clock


@dataclass
class Run:
    """One handler execution as the handler saw it."""

    sync_type: str
    trigger: str
    scheduled_at: float | None
    started: float
    finished: float | None = None


@dataclass
class Recorder:
    """Handlers that record every run and check that no two runs ever overlap."""

    clock: Clock
    duration: float | Callable[[str], float] = 0.0
    runs: list[Run] = field(default_factory=list)
    overlaps: int = 0
    _active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _duration(self, sync_type: str) -> float:
        return self.duration(sync_type) if callable(self.duration) else self.duration

    def handler(self, sync_type: str) -> Callable[[Any], None]:
        def handle(ctx: Any) -> None:
            run = self._enter(ctx)
            try:
                seconds = self._duration(sync_type)
                if seconds:
                    ctx.sleep(seconds)
            finally:
                self._leave(run)

        return handle

    def async_handler(self, sync_type: str) -> Callable[[Any], Any]:
        async def handle(ctx: Any) -> None:
            run = self._enter(ctx)
            try:
                seconds = self._duration(sync_type)
                if seconds:
                    await ctx.sleep(seconds)
            finally:
                self._leave(run)

        return handle

    def _enter(self, ctx: Any) -> Run:
        with self._lock:
            self._active += 1
            if self._active > 1:
                self.overlaps += 1
            run = Run(ctx.sync_type, ctx.trigger, ctx.scheduled_at, self.clock.now())
            self.runs.append(run)
            return run

    def _leave(self, run: Run) -> None:
        with self._lock:
            self._active -= 1
            run.finished = self.clock.now()

    def handlers(self, *, coroutine: bool = False) -> dict[str, Callable[[Any], Any]]:
        make = self.async_handler if coroutine else self.handler
        return {t: make(t) for t in SYNC_TYPES}

    def of(self, sync_type: str) -> list[Run]:
        return [r for r in self.runs if r.sync_type == sync_type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_service(clock: ManualClock) -> Iterator[Callable[..., SyncService]]:
    """Build and start services on the test's ManualClock; all are stopped in teardown."""
    services: list[SyncService] = []

    def make(handlers: Any = None, *, start: bool = True, **kwargs: Any) -> SyncService:
        kwargs.setdefault("clock", clock)
        service = SyncService(handlers, **kwargs)
        services.append(service)
        if start:
            service.start()
            if isinstance(service.clock, ManualClock):
                service.clock.run_due()
        return service

    yield make
    for service in services:
        service.stop(timeout=5.0)
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("archibald-")]
    assert not leftover, f"threads left behind: {leftover}"
