"""Who may call which route, and how a request is checked against its route's rule.

Handlers declare their rule with :func:`requires`; a route without a rule needs a valid
credential (the safe default). A token of role ``agent`` acts only on its own agent (the
one whose id is its ``userId``/``sub``): :func:`only_own_agent`, :func:`check_run_allowed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from aiohttp import web

from archibald_actors.web.auth import (
    AGENT,
    PRINCIPAL_KEY,
    QUERY_TOKEN_KEY,
    Authenticator,
    AuthError,
    Principal,
)
from archibald_actors.web.error import ApiError, Handler

__all__ = ["Rule", "Who", "authorize", "check_run_allowed", "only_own_agent", "requires", "rule_for"]

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


def only_own_agent(principal: Principal, agent_id: str) -> None:
    """Refuse a token of role ``agent`` that asks about another agent than its own.

    Raises:
        ApiError: 403.
    """
    if principal.role == AGENT and principal.user_id != agent_id:
        own = principal.user_id
        raise ApiError(403, f"forbidden: an agent's token may read only its own agent ({own!r})")


def check_run_allowed(principal: Principal, agent_id: str | None, per_agent: bool) -> None:
    """May ``principal`` ask for a manual run of one agent's job (or every agent's, if None)?

    An admin may run any agent's job or all of them; an agent only its own; any other
    token only a shared type's run.

    Raises:
        ApiError: 403 otherwise.
    """
    if principal.is_admin:
        return
    if agent_id is None and not per_agent:
        return  # a shared type: any valid token may run it, as always
    if principal.role == AGENT and agent_id == principal.user_id:
        return
    if principal.role == AGENT:
        raise ApiError(
            403, f'forbidden: an agent may run only its own jobs; send {{"agentId": "{principal.user_id}"}}'
        )
    role = principal.role
    raise ApiError(403, f"forbidden: role {role!r} may not run an agent's jobs; admin or that agent only")
