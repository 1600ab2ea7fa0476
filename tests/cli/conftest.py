"""Fixtures of the command-line tests: a JWT secret in the environment."""

from __future__ import annotations

import secrets

import pytest

from archibald_actors.__main__ import SECRET_ENV


@pytest.fixture
def jwt_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh 64-character secret, set as ARCHIBALD_JWT_SECRET for the test."""
    secret = secrets.token_hex(32)
    monkeypatch.setenv(SECRET_ENV, secret)
    return secret


@pytest.fixture
def no_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """ARCHIBALD_JWT_SECRET unset for the test."""
    monkeypatch.delenv(SECRET_ENV, raising=False)
