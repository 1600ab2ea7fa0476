"""Sync handlers the console tests name in their ``--config`` (imported by the ``serve`` process).

Every wait is ``ctx.sleep`` on the service clock, so ``serve --speed`` scales it.
"""

from __future__ import annotations

from archibald_actors.actors.runner import SyncContext

#: Rows a progress run works through, and clock seconds per row (90 s: 3 real s at speed 30).
ROWS = 100
ROW_SECONDS = 0.9


def progress_sync(ctx: SyncContext) -> dict[str, int]:
    """Upserts ``ROWS`` rows, telling how far it is after each."""
    for done in range(ROWS):
        ctx.progress(done, ROWS, "rows")
        ctx.sleep(ROW_SECONDS)
    ctx.progress(ROWS, ROWS, "rows")
    return {"rows": ROWS}


def agent_sync(ctx: SyncContext) -> dict[str, int]:
    """One agent's share: 30 rows in 45 clock seconds; an agent whose id holds "bad" fails."""
    if ctx.agent_id is not None and "bad" in ctx.agent_id:
        raise RuntimeError(f"the ERP refused {ctx.agent_id}'s login")
    for done in range(30):
        ctx.progress(done, 30, "rows")
        ctx.sleep(1.5)
    return {"rows": 30}


def failing_sync(ctx: SyncContext) -> None:
    """Always fails at once: its breaker opens."""
    raise RuntimeError("the ERP answered 502")
