"""Who may call which route, and how a request is checked against its route's rule.

Handlers declare their rule with :func:`requires`; a route without a rule needs a valid
credential (the safe default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from aiohttp import web

from archibald_actors.web.auth import PRINCIPAL_KEY, QUERY_TOKEN_KEY, Authenticator, AuthError
from archibald_actors.web.error import ApiError, Handler

__all__ = ["Rule", "Who", "authorize", "requires", "rule_for"]

Who = Literal["anyone", "reader", "admin"]
H = TypeVar("H", bound=Handler)

#: Sent with every 401, as RFC 6750 asks.
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="archibald-sync"'}


@dataclass(frozen=True, slots=True)
class Rule:
    """Access rule of one route.

    Attributes:
        who: ``anyone``; ``reader`` (any valid credential); ``admin``.
        query_token: the credential may come as ``?token=`` (EventSource cannot send headers).
    """

    who: Who
    query_token: bool = False


_DEFAULT = Rule("reader")
_RULES: dict[object, Rule] = {}


def requires(who: Who, *, query_token: bool = False) -> Callable[[H], H]:
    """Decorator declaring who may call a handler."""

    def mark(handler: H) -> H:
        _RULES[handler] = Rule(who, query_token)
        return handler

    return mark


def rule_for(handler: object) -> Rule:
    """The rule declared for ``handler`` (``reader`` if none)."""
    return _RULES.get(handler, _DEFAULT)


async def authorize(request: web.Request, rule: Rule, authenticator: Authenticator) -> None:
    """Apply ``rule`` to ``request``; the caller's principal goes into ``request[PRINCIPAL_KEY]``.

    Raises:
        ApiError: 401 without a valid credential, 403 for a reader's write.
    """
    if rule.who == "anyone":
        return
    request[QUERY_TOKEN_KEY] = rule.query_token
    try:
        principal = await authenticator.authenticate(request)
    except AuthError as exc:
        raise ApiError(401, f"unauthorized: {exc}", CHALLENGE) from None
    request[PRINCIPAL_KEY] = principal  # set before the check, so a host can log who was refused
    if rule.who == "admin" and not principal.is_admin:
        raise ApiError(403, f"forbidden: role {principal.role!r} may not do this; admin only")
