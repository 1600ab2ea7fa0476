"""``archibald-sync token``: a token PyJWT can decode with the secret, and the secret rules."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import jwt
import pytest

from archibald_actors import ManualClock, SyncService
from archibald_actors.__main__ import HOW_TO_SET_SECRET, SECRET_ENV, main
from archibald_actors.web import create_app


def decode(token: str, secret: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "role"]}
    )
    return claims


def test_token_decodes_with_role_sub_and_exp(jwt_secret: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = int(time.time())
    assert main(["token", "--role", "admin", "--sub", "alice", "--ttl", "600"]) == 0
    token = capsys.readouterr().out.strip()
    claims = decode(token, jwt_secret)
    assert claims["role"] == "admin" and claims["sub"] == "alice"
    exp = claims["exp"]
    assert isinstance(exp, int) and before + 600 <= exp <= int(time.time()) + 600


def test_default_ttl_is_eight_hours(jwt_secret: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--role", "agent", "--sub", "bob", "--username", "Bob"]) == 0
    claims = decode(capsys.readouterr().out.strip(), jwt_secret)
    assert claims["role"] == "agent" and claims["username"] == "Bob"
    assert isinstance(claims["exp"], int) and claims["exp"] - time.time() > 8 * 3600 - 60


def test_python_dash_m_prints_the_same_kind_of_token(jwt_secret: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "archibald_actors", "token", "--role", "admin", "--sub", "ops"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, SECRET_ENV: jwt_secret},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert decode(result.stdout.strip(), jwt_secret)["sub"] == "ops"


@pytest.mark.parametrize("value", [None, "x" * 31])
def test_missing_or_short_secret_exits_2_saying_how_to_set_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv(SECRET_ENV, raising=False)
    else:
        monkeypatch.setenv(SECRET_ENV, value)
    assert main(["token", "--role", "admin", "--sub", "alice"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert SECRET_ENV in captured.err and "32 bytes" in captured.err
    assert HOW_TO_SET_SECRET in captured.err


@pytest.mark.parametrize("role", ["admn", "Admin", "root", ""])
def test_an_unknown_role_is_refused(jwt_secret: str, capsys: pytest.CaptureFixture[str], role: str) -> None:
    assert main(["token", "--role", role, "--sub", "alice"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"--role {role!r} is not a known role (admin, agent)" in captured.err
    assert "--any-role" in captured.err


async def test_any_role_signs_it_and_the_api_lets_it_read_but_not_write(
    jwt_secret: str, capsys: pytest.CaptureFixture[str], aiohttp_client: Any
) -> None:
    assert main(["token", "--role", "auditor", "--any-role", "--sub", "carol"]) == 0
    token = capsys.readouterr().out.strip()
    assert decode(token, jwt_secret)["role"] == "auditor"
    service = SyncService(clock=ManualClock())
    client = await aiohttp_client(create_app(service))  # signed with ARCHIBALD_JWT_SECRET too
    try:
        headers = {"Authorization": f"Bearer {token}"}
        async with client.get("/api/sync/status", headers=headers) as response:
            assert response.status == 200
        body = {"syncType": "orders", "intervalMinutes": 20}
        async with client.post("/api/sync/schedule", headers=headers, json=body) as response:
            assert response.status == 403
    finally:
        await client.close()
        await asyncio.to_thread(service.stop, 5.0)


@pytest.mark.parametrize("ttl", ["0", "-5", "soon"])
def test_bad_ttl_is_a_usage_error(jwt_secret: str, ttl: str) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["token", "--role", "admin", "--sub", "alice", "--ttl", ttl])
    assert caught.value.code == 2


@pytest.mark.parametrize("command", [[], ["serve"], ["token"], ["simulate"]])
def test_help_works_for_each_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*command, "--help"])
    assert caught.value.code == 0
    assert "usage: archibald-sync" in capsys.readouterr().out
