"""Durable state backends behind one ``Store`` protocol."""

from archibald_actors.store.base import Store, StoredState
from archibald_actors.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store", "StoredState"]
