"""Fixtures of the attack tests: a live server on a loopback port and real tokens for it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from archibald_actors.web import make_token

from .live import LiveServer


@pytest.fixture(scope="module")
def secret() -> str:
    """The server's signing secret (64 hex characters)."""
    return secrets.token_hex(32)


@pytest.fixture(scope="module")
def live(secret: str) -> Iterator[LiveServer]:
    """One live server per module; stopped (service and thread) in teardown."""
    server = LiveServer(secret).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def admin_token(secret: str) -> str:
    """A real admin token for the live server."""
    return make_token(secret, role="admin", sub="attack-admin", ttl=3600)


@pytest.fixture(scope="module")
def agent_token(secret: str) -> str:
    """A real agent (read-only) token for the live server."""
    return make_token(secret, role="agent", sub="attack-agent", ttl=3600)
