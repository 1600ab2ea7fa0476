"""``SupervisorActor``: starts the timers and the orchestrator and restarts them one-for-one.

A child that dies is restarted after an exponential backoff on the service clock (0.1 s
doubling, at most 30 s) while it has had fewer than ``MAX_RESTARTS`` restarts in the last
``RESTART_WINDOW`` seconds; past that it stays down as ``failed`` and the others go on.
The supervisor also owns the schedule: retunes go through it to the timer concerned.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pykka

from archibald_actors.actors.base import Address, TrackedActor
from archibald_actors.actors.orchestrator_state import OrchestratorState
from archibald_actors.actors.timer import TimerActor
from archibald_actors.clock import Activity, Clock, Wakeup
from archibald_actors.errors import InvalidValueError
from archibald_actors.events import EventBus
from archibald_actors.messages import (
    ChildFailed,
    ClusterChanged,
    GetSchedule,
    GetStatus,
    LeadershipChanged,
    LoadRequests,
    PruneLedger,
    Rearm,
    Reply,
    ReportStatus,
    RestartChild,
    Retune,
    SetLeading,
    TimerArmed,
    answer,
    fail,
)
from archibald_actors.schedule import ScheduleEntry
from archibald_actors.schedule_view import ScheduleView
from archibald_actors.status import build_status
from archibald_actors.store.base import ClusterStore, Store

__all__ = ["ORCHESTRATOR", "ChildInfo", "SupervisorActor"]

log = logging.getLogger("archibald_actors.supervisor")

ORCHESTRATOR = "orchestrator"
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 30.0
#: Clock seconds between two prunes of the ledger.
PRUNE_EVERY = 6 * 3600.0
#: Real seconds the supervisor waits for each child to stop.
CHILD_STOP_TIMEOUT = 5.0


@dataclass
class ChildInfo:
    """What the supervisor knows of one child."""

    state: str = "running"  # running | restarting | failed | standby (a follower's timer)
    restarts: int = 0
    recent: list[float] = field(default_factory=list)
    ref: pykka.ActorRef[Any] | None = None
    restart_wakeup: Wakeup | None = None


@dataclass
class TimerView:
    """A timer's last report."""

    served: float | None = None
    next_slot: float | None = None
    missed: int = 0


class SupervisorActor(TrackedActor):
    """Parent of every other actor of the service."""

    def __init__(
        self,
        *,
        address: Address,
        clock: Clock,
        epoch: float,
        entries: dict[str, ScheduleEntry],
        served: Mapping[str, float | None],
        addresses: Mapping[str, Address],
        start_orchestrator: Callable[[], pykka.ActorRef[Any]],
        orchestrator_state: OrchestratorState,
        events: EventBus,
        store: Store,
        fires_in_flight: Activity,
        retention_days: float,
        role: str,
        publish_view: Callable[[ScheduleView], None] = lambda view: None,
    ) -> None:
        super().__init__(address, clock.activity)
        self._clock = clock
        self._epoch = epoch
        self._entries = entries
        self._addresses = addresses
        self._start_orchestrator = start_orchestrator
        self._orchestrator_state = orchestrator_state
        self._events = events
        self._store = store
        self._fires = fires_in_flight
        self._retention = retention_days * 86400.0
        self._pruner: threading.Thread | None = None
        self._prune_wakeup: Wakeup | None = None
        self._children = {name: ChildInfo() for name in addresses}
        self._timers = {t: TimerView(served=served.get(t)) for t in entries}
        self._role = role  # "standalone" | "leader" | "follower"
        self._publish_view = publish_view
        self._view = self._refresh_view()
        self._retune_seq = dict.fromkeys(entries, 0)
        self._retune_replies: dict[str, list[tuple[int, Reply]]] = {t: [] for t in entries}

    # --- lifecycle ----------------------------------------------------------------

    def on_started(self) -> None:
        """Start the orchestrator first, so the timers' first requests find it."""
        self._start_child(ORCHESTRATOR)
        if self._role != "follower":
            self._start_timers()
        else:
            for sync_type in self._entries:
                self._children[sync_type].state = "standby"
        self._prune()
        self._refresh_view()

    def _start_timers(self) -> None:
        for sync_type in self._entries:
            child = self._children[sync_type]
            child.state, child.recent = "running", []
            self._start_child(sync_type)

    def _stop_timers(self) -> None:
        for sync_type in self._entries:
            child = self._children[sync_type]
            if child.restart_wakeup is not None:
                child.restart_wakeup.cancel()
                child.restart_wakeup = None
            if child.ref is not None:
                self._stop_child(sync_type, child)
                child.ref = None
            child.state = "standby"
            self._timers[sync_type].next_slot = None
            self._answer_retunes(sync_type)

    def _stop_child(self, name: str, child: ChildInfo) -> None:
        assert child.ref is not None
        try:
            child.ref.stop(block=True, timeout=CHILD_STOP_TIMEOUT)
        except pykka.Timeout:
            log.error("%s did not stop within %s s", name, CHILD_STOP_TIMEOUT)

    def _leadership_changed(self, leading: bool) -> None:
        """Won: reload what other leaders changed, start the timers. Lost: stop firing at once."""
        if leading == (self._role == "leader"):
            return
        if leading:
            stored = self._store.load()
            for sync_type, entry in self._entries.items():
                self._entries[sync_type] = entry.with_timing_of(stored.entries.get(sync_type))
                if sync_type in stored.served:
                    self._timers[sync_type].served = self._epoch + stored.served[sync_type]
            self._role = "leader"
            # The orchestrator must lead before the timers' first catch-up reaches it.
            self._addresses[ORCHESTRATOR].tell(SetLeading(True))
            self._start_timers()
        else:
            self._role = "follower"
            self._stop_timers()
            self._addresses[ORCHESTRATOR].tell(SetLeading(False))
        log.warning("this replica is now the %s", self._role)
        self._events.publish("leadership.changed", role=self._role)

    def _cluster_changed(self, kind: str) -> None:
        """Another replica retuned the schedule or stored a request."""
        if kind in ("retune", "resync"):
            store = self._store
            try:
                stored = store.load_entries() if isinstance(store, ClusterStore) else store.load().entries
            except Exception as exc:  # the listener will announce a resync once it can
                log.error("cannot reload the schedule: %s", exc)
                return
            for sync_type, entry in self._entries.items():
                new_entry = entry.with_timing_of(stored.get(sync_type))
                if new_entry != entry:
                    self._apply(new_entry, reply=None)
        if kind in ("request", "resync") and self._role == "leader":
            self._addresses[ORCHESTRATOR].tell(LoadRequests())

    def _prune(self) -> None:
        """Drop ledger rows and slot claims past the retention, on a thread of its own.

        The delete may take a while on a big ledger; nothing waits for it.
        """
        cutoff = self._clock.wall() - timedelta(seconds=self._retention)
        store, activity = self._store, self._clock.activity

        def prune() -> None:
            try:
                runs, claims = store.prune(cutoff), store.prune_claims(cutoff)
                if runs or claims:
                    log.info("pruned %d runs and %d slot claims older than %s", runs, claims, cutoff)
            except Exception:  # pruning is housekeeping: log, try again next time
                log.exception("pruning the ledger failed")
            finally:
                activity.end()

        if self._pruner is None or not self._pruner.is_alive():
            activity.begin()
            self._pruner = threading.Thread(target=prune, name="archibald-prune", daemon=True)
            self._pruner.start()
        address = self._sv_address
        self._prune_wakeup = self._clock.call_at(
            self._clock.now() + PRUNE_EVERY, lambda: address.tell(PruneLedger())
        )

    def _start_child(self, name: str) -> None:
        ref: pykka.ActorRef[Any]
        if name == ORCHESTRATOR:
            ref = self._start_orchestrator()
        else:
            ref = TimerActor.start(
                address=self._addresses[name],
                clock=self._clock,
                entry=self._entries[name],
                epoch=self._epoch,
                served=self._timers[name].served,
                retune_seq=self._retune_seq[name],
                orchestrator=self._addresses[ORCHESTRATOR],
                supervisor=self._sv_address,
                fires_in_flight=self._fires,
            )
        child = self._children[name]
        child.ref = ref
        child.state = "running"
        self._addresses[name].attach(ref)

    def on_stop(self) -> None:
        """Stop the timers (no new requests), then the orchestrator."""
        for name in [*self._entries, ORCHESTRATOR]:
            child = self._children[name]
            if child.restart_wakeup is not None:
                child.restart_wakeup.cancel()
            if child.ref is not None:
                self._stop_child(name, child)
        if self._prune_wakeup is not None:
            self._prune_wakeup.cancel()
        if self._pruner is not None:
            self._pruner.join(CHILD_STOP_TIMEOUT)
        running = self._orchestrator_state.running
        if running is not None:
            # The orchestrator may have been down at shutdown: the run must still be told.
            running.stop()
        super().on_stop()

    # --- messages -----------------------------------------------------------------

    def handle(self, message: Any) -> None:
        """Dispatch on the message type; anything but a query may change the schedule view."""
        self._dispatch(message)
        if not isinstance(message, GetSchedule | GetStatus):
            self._refresh_view()

    def _dispatch(self, message: Any) -> None:
        match message:
            case TimerArmed():
                self._timer_armed(message)
            case ChildFailed(name=name, error=error):
                self._child_failed(name, error)
            case RestartChild(name=name):
                self._restart(name)
            case PruneLedger():
                self._prune()
            case Retune():
                self._retune(message)
            case GetSchedule(reply=reply):
                answer(reply, self._view.rows(self._clock))
            case GetStatus(reply=reply):
                self._status(reply)
            case LeadershipChanged(leading=leading):
                self._leadership_changed(leading)
            case ClusterChanged(kind=kind):
                self._cluster_changed(kind)
            case _:
                super().handle(message)

    def _timer_armed(self, report: TimerArmed) -> None:
        view = self._timers[report.sync_type]
        view.served = report.served
        view.next_slot = report.next_slot
        view.missed += report.missed
        pending = self._retune_replies[report.sync_type]
        done = [reply for seq, reply in pending if seq <= report.retune_seq]
        if done:
            pending[:] = [(seq, reply) for seq, reply in pending if seq > report.retune_seq]
            schedule = self._schedule()
            for reply in done:
                answer(reply, schedule)

    def _child_failed(self, name: str, error: str) -> None:
        child = self._children[name]
        child.ref = None
        now = self._clock.now()
        child.recent = [t for t in child.recent if now - t < RESTART_WINDOW]
        if len(child.recent) >= MAX_RESTARTS:
            child.state = "failed"
            log.error("%s failed %d times within %g s; leaving it down: %s",
                      name, len(child.recent) + 1, RESTART_WINDOW, error)
            self._events.publish("child.failed", name=name, error=error)
            if name != ORCHESTRATOR:
                self._answer_retunes(name)
            return
        delay = min(BACKOFF_FIRST * 2 ** len(child.recent), BACKOFF_MAX)
        child.state = "restarting"
        child.recent.append(now)
        log.warning("%s died (%s); restarting in %.1f s", name, error, delay)
        address = self._sv_address
        child.restart_wakeup = self._clock.call_at(now + delay, lambda: address.tell(RestartChild(name)))

    def _restart(self, name: str) -> None:
        child = self._children[name]
        if child.restart_wakeup is not None:
            child.restart_wakeup.cancel()  # restarted early (on shutdown): the backoff is moot
        child.restart_wakeup = None
        if child.state != "restarting":
            return
        child.restarts += 1
        self._start_child(name)
        self._events.publish("child.restarted", name=name, restarts=child.restarts)

    def _retune(self, message: Retune) -> None:
        entry = self._entries[message.sync_type]
        try:
            new_entry = entry.retuned(
                interval_minutes=message.interval_minutes,
                start_delay_minutes=message.start_delay_minutes,
                enabled=message.enabled,
            )
            self._store.save_entry(new_entry)
        except (InvalidValueError, OSError, RuntimeError) as exc:
            if not isinstance(exc, InvalidValueError):
                log.error("retune of %s not applied, the store failed: %s", message.sync_type, exc)
            fail(message.reply, exc)
            return
        if isinstance(self._store, ClusterStore):
            try:
                self._store.notify("retune", {"syncType": message.sync_type})
            except Exception as exc:  # stored already: replicas pick it up at their next resync
                log.error("retune of %s stored but not announced: %s", message.sync_type, exc)
        self._apply(new_entry, message.reply)

    def _apply(self, new_entry: ScheduleEntry, reply: Reply | None) -> None:
        """Adopt a stored entry; answer ``reply`` once the timer re-armed (or at once if none runs)."""
        sync_type = new_entry.sync_type
        self._entries[sync_type] = new_entry
        self._events.publish("schedule.changed", syncType=sync_type, **new_entry.to_json())
        if self._children[sync_type].state in ("failed", "standby"):
            answer(reply, self._schedule())
            return
        self._retune_seq[sync_type] += 1
        seq = self._retune_seq[sync_type]
        if reply is not None:
            self._retune_replies[sync_type].append((seq, reply))
        self._addresses[sync_type].tell(Rearm(new_entry, seq))

    def _answer_retunes(self, sync_type: str) -> None:
        view = self._timers[sync_type]
        self._timer_armed(TimerArmed(sync_type, view.served, None, 0, self._retune_seq[sync_type]))

    # --- views --------------------------------------------------------------------

    def _refresh_view(self) -> ScheduleView:
        """Build the schedule view from the current state and publish it."""
        next_slots: dict[str, float | None] = {}
        from_grid = set()
        for sync_type, entry in self._entries.items():
            state = self._children[sync_type].state
            slot = self._timers[sync_type].next_slot
            if not entry.enabled or state == "failed":
                slot = None
            elif slot is None or state == "standby":
                from_grid.add(sync_type)  # no timer here (a follower): the grid says when
            next_slots[sync_type] = slot
        self._view = ScheduleView(dict(self._entries), next_slots, frozenset(from_grid), self._epoch)
        self._publish_view(self._view)
        return self._view

    def _schedule(self) -> dict[str, dict[str, Any]]:
        """The schedule as it stands now, published before any caller is answered with it."""
        return self._refresh_view().rows(self._clock)

    def _timer_state(self, sync_type: str) -> str:
        state = self._children[sync_type].state
        if state == "running" and not self._entries[sync_type].enabled:
            return "paused"
        return state

    def _status(self, reply: Any) -> None:
        timers = {
            t: {
                "nextRunAt": self._view.next_run_at(t, self._clock),
                "missed": self._timers[t].missed,
                "timer": self._timer_state(t),
                "restarts": self._children[t].restarts,
            }
            for t in self._entries
        }
        orchestrator = self._children[ORCHESTRATOR]
        if orchestrator.state != "running":
            # No incarnation is alive (restarts happen in this very thread), so nobody
            # else touches the state: read it here rather than wait for the restart.
            state, role = self._orchestrator_state, self._role
            answer(reply, build_status(state, self._entries, timers, orchestrator.state, role, self._clock))
            return
        self._addresses[ORCHESTRATOR].tell(ReportStatus(reply, timers, orchestrator.state, self._role))
