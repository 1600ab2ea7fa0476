"""Who may call which route, and the middleware that enforces it with an ``Authenticator``.

Handlers declare their rule with :func:`requires`; a route without a rule needs a valid
credential (the safe default).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware

from archibald_actors.web.auth import PRINCIPAL_KEY, QUERY_TOKEN_KEY, Authenticator, AuthError
from archibald_actors.web.error import ApiError, Handler, error_response

__all__ = ["Rule", "Who", "api_middleware", "authorize", "requires", "rule_for"]

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


async def authorize(request: web.Request, authenticator: Authenticator) -> None:
    """Apply the matched route's rule to ``request``.

    Raises:
        ApiError: 401 without a valid credential, 403 for a reader's write.
    """
    match_info = request.match_info
    if match_info.http_exception is not None:
        return  # 404 / 405: nothing to protect
    rule = rule_for(match_info.handler)
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


def api_middleware(authenticator: Authenticator) -> Middleware:
    """The API's middleware: each route's rule (:func:`authorize`), and every failure answered as JSON.

    One layer for both, since every request of the API passes through it.
    """

    @web.middleware
    async def api(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            await authorize(request, authenticator)
            return await handler(request)
        except Exception as exc:
            return error_response(request, exc)

    return api
