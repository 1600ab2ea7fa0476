"""A retune the store cannot write is a 503 and changes nothing."""

from __future__ import annotations

from typing import Any

from archibald_actors import StoreError
from archibald_actors.store import MemoryStore

from .conftest import MakeApi


class DiskFullStore(MemoryStore):
    """Reads work; schedule writes fail like a full disk."""

    def save_entry(self, entry: Any) -> None:
        raise StoreError("database or disk is full")


async def test_a_retune_that_cannot_be_stored_is_a_503_and_is_not_applied(make_api: MakeApi) -> None:
    api = await make_api(store=DiskFullStore())
    _, before = await api.get("/schedule")
    status, body = await api.post("/schedule", json={"syncType": "orders", "intervalMinutes": 20})
    assert status == 503
    assert body["success"] is False and "disk is full" in body["error"]
    _, after = await api.get("/schedule")
    assert after == before
