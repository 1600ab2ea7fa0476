"""Helpers for the tests that drive ``archibald-sync serve`` as a real process: reading its
output against a deadline, and making sure it is gone."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time

__all__ = ["STOP_TIMEOUT", "LineReader", "stop"]

#: Real seconds a server gets to exit after a signal, or after a kill.
STOP_TIMEOUT = 20.0


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
