"""SIGKILL at random moments during a burst of retunes and runs: nothing answered 200 is lost."""

from __future__ import annotations

import random
import signal
import threading
from pathlib import Path

from archibald_actors.store import SqliteStore

from .test_cli_serve import Server, call, start_server, stop

KILLS = 20
TYPES = ("orders", "customers", "prices")


class Burst:
    """Retunes sent back to back until the server dies; remembers what was answered 200."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.sent: dict[str, list[int]] = {t: [] for t in TYPES}  # in the order sent
        self.answered: dict[str, int] = {}  # index into sent[t] of the last 200
        self.count = 0
        self.enough = threading.Event()
        self.kill_after = 0

    def run(self, server: Server) -> None:
        api = f"{server.base}/api/sync"
        while server.proc.poll() is None:
            sync_type = self.rng.choice(TYPES)
            value = self.rng.randint(5, 180)
            self.sent[sync_type].append(value)
            body = {"syncType": sync_type, "intervalMinutes": value}
            try:
                status, _ = call("POST", f"{api}/schedule", server.admin_token, body)
            except OSError:
                return  # killed mid-request: not answered, may or may not be stored
            if status == 200:
                self.answered[sync_type] = len(self.sent[sync_type]) - 1
                self.count += 1
                if self.count >= self.kill_after:
                    self.enough.set()


def test_sigkill_during_retunes_never_loses_an_answered_retune(tmp_path: Path, jwt_secret: str) -> None:
    seed = random.randrange(1_000_000)
    burst = Burst(random.Random(seed))
    for kill in range(KILLS):
        server = start_server(tmp_path, jwt_secret)
        burst.count, burst.kill_after = 0, burst.rng.randint(1, 25)
        burst.enough.clear()
        sender = threading.Thread(target=burst.run, args=(server,), name=f"t-burst-{kill}")
        sender.start()
        try:
            assert burst.enough.wait(30), f"seed={seed}: no retune answered in time"
            server.proc.send_signal(signal.SIGKILL)  # while the sender keeps sending
        finally:
            stop(server.proc)
            sender.join(30)
        store = SqliteStore(tmp_path / "sync.db")
        try:
            stored = store.load().entries  # the database always opens
        finally:
            store.close()
        for sync_type, index in burst.answered.items():
            value = stored[sync_type].interval_minutes
            sent = burst.sent[sync_type]
            # The last answered value, or one sent after it whose answer the kill cut off.
            assert value in sent[index:], (
                f"seed={seed} kill={kill}: {sync_type} stored {value}, last answered {sent[index]}, "
                f"sent after it {sent[index + 1:]}"
            )
