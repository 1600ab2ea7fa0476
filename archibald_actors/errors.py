"""Exceptions of the public API; each also subclasses the builtin that fits."""

from __future__ import annotations

__all__ = [
    "BlockingCallError",
    "InvalidValueError",
    "NeedsLogin",
    "ServiceStateError",
    "ServiceUnavailableError",
    "StoreError",
    "SyncCancelledError",
    "UnknownAgentError",
    "UnknownSyncTypeError",
]


class InvalidValueError(ValueError):
    """A value is of the wrong type or out of range; ``field`` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


class UnknownSyncTypeError(LookupError):
    """A sync type that is not in the schedule."""

    def __init__(self, sync_type: object, known: tuple[str, ...] = ()) -> None:
        expected = f"; expected one of {', '.join(known)}" if known else ""
        super().__init__(f"syncType {sync_type!r} is unknown{expected}")
        self.field = "syncType"
        self.sync_type = sync_type

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownAgentError(LookupError):
    """An agent id that no agent has (a 404 over HTTP)."""

    def __init__(self, agent_id: str) -> None:
        super().__init__(f"agentId {agent_id!r} is unknown")
        self.field = "agentId"
        self.agent_id = agent_id

    def __str__(self) -> str:
        return str(self.args[0])


class ServiceStateError(RuntimeError):
    """The service was used in the wrong state (started twice, used after stop)."""


class BlockingCallError(RuntimeError):
    """A blocking call was made on the thread of a running asyncio event loop."""


class ServiceUnavailableError(RuntimeError):
    """An actor did not answer in time, or is down for good."""


class StoreError(RuntimeError):
    """The durable store could not be read or written."""


class SyncCancelledError(Exception):
    """Raised by ``ctx.sleep()`` once the running sync was asked to stop."""


class NeedsLogin(Exception):  # noqa: N818 - the contract's name: a state, not an error
    """Raised by a handler whose ERP session cannot log in without a person (no cached password).

    The run is recorded as ``skipped`` with the message as its ``reason``: not a failure,
    so it neither counts toward ``consecutiveFailures`` nor is retried.
    """
