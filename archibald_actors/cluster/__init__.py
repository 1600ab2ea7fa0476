"""Several replicas on one PostgreSQL schema: who leads, and how changes reach every replica.

- :class:`Leadership`: a thread competing for the schema's advisory lock; the holder leads.
- :class:`ChangeListener`: hears the changes replicas announce with NOTIFY (``PostgresStore.notify``).
"""

from archibald_actors.cluster.leadership import Leadership, Role
from archibald_actors.cluster.notifier import RESYNC, ChangeListener

__all__ = ["RESYNC", "ChangeListener", "Leadership", "Role"]
