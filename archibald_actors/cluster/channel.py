"""What replicas sharing a schema agree on without talking: the leader lock key, the change
channel, and the format of a change notification. Pure functions, no connection.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from archibald_actors.errors import InvalidValueError

__all__ = ["MAX_NOTIFY_BYTES", "channel_name", "decode_change", "encode_change", "lock_key"]

#: PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
MAX_NOTIFY_BYTES = 7999
#: The longest identifier PostgreSQL keeps (longer ones are truncated).
_MAX_IDENTIFIER_BYTES = 63


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def lock_key(schema: str) -> int:
    """The advisory lock (a signed 64-bit key) whose holder leads the replicas on ``schema``.

    Stable across processes, versions and platforms (a SHA-256 prefix, not ``hash()``), and
    distinct per schema, so clusters on different schemas of one database do not interfere.
    """
    return int.from_bytes(_digest(f"archibald_actors:leader:{schema}")[:8], "big", signed=True)


def channel_name(schema: str) -> str:
    """The LISTEN/NOTIFY channel of the replicas on ``schema``.

    ``archibald:<schema>`` when that fits in an identifier, else a digest of the schema.
    """
    name = f"archibald:{schema}"
    if len(name.encode()) <= _MAX_IDENTIFIER_BYTES:
        return name
    return f"archibald:{_digest(schema).hex()[:32]}"


def encode_change(kind: str, payload: Mapping[str, Any]) -> str:
    """The NOTIFY payload announcing a change: ``{"kind": kind, "payload": payload}`` as JSON.

    Raises:
        InvalidValueError: ``kind`` is empty, ``payload`` is not JSON-serializable, or the
            message is too long for NOTIFY.
    """
    if not isinstance(kind, str) or not kind:
        raise InvalidValueError("kind", f"must be a non-empty string, got {kind!r}")
    try:
        text = json.dumps({"kind": kind, "payload": dict(payload)}, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidValueError("payload", f"must be JSON-serializable: {exc}") from exc
    if len(text.encode()) > MAX_NOTIFY_BYTES:
        raise InvalidValueError(
            "payload", f"is too long for a notification ({len(text.encode())} > {MAX_NOTIFY_BYTES} bytes)"
        )
    return text


def decode_change(text: str) -> tuple[str, dict[str, Any]]:
    """``(kind, payload)`` from a payload made by :func:`encode_change`.

    Raises:
        ValueError: ``text`` is not such a payload.
    """
    message = json.loads(text)
    if not isinstance(message, dict):
        raise ValueError(f"a change must be a JSON object, got {type(message).__name__}")
    kind, payload = message.get("kind"), message.get("payload", {})
    if not isinstance(kind, str) or not kind or not isinstance(payload, dict):
        raise ValueError("a change must hold a non-empty string kind and an object payload")
    return kind, payload
