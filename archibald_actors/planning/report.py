"""A simulation as text (the ``simulate`` report) and as JSON (``simulate --json``, the preview).

The JSON document is a contract (docs/cli.md): tests and clients parse it. Times are ISO
8601 UTC, durations and waits seconds, and ``minutesAfterEpoch`` is the T+ of the slot
grid (the service's epoch is T+0).
"""

from __future__ import annotations

from typing import Any

from archibald_actors.domain import iso
from archibald_actors.planning.runs import SimulatedRun
from archibald_actors.planning.simulation import Collision, Simulation, TypeWaits
from archibald_actors.planning.suggest import Suggestion

__all__ = ["format_report", "format_suggestion", "simulation_json", "suggestion_json", "waits_json"]


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def run_json(sim: Simulation, run: SimulatedRun) -> dict[str, Any]:
    """One run: ``syncType, agentId, trigger, scheduledAt, startedAt, finishedAt, waitSeconds,
    durationSeconds, outcome, behind``."""
    return {
        "syncType": run.sync_type,
        "agentId": run.agent_id,
        "trigger": run.trigger,
        "scheduledAt": None if run.slot is None else iso(sim.wall(run.slot)),
        "startedAt": iso(sim.wall(run.started)),
        "finishedAt": None if run.finished is None else iso(sim.wall(run.finished)),
        "waitSeconds": _seconds(run.waited),
        "durationSeconds": _seconds(run.duration),
        "outcome": run.outcome,
        "behind": list(run.behind),
    }


def collision_json(sim: Simulation, collision: Collision) -> dict[str, Any]:
    """One collision: ``at, minutesAfterEpoch, types, waited: [{syncType, agentId, waitSeconds, behind}]``."""
    return {
        "at": iso(sim.wall(collision.at)),
        "minutesAfterEpoch": round(sim.minutes_after_epoch(collision.at), 3),
        "types": list(collision.types),
        "waited": [
            {
                "syncType": run.sync_type,
                "agentId": run.agent_id,
                "waitSeconds": _seconds(run.waited),
                "behind": list(run.behind),
            }
            for run in collision.waited
        ],
    }


def type_waits_json(waits: TypeWaits) -> dict[str, Any]:
    """``{runs, collided, mean, max, p99, coalesced}`` (seconds)."""
    return {
        "runs": waits.runs,
        "collided": waits.collided,
        "mean": round(waits.mean_wait, 3),
        "max": round(waits.max_wait, 3),
        "p99": round(waits.p99_wait, 3),
        "coalesced": waits.coalesced,
    }


def waits_json(sim: Simulation) -> dict[str, dict[str, Any]]:
    """Per type, its waits."""
    return {w.sync_type: type_waits_json(w) for w in sim.waits()}


def simulation_json(sim: Simulation) -> dict[str, Any]:
    """The whole simulation: its span and table, then ``runs``, ``collisions`` and ``waits``."""
    scenario = sim.scenario
    schedule = {
        t: {
            "intervalMinutes": _number(e.interval_minutes),
            "startDelayMinutes": _number(e.start_delay_minutes),
            "priority": e.priority,
            "enabled": e.enabled,
            "timeoutSeconds": _number(e.timeout_seconds),
            "durationSeconds": [_number(d) for d in scenario.workload.range_of(t)],
        }
        for t, e in sim.schedule.items()
    }
    return {
        "from": iso(sim.origin),
        "until": iso(scenario.until if sim.reached is None else sim.wall(sim.reached)),
        "complete": sim.complete,
        "hours": _number(sim.hours),
        "epoch": iso(sim.epoch),
        "seed": sim.seed,
        "agents": len(scenario.agents),
        "maxConcurrent": scenario.max_concurrent,
        "schedule": schedule,
        "runs": [run_json(sim, r) for r in sim.runs],
        "collisions": [collision_json(sim, c) for c in sim.collision_groups()],
        "waits": waits_json(sim),
        "queuedAtEnd": sim.queued_at_end,
    }


# --- text --------------------------------------------------------------------------


def clock_time(seconds: float | None) -> str:
    """``T+mm:ss`` (minutes may pass 99)."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"T+{whole // 60:02d}:{whole % 60:02d}"


def span(seconds: float | None) -> str:
    """``m:ss``."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def format_report(simulation: Simulation) -> str:
    """The timeline, the per-type waits and the collisions, as text."""
    scenario = simulation.scenario
    agents = f", {len(scenario.agents)} agents" if scenario.agents else ""
    lines = [
        f"Simulated {simulation.hours:g} h of the real actors on a ManualClock "
        f"(seed {simulation.seed}{agents}).",
        "",
        "Schedule:",
    ]
    for entry in simulation.schedule.values():
        low, high = scenario.workload.range_of(entry.sync_type)
        state = "" if entry.enabled else ", paused"
        lines.append(
            f"  {entry.sync_type:<10} every {entry.interval_minutes:g} min "
            f"from T+{entry.start_delay_minutes:g}, priority {entry.priority}, "
            f"takes {low:g}-{high:g} s{state}"
        )
    with_agents = any(r.agent_id is not None for r in simulation.runs)
    lines += [
        "",
        "Timeline (times as T+minutes:seconds after start):",
        f"  {'start':<9} {'type':<10} {'trigger':<8} {'slot':<9} {'waited':>6} {'took':>6}  "
        f"{'outcome':<9} {'agent  ' if with_agents else ''}waited behind",
    ]
    for run in simulation.runs:
        agent = f"{run.agent_id or '-':<6} " if with_agents else ""
        lines.append(
            f"  {clock_time(run.started):<9} {run.sync_type:<10} {run.trigger:<8} "
            f"{clock_time(run.slot):<9} {span(run.waited):>6} {span(run.duration):>6}  "
            f"{run.outcome:<9} {agent}{', '.join(run.behind)}".rstrip()
        )
    lines += [
        "",
        "Waits between slot and start, per type:",
        f"  {'type':<10} {'runs':>5} {'collided':>9} {'mean wait':>10} {'max wait':>9}",
    ]
    for waits in simulation.waits():
        lines.append(
            f"  {waits.sync_type:<10} {waits.runs:>5} {waits.collided:>9} "
            f"{span(waits.mean_wait):>10} {span(waits.max_wait):>9}"
        )
    collisions = simulation.collisions()
    lines += ["", "Collisions the staggering did not prevent:"]
    if not collisions:
        lines.append("  none")
    for run in collisions:
        lines.append(
            f"  {clock_time(run.slot)}: {run.sync_type} waited {span(run.waited)} "
            f"behind {', '.join(run.behind) or 'another sync'}"
        )
    return "\n".join(lines) + "\n"


# --- suggestions ---------------------------------------------------------------------


def suggestion_json(suggestion: Suggestion) -> dict[str, Any]:
    """A suggestion: the delays, each type's waits before and after, and what is left."""
    before = {w.sync_type: w for w in suggestion.before.waits()}
    after = {w.sync_type: w for w in suggestion.after.waits()}
    schedule = suggestion.before.schedule
    return {
        "hours": _number(suggestion.after.hours),
        "collisionFree": suggestion.collision_free,
        "complete": suggestion.complete,
        "searched": suggestion.searched,
        "message": suggestion.message(),
        "delays": {
            t: {"current": _number(now), "suggested": _number(new)}
            for t, (now, new) in suggestion.delays.items()
        },
        "waits": {
            t: {
                "priority": schedule[t].priority,
                "before": type_waits_json(before[t]),
                "after": type_waits_json(after[t]),
            }
            for t in schedule
        },
        "collisions": {
            "before": len(suggestion.before.collision_groups()),
            "after": len(suggestion.after.collision_groups()),
        },
        "unavoidable": [list(pair) for pair in suggestion.unavoidable],
    }


def format_suggestion(suggestion: Suggestion, seconds: float | None = None) -> str:
    """The suggested delays and the waits before and after, as a text table."""
    before = {w.sync_type: w for w in suggestion.before.waits()}
    after = {w.sync_type: w for w in suggestion.after.waits()}
    schedule = suggestion.before.schedule
    lines = [
        f"Start delays that keep every interval, scored over {suggestion.after.hours:g} h of the real "
        f"actors on a ManualClock (seed {suggestion.after.seed}); higher priorities first.",
        "",
        f"  {'type':<10} {'priority':>8} {'every':>6} {'delay':>6} {'->':>2} {'new':>4}   "
        f"{'mean wait':>9} {'->':>2} {'new':>5}   {'max wait':>8} {'->':>2} {'new':>5}",
    ]
    for t, (now, new) in suggestion.delays.items():
        entry, b, a = schedule[t], before[t], after[t]
        lines.append(
            f"  {t:<10} {entry.priority:>8} {entry.interval_minutes:>6g} {now:>6g} {'':>2} {new:>4g}   "
            f"{span(b.mean_wait):>9} {'':>2} {span(a.mean_wait):>5}   "
            f"{span(b.max_wait):>8} {'':>2} {span(a.max_wait):>5}"
        )
    took = "" if seconds is None else f" in {seconds:.1f} s"
    lines += [
        "",
        suggestion.message(),
        f"Collisions: {len(suggestion.before.collision_groups())} now, "
        f"{len(suggestion.after.collision_groups())} with the suggestion "
        f"({suggestion.searched} tables simulated{took}).",
    ]
    return "\n".join(lines) + "\n"
