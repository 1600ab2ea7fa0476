"""``archibald-sync serve`` as a real subprocess: start, talk to it over HTTP, stop it.

Modelled on the helpers of ``tests/cli/test_cli_serve.py``, with a working directory (so a
``--config`` handler module in it is importable) and a reader of the event stream.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serve_process import LineReader, stop

from archibald_actors.web.auth import SECRET_ENV, make_token

#: Real seconds the server gets to start.
START_TIMEOUT = 30.0


@dataclass
class Serve:
    """A running ``serve`` subprocess."""

    proc: subprocess.Popen[bytes]
    base: str
    admin_token: str
    db: Path
    stderr_path: Path

    @property
    def api(self) -> str:
        """The API's base URL."""
        return f"{self.base}/api/sync"

    def stderr(self) -> str:
        """Everything the process logged so far."""
        return self.stderr_path.read_text(errors="replace")

    def errors_logged(self) -> list[str]:
        """Lines logged at ERROR or CRITICAL, and tracebacks."""
        return [
            line
            for line in self.stderr().splitlines()
            if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback")
        ]


def start_serve(tmp_path: Path, secret: str, *extra: str, name: str = "serve") -> Serve:
    """Start ``python -m archibald_actors serve`` on a free port, the db and cwd in ``tmp_path``."""
    db = tmp_path / "sync.db"
    stderr_path = tmp_path / f"{name}.stderr"
    with stderr_path.open("wb") as stderr:  # a file, not a pipe nobody drains
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "archibald_actors", "serve", "--port", "0", "--db", str(db),
                "--stop-timeout", "2",  # a sync that will not finish is asked to stop after 2 s
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=tmp_path,
            env={**os.environ, SECRET_ENV: secret},
            bufsize=0,
        )
    lines = LineReader(proc)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        base = lines.until(r"^listening on (http://127\.0\.0\.1:\d+)$", deadline)[1]
    except BaseException:
        stop(proc)
        raise
    # Our own token rather than the one serve may print: that line is for humans.
    token = make_token(secret, role="admin", sub="attack-admin", ttl=3600)
    return Serve(proc, base, token, db, stderr_path)


def call(
    method: str, url: str, token: str | None, body: dict[str, Any] | None = None, timeout: float = 10
) -> tuple[int, Any]:
    """One JSON request; returns status and decoded body (HTTP errors included)."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            raw = error.read()
            try:
                return error.code, json.loads(raw or b"null")
            except ValueError:
                return error.code, raw.decode(errors="replace")


def wait_running(server: Serve, sync_type: str, timeout: float = 20.0) -> None:
    """Return once ``sync_type`` runs; reads the event stream (opened before status is asked)."""
    deadline = time.monotonic() + timeout
    stream = urllib.request.urlopen(f"{server.api}/events?token={server.admin_token}", timeout=timeout)
    with stream:
        status, body = call("GET", f"{server.api}/status", server.admin_token)
        assert status == 200, body
        running = body["data"]["running"]
        if running is not None and running["syncType"] == sync_type:
            return
        event = None
        for raw in stream:
            line = raw.decode().rstrip("\n")
            assert time.monotonic() < deadline, f"{sync_type} did not start within {timeout} s"
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif (
                line.startswith("data: ")
                and event == "sync.started"
                and json.loads(line.removeprefix("data: "))["syncType"] == sync_type
            ):
                return
        raise AssertionError(f"the event stream ended before {sync_type} started")
