"""Circuit breakers: per (type, lane) and ERP-wide, as plain state driven by plain times.

Why: a burst of failed logins once got the server's address blocked by the ERP. A pair
(sync type, lane) that fails ``breaker_failures`` tries in a row stops asking for
``breaker_cooldown``: its jobs are recorded ``skipped`` with reason ``"breaker open"``.
After the cooldown the pair is half-open: ONE trial job runs (the pair's other jobs still
skip); its success closes the pair, its failure opens it for another cooldown. When
failures hit ``erp_breaker_lanes`` distinct lanes within ``erp_window`` (10 min), the
ERP itself is in trouble: every job waits (is held, not skipped) ``erp_wait`` (15 min)
from the opening. An admin may close any of them early (:meth:`Breakers.reset`).

A lane is named by its agent id, None for the service lane of shared types (so an agent
called ``"service"`` cannot collide with it). ``skipped`` (a missing login, a skip by the
breaker itself) and ``cancelled`` runs say nothing about the ERP and change no count.

No actor, thread or clock inside: each call takes the service clock's float seconds, and
every transition is returned as a :class:`BreakerChanged` for the caller to publish
(``breaker.opened`` / ``breaker.half_open`` / ``breaker.closed``). Only pairs with a
failure or not closed are stored, so 1,000 healthy agents cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationError

from archibald_actors.domain import FAILURES, Outcome
from archibald_actors.errors import InvalidValueError
from archibald_actors.validation import BreakerCooldownSeconds, BreakerFailures, ErpBreakerLanes, first_error

__all__ = [
    "BREAKER_OPEN_REASON",
    "DEFAULT_BREAKERS",
    "Admission",
    "BreakerChanged",
    "BreakerPolicy",
    "BreakerState",
    "Breakers",
    "Verdict",
]

BreakerState = Literal["closed", "open", "half_open"]
#: What the orchestrator does with a job: run it, run it as the pair's trial, record it
#: ``skipped`` (its pair is open), or hold it until the ERP-wide breaker closes.
Verdict = Literal["run", "trial", "skip", "wait"]
#: The ``reason`` of a job skipped by an open breaker.
BREAKER_OPEN_REASON = "breaker open"

_EVENT_NAMES: dict[BreakerState, str] = {
    "open": "breaker.opened",
    "half_open": "breaker.half_open",
    "closed": "breaker.closed",
}


class _BreakerRules(BaseModel):
    """The rules of the breaker settings, by their JSON names."""

    model_config = ConfigDict(extra="forbid")

    breakerFailures: BreakerFailures  # noqa: N815  (JSON names)
    breakerCooldown: BreakerCooldownSeconds  # noqa: N815
    erpBreakerLanes: ErpBreakerLanes  # noqa: N815
    erpBreakerWindow: BreakerCooldownSeconds  # noqa: N815
    erpBreakerWait: BreakerCooldownSeconds  # noqa: N815


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When breakers open and for how long (seconds on the service clock).

    Raises:
        InvalidValueError: a value of the wrong type or out of range; ``field`` names it
            (camelCase: ``breakerFailures``, ``breakerCooldown``, ``erpBreakerLanes``...).
    """

    breaker_failures: int = 3
    breaker_cooldown: float = 2 * 3600.0
    erp_breaker_lanes: int = 5
    erp_window: float = 10 * 60.0
    erp_wait: float = 15 * 60.0

    def __post_init__(self) -> None:
        values = {
            "breakerFailures": self.breaker_failures,
            "breakerCooldown": self.breaker_cooldown,
            "erpBreakerLanes": self.erp_breaker_lanes,
            "erpBreakerWindow": self.erp_window,
            "erpBreakerWait": self.erp_wait,
        }
        try:
            _BreakerRules.model_validate(values)
        except ValidationError as exc:
            field, problem, _ = first_error(exc.errors(), _BreakerRules)
            raise InvalidValueError(field, problem) from None


#: The design's defaults: 3 failures open a pair for 2 h; 5 lanes in 10 min hold all for 15 min.
DEFAULT_BREAKERS = BreakerPolicy()


class BreakerChanged(NamedTuple):
    """A breaker changed state; ``sync_type`` None means the ERP-wide breaker.

    ``until`` is when an open breaker's cooldown or wait ends (None when closed).
    """

    sync_type: str | None
    agent_id: str | None
    state: BreakerState
    until: float | None = None

    @property
    def event_type(self) -> str:
        """The event to publish: ``breaker.opened``, ``breaker.half_open`` or ``breaker.closed``."""
        return _EVENT_NAMES[self.state]

    def to_json(self, time: Callable[[float], object] = float) -> dict[str, object]:
        """The event's data; ``time`` turns a clock float into its JSON form (say ISO 8601)."""
        return {
            "scope": "erp" if self.sync_type is None else "pair",
            "syncType": self.sync_type,
            "agentId": self.agent_id,
            "state": self.state,
            "until": None if self.until is None else time(self.until),
        }


class Admission(NamedTuple):
    """The answer for one job about to start.

    ``reason`` is set for ``skip``; ``until`` is when the pair's cooldown ends (``skip``)
    or the ERP-wide breaker closes (``wait``: arm a wake-up then); ``ticket`` identifies a
    ``trial`` (hand it back to :meth:`Breakers.record`); ``changes`` are the transitions
    this answer made, to publish.
    """

    verdict: Verdict
    reason: str | None = None
    until: float | None = None
    ticket: int | None = None
    changes: tuple[BreakerChanged, ...] = ()


@dataclass(slots=True)
class _Pair:
    """One stored pair: failing, open or half-open (a healthy pair is not stored)."""

    failures: int = 0
    state: BreakerState = "closed"
    opened_at: float | None = None
    until: float | None = None
    trial: int = 0  # the ticket of the trial job in flight, 0 if none


class Breakers:
    """Every pair's breaker and the ERP-wide one; not thread-safe (one actor owns it)."""

    def __init__(self, policy: BreakerPolicy = DEFAULT_BREAKERS) -> None:
        """Start with every breaker closed."""
        self.policy = policy
        self._pairs: dict[tuple[str, str | None], _Pair] = {}
        self._recent: dict[str | None, float] = {}  # lane -> its latest failure, for the ERP window
        self._erp_until: float | None = None
        self._erp_lanes = 0
        self._tickets = 0  # the last trial ticket given: each trial's is unique

    # -- the orchestrator's questions ------------------------------------------------------

    def admit(self, sync_type: str, agent_id: str | None, t: float) -> Admission:
        """What to do with a job of ``(sync_type, agent_id)`` starting at ``t``.

        A ``trial`` carries a ``ticket``: pass it to :meth:`record` with the trial's outcome
        (also when ``cancelled``), else the pair keeps skipping until a reset.
        """
        changes = self._expire_erp(t)
        if self._erp_until is not None:
            return Admission("wait", until=self._erp_until, changes=changes)
        pair = self._pairs.get((sync_type, agent_id))
        if pair is None or pair.state == "closed":
            return Admission("run", changes=changes)
        assert pair.until is not None  # set whenever a pair opens
        if pair.state == "open":
            if t < pair.until:
                return Admission("skip", BREAKER_OPEN_REASON, pair.until, changes=changes)
            pair.state = "half_open"
            changes += (BreakerChanged(sync_type, agent_id, "half_open", pair.until),)
        if pair.trial:  # one trial at a time decides; the pair's other jobs still skip
            return Admission("skip", BREAKER_OPEN_REASON, pair.until, changes=changes)
        pair.trial = self._tickets = self._tickets + 1
        return Admission("trial", ticket=pair.trial, changes=changes)

    def record(
        self, sync_type: str, agent_id: str | None, outcome: Outcome, t: float, *, ticket: int | None = None
    ) -> tuple[BreakerChanged, ...]:
        """Count a finished run's outcome; returns the transitions it caused.

        Args:
            ticket: the ``ticket`` of the run's admission if it was the pair's ``trial``: only
                the trial in flight decides the pair (a run admitted before the pair opened,
                or a trial forgotten by a reset, only counts).
        """
        key = (sync_type, agent_id)
        pair = self._pairs.get(key)
        deciding = ticket is not None and pair is not None and pair.trial == ticket
        if outcome == "success":
            if pair is None:
                return ()
            del self._pairs[key]  # success resets the count: a healthy pair is not stored
            return () if pair.state == "closed" else (BreakerChanged(sync_type, agent_id, "closed"),)
        if outcome not in FAILURES:
            if deciding and pair is not None:
                pair.trial = 0  # a skipped or cancelled trial decided nothing: the next job tries
            return ()
        changes = self._erp_failure(agent_id, t)
        if pair is None:
            pair = self._pairs[key] = _Pair()
        pair.failures += 1
        if deciding or (pair.state == "closed" and pair.failures >= self.policy.breaker_failures):
            pair.state, pair.opened_at, pair.trial = "open", t, 0
            pair.until = t + self.policy.breaker_cooldown
            changes += (BreakerChanged(sync_type, agent_id, "open", pair.until),)
        # A failure of a pair already open or half-open that is not its trial only counts.
        return changes

    def blocked_until(self, t: float) -> float | None:
        """When the ERP-wide breaker lets jobs start again, or None if it is closed at ``t``."""
        if self._erp_until is not None and t < self._erp_until:
            return self._erp_until
        return None

    erp_open_until = blocked_until

    def advance(self, t: float) -> tuple[BreakerChanged, ...]:
        """Apply the changes that time alone makes (cooldowns ending, the ERP wait ending).

        :meth:`admit` applies them too, lazily; call this on a wake-up armed at
        :meth:`next_change_at` to publish ``breaker.half_open`` / ``closed`` on time.
        """
        changes = list(self._expire_erp(t))
        for (sync_type, agent_id), pair in self._pairs.items():
            if pair.state == "open" and pair.until is not None and t >= pair.until:
                pair.state = "half_open"
                changes.append(BreakerChanged(sync_type, agent_id, "half_open", pair.until))
        return tuple(changes)

    def next_change_at(self) -> float | None:
        """The earliest time :meth:`advance` would change something, or None."""
        times = [p.until for p in self._pairs.values() if p.state == "open" and p.until is not None]
        if self._erp_until is not None:
            times.append(self._erp_until)
        return min(times, default=None)

    # -- admin -------------------------------------------------------------------------

    def reset(self, sync_type: str | None = None, agent_id: str | None = None) -> tuple[BreakerChanged, ...]:
        """Close breakers early: one type's, one agent's, one pair's, or (neither) all, ERP-wide too.

        A shared type's only lane is the service lane, so ``reset(sync_type)`` closes it.
        """
        changes: list[BreakerChanged] = []
        for key in [k for k in self._pairs if sync_type in (None, k[0]) and agent_id in (None, k[1])]:
            if self._pairs.pop(key).state != "closed":
                changes.append(BreakerChanged(key[0], key[1], "closed"))
        if sync_type is None and agent_id is None:
            changes += self.reset_erp()
        return tuple(changes)

    def reset_erp(self) -> tuple[BreakerChanged, ...]:
        """Close the ERP-wide breaker and forget the failures counted towards it."""
        was_open = self._erp_until is not None
        self._erp_until, self._erp_lanes = None, 0
        self._recent.clear()
        return (BreakerChanged(None, None, "closed"),) if was_open else ()

    # -- views -------------------------------------------------------------------------

    def state(self, sync_type: str, agent_id: str | None, t: float) -> BreakerState:
        """The pair's state at ``t`` (an open pair past its cooldown reads half-open)."""
        pair = self._pairs.get((sync_type, agent_id))
        return "closed" if pair is None else _state_at(pair, t)

    def pair_json(
        self, sync_type: str, agent_id: str | None, t: float, time: Callable[[float], object] = float
    ) -> dict[str, object]:
        """One pair as ``{syncType, agentId, state, failures, openedAt?, until?}`` (camelCase)."""
        pair = self._pairs.get((sync_type, agent_id)) or _Pair()
        view: dict[str, object] = {
            "syncType": sync_type,
            "agentId": agent_id,
            "state": _state_at(pair, t),
            "failures": pair.failures,
        }
        if pair.opened_at is not None and pair.until is not None:
            view["openedAt"], view["until"] = time(pair.opened_at), time(pair.until)
        return view

    def snapshot(self, t: float, time: Callable[[float], object] = float) -> dict[str, object]:
        """Every stored pair (failing, open or half-open) and the ERP-wide breaker, JSON-able.

        ``{"pairs": [pair...], "erp": {"state", "until", "lanes"}}``; ``lanes`` counts the
        distinct lanes failing within the window (while open: those that opened it).
        """
        pairs = [self.pair_json(s, a, t, time) for s, a in sorted(self._pairs, key=_sort_key)]
        until = self.blocked_until(t)
        erp = {
            "state": "closed" if until is None else "open",
            "until": None if until is None else time(until),
            "lanes": self._erp_lanes if until is not None else self._lanes_within(t),
        }
        return {"pairs": pairs, "erp": erp}

    def counts(self, t: float) -> dict[str, dict[BreakerState, int]]:
        """Per type, how many pairs are open and half-open at ``t`` (for metrics and health).

        Types with none are left out; closed pairs are not counted (they are not stored).
        """
        counts: dict[str, dict[BreakerState, int]] = {}
        for (sync_type, _), pair in self._pairs.items():
            state = _state_at(pair, t)
            if state != "closed":
                per_type = counts.setdefault(sync_type, {"open": 0, "half_open": 0})
                per_type[state] += 1
        return counts

    # -- the ERP-wide breaker ----------------------------------------------------------

    def _erp_failure(self, agent_id: str | None, t: float) -> tuple[BreakerChanged, ...]:
        changes = self._expire_erp(t)
        if self._erp_until is not None:
            return changes  # runs started before it opened: their failures must not prolong the wait
        self._recent[agent_id] = t
        lanes = self._lanes_within(t)
        if lanes < self.policy.erp_breaker_lanes:
            return changes
        self._erp_until, self._erp_lanes = t + self.policy.erp_wait, lanes
        # The failures that opened it are spent: after the wait, a new burst must build up again.
        self._recent.clear()
        return (*changes, BreakerChanged(None, None, "open", self._erp_until))

    def _lanes_within(self, t: float) -> int:
        """Distinct lanes with a failure in ``[t - erp_window, t]``; forgets older ones."""
        oldest = t - self.policy.erp_window
        for lane in [lane for lane, at in self._recent.items() if at < oldest]:
            del self._recent[lane]
        return len(self._recent)

    def _expire_erp(self, t: float) -> tuple[BreakerChanged, ...]:
        if self._erp_until is None or t < self._erp_until:
            return ()
        self._erp_until, self._erp_lanes = None, 0
        return (BreakerChanged(None, None, "closed"),)


def _state_at(pair: _Pair, t: float) -> BreakerState:
    if pair.state == "open" and pair.until is not None and t >= pair.until:
        return "half_open"
    return pair.state


def _sort_key(key: tuple[str, str | None]) -> tuple[str, str]:
    return key[0], key[1] or ""
