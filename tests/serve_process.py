"""Helpers for the tests that drive ``archibald-sync serve`` as a real process: starting it,
reading its output against a deadline, talking JSON to it over HTTP, and making sure it is gone."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archibald_actors.web.auth import SECRET_ENV

__all__ = [
    "LISTENING",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "LineReader",
    "call",
    "launch_serve",
    "spawn_serve",
    "stop",
]

#: Real seconds a server gets to start (to print its ``listening on`` line).
START_TIMEOUT = 30.0
#: Real seconds a server gets to exit after a signal, or after a kill.
STOP_TIMEOUT = 20.0
#: The line ``serve`` prints once it accepts connections; group 1 is the base URL.
LISTENING = r"^listening on (http://127\.0\.0\.1:\d+)$"


class LineReader:
    """Lines of a subprocess's unbuffered stdout, read with ``select`` against a deadline."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._fd = proc.stdout.fileno()
        self._buffer = b""
        self.seen: list[str] = []

    def until(self, pattern: str, deadline: float) -> re.Match[str]:
        """The first line matching ``pattern``; AssertionError past ``deadline`` or at EOF."""
        while True:
            while b"\n" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\n", 1)
                line = raw.decode()
                self.seen.append(line)
                if match := re.search(pattern, line):
                    return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line matching {pattern!r} in time; got {self.seen}")
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                chunk = os.read(self._fd, 4096)
                if not chunk:
                    raise AssertionError(f"serve ended before printing {pattern!r}; got {self.seen}")
                self._buffer += chunk


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` if it still runs, reap it and close its pipe (every test ends with this)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(STOP_TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()


def spawn_serve(
    args: Sequence[str], *, secret: str, stderr_path: Path, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], LineReader]:
    """Start ``python -m archibald_actors serve *args`` with ``secret`` as the JWT secret; do not wait.

    Its stdout is unbuffered, for the returned reader; its stderr goes to ``stderr_path`` (a
    file, not a pipe nobody drains). ``cwd`` is its working directory (default: ours).
    """
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "archibald_actors", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=cwd,
            env={**os.environ, SECRET_ENV: secret},
            bufsize=0,
        )
    return proc, LineReader(proc)


def launch_serve(
    args: Sequence[str], *, secret: str, stderr_path: Path, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], LineReader, str]:
    """``spawn_serve``, then wait for the ``listening on`` line: the process, its reader and base URL.

    Raises:
        AssertionError: no such line within ``START_TIMEOUT``, or serve ended first (the
            process is stopped).
    """
    proc, lines = spawn_serve(args, secret=secret, stderr_path=stderr_path, cwd=cwd)
    try:
        base = lines.until(LISTENING, time.monotonic() + START_TIMEOUT)[1]
    except BaseException:
        stop(proc)
        raise
    return proc, lines, base


def call(
    method: str, url: str, token: str | None, body: dict[str, Any] | None = None, timeout: float = 10
) -> tuple[int, Any]:
    """One JSON request; returns status and decoded body (HTTP errors included).

    An error body that is not JSON comes back as text.
    """
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
