"""Several replicas on one PostgreSQL schema: who leads, and how changes reach every replica.

- :class:`Leadership`: a thread competing for the schema's advisory lock; the holder leads.
- :class:`ChangeListener` and :func:`notify`: changes announced with LISTEN/NOTIFY.
"""

from archibald_actors.cluster.leadership import Leadership, Role
from archibald_actors.cluster.notifier import RESYNC, ChangeListener, notify

__all__ = ["RESYNC", "ChangeListener", "Leadership", "Role", "notify"]
