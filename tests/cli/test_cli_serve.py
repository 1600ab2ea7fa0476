"""``archibald-sync serve`` as a real subprocess, driven over HTTP, stopped by a signal."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from serve_process import START_TIMEOUT, STOP_TIMEOUT, call, launch_serve, stop

from archibald_actors.__main__ import HOW_TO_SET_SECRET, SECRET_ENV
from archibald_actors.web.auth import make_token

#: The line ``serve --print-token`` prints before it listens; group 1 is the token.
TOKEN_LINE = r"^admin token \(valid 8 h\): (\S+)$"


@dataclass
class Server:
    """A running ``serve`` subprocess and what it printed."""

    proc: subprocess.Popen[bytes]
    base: str
    admin_token: str
    stdout: list[str]
    stderr_path: Path


def start_server(tmp_path: Path, secret: str, *extra: str) -> Server:
    """``serve --print-token`` on a free port, the db in ``tmp_path``, at 600x; its printed admin token."""
    stderr_path = tmp_path / "serve.stderr"
    args = ["--print-token", "--port", "0", "--db", str(tmp_path / "sync.db"), "--speed", "600", *extra]
    proc, lines, base = launch_serve(args, secret=secret, stderr_path=stderr_path)
    # The token line comes before the listening one, so it is among the lines read so far.
    tokens = [match[1] for line in lines.seen if (match := re.search(TOKEN_LINE, line))]
    if not tokens:
        stop(proc)
        raise AssertionError(f"no line matching {TOKEN_LINE!r} before listening; got {lines.seen}")
    return Server(proc, base, tokens[0], lines.seen, stderr_path)


@pytest.fixture
def server(tmp_path: Path, jwt_secret: str) -> Iterator[Server]:
    running = start_server(tmp_path, jwt_secret)
    try:
        yield running
    finally:
        stop(running.proc)


def test_serve_over_http_then_sigterm(server: Server, jwt_secret: str, tmp_path: Path) -> None:
    api = f"{server.base}/api/sync"
    claims = jwt.decode(server.admin_token, jwt_secret, algorithms=["HS256"])
    assert claims["role"] == "admin" and claims["exp"] > time.time() + 7 * 3600

    status, body = call("GET", f"{api}/schedule", server.admin_token)
    assert status == 200 and body["success"] is True
    assert body["data"]["orders"]["interval"] == 10 and body["data"]["prices"]["startDelay"] == 10

    status, body = call(
        "POST", f"{api}/schedule", server.admin_token, {"syncType": "orders", "intervalMinutes": 20}
    )
    assert status == 200 and body["data"]["orders"]["interval"] == 20

    agent = make_token(jwt_secret, role="agent", sub="agent-1", ttl=600)
    status, body = call("POST", f"{api}/schedule", agent, {"syncType": "orders", "intervalMinutes": 30})
    assert status == 403 and body["success"] is False
    assert call("GET", f"{api}/status", None)[0] == 401

    status, body = call("GET", f"{api}/status", agent)
    assert status == 200 and body["success"] is True
    assert set(body["data"]["types"]) == {"orders", "customers", "prices", "invoices", "ddt", "products"}
    assert body["data"]["orchestrator"] == "running"

    # The demo syncs run on the 600x clock: the event stream reports one completing.
    stream = urllib.request.urlopen(f"{api}/events?token={agent}", timeout=10)
    with stream:
        assert stream.status == 200
        completed = next(line for line in stream if line.startswith(b"event: sync.completed"))
        data = json.loads(next(stream).removeprefix(b"data: "))
    assert completed and data["outcome"] == "success" and data["syncType"] in body["data"]["types"]

    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(STOP_TIMEOUT) == 0
    assert (tmp_path / "sync.db").exists()
    stderr = server.stderr_path.read_text()
    assert "Traceback" not in stderr, stderr


def test_config_sigint_and_the_db_is_reused(tmp_path: Path, jwt_secret: str) -> None:
    config = tmp_path / "sync.toml"
    config.write_text("[sync.customers]\ninterval_minutes = 15\nstart_delay_minutes = 7\n", encoding="utf-8")
    first = start_server(tmp_path, jwt_secret, "--config", str(config))
    try:
        api = f"{first.base}/api/sync"
        status, body = call("GET", f"{api}/schedule", first.admin_token)
        assert status == 200 and (
            body["data"]["customers"]["interval"],
            body["data"]["customers"]["startDelay"],
        ) == (
            15,
            7,
        )
        status, _ = call("POST", f"{api}/schedule", first.admin_token, {"syncType": "ddt", "enabled": False})
        assert status == 200
        first.proc.send_signal(signal.SIGINT)
        assert first.proc.wait(STOP_TIMEOUT) == 0
    finally:
        stop(first.proc)
    second = start_server(tmp_path, jwt_secret)  # same --db: the pause survived the restart
    try:
        status, body = call("GET", f"{second.base}/api/sync/schedule", second.admin_token)
        assert status == 200 and body["data"]["ddt"]["enabled"] is False
        second.proc.send_signal(signal.SIGTERM)
        assert second.proc.wait(STOP_TIMEOUT) == 0
    finally:
        stop(second.proc)


@pytest.mark.parametrize("secret", [None, "too-short"])
def test_serve_without_a_good_secret_exits_2(tmp_path: Path, secret: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    if secret is not None:
        env[SECRET_ENV] = secret
    proc = subprocess.Popen(
        [sys.executable, "-m", "archibald_actors", "serve", "--port", "0", "--db", str(tmp_path / "x.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        out, err = proc.communicate(timeout=START_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=STOP_TIMEOUT)
    assert proc.returncode == 2
    assert out == b""
    assert HOW_TO_SET_SECRET in err.decode()
    assert not (tmp_path / "x.db").exists()
