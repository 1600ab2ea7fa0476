"""Durable state backends behind one ``Store`` protocol."""

from archibald_actors.store.base import ClusterStore, Store, StoredState
from archibald_actors.store.memory import MemoryStore
from archibald_actors.store.postgres import PostgresStore, postgres_url
from archibald_actors.store.sqlite import SqliteStore

__all__ = [
    "ClusterStore",
    "MemoryStore",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "StoredState",
    "postgres_url",
]
