"""Agents: the sales agents whose per-agent syncs run on their own ERP sessions.

An agent is durable data (every store keeps them); its id names the lane its jobs run
on and the rows it leaves in the ledger. The id rule lives here, once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from archibald_actors.errors import InvalidValueError

__all__ = ["AGENT_ID_PATTERN", "Agent", "check_agent_id"]

#: What an agent id may be: it appears in URLs, lanes and ledger rows, so no spaces or slashes.
AGENT_ID_PATTERN = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def check_agent_id(value: object) -> str:
    """``value`` if it is a valid agent id.

    Raises:
        InvalidValueError: it is not a string of 1 to 64 of ``A-Z a-z 0-9 . _ @ -``
            (the error's field is ``agentId``).
    """
    if not isinstance(value, str) or AGENT_ID_PATTERN.fullmatch(value) is None:
        raise InvalidValueError(
            "agentId", f"must be 1 to 64 characters of letters, digits and . _ @ -, got {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Agent:
    """One agent as stored: its id, an optional display name, and whether its jobs run.

    Raises:
        InvalidValueError: on construction, for a bad ``agent_id``, a ``name`` that is not
            a string or None, or an ``enabled`` that is not a bool.
    """

    agent_id: str
    name: str | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        check_agent_id(self.agent_id)
        if self.name is not None and not isinstance(self.name, str):
            raise InvalidValueError("name", f"must be a string or null, got {self.name!r}")
        if not isinstance(self.enabled, bool):
            raise InvalidValueError("enabled", f"must be a boolean, got {self.enabled!r}")

    def to_json(self) -> dict[str, object]:
        """``{"agentId", "name", "enabled"}``."""
        return {"agentId": self.agent_id, "name": self.name, "enabled": self.enabled}
