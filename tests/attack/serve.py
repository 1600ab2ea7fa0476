"""``archibald-sync serve`` as a real subprocess: start, talk to it over HTTP, stop it.

Built on ``tests/serve_process.py``, with a working directory (so a ``--config`` handler
module in it is importable) and a reader of the event stream.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from serve_process import call, launch_serve, stop

from archibald_actors.web.auth import make_token

__all__ = ["Serve", "call", "start_serve", "stop", "wait_running"]


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
    # --stop-timeout: a sync that will not finish is asked to stop after 2 s.
    args = ["--port", "0", "--db", str(db), "--stop-timeout", "2", *extra]
    proc, _, base = launch_serve(args, secret=secret, stderr_path=stderr_path, cwd=tmp_path)
    # Our own token rather than the one serve may print: that line is for humans.
    token = make_token(secret, role="admin", sub="attack-admin", ttl=3600)
    return Serve(proc, base, token, db, stderr_path)


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
