"""Helpers of the store tests (plain code; the fixtures are in ``conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from archibald_actors.store import Store

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)


class Backend:
    """One store backend: ``open()`` makes a new store object on the same file or schema."""

    def __init__(self, name: str, factory: Callable[[], Store]) -> None:
        self.name = name
        self._factory = factory
        self._opened: list[Store] = []

    def open(self) -> Store:
        """A new store object (for memory, the same one: its state lives in the object)."""
        store = self._factory()
        self._opened.append(store)
        return store

    def close_all(self) -> None:
        """Close every store this backend handed out."""
        for store in self._opened:
            store.close()
