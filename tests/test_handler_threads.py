"""Plain handlers run on handler threads that wait between runs; stopping the service ends them.

(``test_bounded_stop.py`` shows the other side: a thread whose handler never returns is
never handed another run.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from agent_support import MIN

from archibald_actors import DEFAULT_SCHEDULE, SYNC_TYPES, ManualClock, SyncService


def test_runs_one_after_another_share_a_daemon_thread_named_for_each_run_and_stop_ends_it(
    clock: ManualClock, make_service: Callable[..., SyncService]
) -> None:
    seen: list[tuple[str, threading.Thread, str]] = []

    def record(ctx: Any) -> None:
        thread = threading.current_thread()
        seen.append((ctx.sync_type, thread, thread.name))

    schedule = {t: replace(e, enabled=False) for t, e in DEFAULT_SCHEDULE.items()}
    service = make_service(dict.fromkeys(SYNC_TYPES, record), schedule=schedule)
    types = ("orders", "customers", "prices")
    for sync_type in types:
        service.request_sync(sync_type)
        clock.advance(MIN)

    assert [sync_type for sync_type, _, _ in seen] == list(types)
    thread = seen[0][1]
    assert all(t is thread for _, t, _ in seen)  # one thread, not a thread per run
    assert [name for _, _, name in seen] == [f"archibald-sync-{t}" for t in types]
    assert thread.daemon and thread.is_alive()  # waiting for the next run

    service.stop(timeout=5.0)
    assert not thread.is_alive()
    assert service.abandoned_threads == 0
