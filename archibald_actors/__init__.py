"""archibald_actors: a staggered, serialized, supervised sync scheduler on pykka actors."""

from archibald_actors.actors.runner import SyncContext, SyncHandler
from archibald_actors.agent import Agent
from archibald_actors.breaker import DEFAULT_BREAKERS, BreakerPolicy
from archibald_actors.clock import Clock, ClockNotQuietError, ManualClock, ScaledClock, SystemClock
from archibald_actors.errors import (
    BlockingCallError,
    InvalidValueError,
    NeedsLogin,
    ServiceStateError,
    ServiceUnavailableError,
    StoreError,
    SyncCancelledError,
    UnknownAgentError,
    UnknownSyncTypeError,
)
from archibald_actors.exclusive import ExclusiveHold
from archibald_actors.retry import RetryPolicy
from archibald_actors.schedule import DEFAULT_SCHEDULE, SYNC_TYPES, ScheduleEntry
from archibald_actors.service import SyncService

__all__ = [
    "DEFAULT_BREAKERS",
    "DEFAULT_SCHEDULE",
    "SYNC_TYPES",
    "Agent",
    "BlockingCallError",
    "BreakerPolicy",
    "Clock",
    "ClockNotQuietError",
    "ExclusiveHold",
    "InvalidValueError",
    "ManualClock",
    "NeedsLogin",
    "RetryPolicy",
    "ScaledClock",
    "ScheduleEntry",
    "ServiceStateError",
    "ServiceUnavailableError",
    "StoreError",
    "SyncCancelledError",
    "SyncContext",
    "SyncHandler",
    "SyncService",
    "SystemClock",
    "UnknownAgentError",
    "UnknownSyncTypeError",
]
