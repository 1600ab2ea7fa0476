"""``ClusterLink``: connects a service's supervisor to the cluster's leadership and changes."""

from __future__ import annotations

from typing import Any

from archibald_actors.actors.base import Address
from archibald_actors.cluster.leadership import Leadership
from archibald_actors.cluster.notifier import ChangeListener
from archibald_actors.messages import ClusterChanged, LeadershipChanged
from archibald_actors.store.base import ClusterStore

__all__ = ["ClusterLink"]


class ClusterLink:
    """Turns leadership transitions and announced changes into supervisor messages."""

    def __init__(self, store: ClusterStore, supervisor: Address) -> None:
        def changed(kind: str, payload: dict[str, Any]) -> None:
            supervisor.tell(ClusterChanged(kind))

        self.leadership = Leadership(
            store.dsn,
            store.schema,
            on_elected=lambda: supervisor.tell(LeadershipChanged(True)),
            on_deposed=lambda: supervisor.tell(LeadershipChanged(False)),
        )
        self.listener = ChangeListener(store.dsn, store.schema, on_change=changed)

    def start(self) -> None:
        """Listen for changes, then compete for leadership."""
        self.listener.start()
        self.leadership.start()

    def stop(self, timeout: float) -> None:
        """Step down (the lock is released last) and stop listening."""
        self.leadership.stop(timeout)
        self.listener.stop(timeout)
