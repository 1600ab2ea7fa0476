"""Who is calling: JWT bearer tokens compatible with the existing backend, or a host's own scheme.

The logic lives here; :mod:`archibald_actors.web.access` applies it to routes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import jwt
from aiohttp import web

__all__ = [
    "ADMIN",
    "AGENT",
    "ALGORITHMS",
    "MIN_SECRET_BYTES",
    "SECRET_ENV",
    "AuthError",
    "Authenticator",
    "JWTAuthenticator",
    "PRINCIPAL_KEY",
    "QUERY_TOKEN_KEY",
    "MissingSecretError",
    "Principal",
    "bearer_token",
    "make_token",
    "secret_from_env",
]

#: The environment variable the signing secret is read from.
SECRET_ENV = "ARCHIBALD_JWT_SECRET"
#: Shortest secret accepted (RFC 7518 section 3.2 for HS256).
MIN_SECRET_BYTES = 32
#: HMAC algorithms a ``JWTAuthenticator`` can be pinned to, with the shortest key each accepts
#: (RFC 7518 section 3.2: at least the hash's size).
ALGORITHMS = {"HS256": 32, "HS384": 48, "HS512": 64}
#: The role that may change things.
ADMIN = "admin"
#: The role of a sales agent's token: it sees and runs only its own agent (its ``userId``/``sub``).
AGENT = "agent"
#: Default token lifetime, as the existing backend issues them.
DEFAULT_TTL = 8 * 3600

_HOW_TO_SET = (
    f"set {SECRET_ENV} to a random string of at least {MIN_SECRET_BYTES} bytes, for example "
    f"export {SECRET_ENV}=\"$(python -c 'import secrets; print(secrets.token_urlsafe(48))')\""
)


#: True when the matched route accepts the token as ``?token=`` (EventSource cannot send headers).
QUERY_TOKEN_KEY = web.RequestKey[bool]("archibald_query_token")


class MissingSecretError(ValueError):
    """The JWT secret is missing or shorter than ``MIN_SECRET_BYTES``; the message says how to set it."""


class AuthError(Exception):
    """The request is not authenticated (answered 401 with ``WWW-Authenticate: Bearer``)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    Attributes:
        user_id: ``userId`` or ``sub`` of the token.
        username: the display name, if the token has one.
        role: ``"admin"`` may write; any other role reads.
        expires_at: when the credential stops being valid (Unix seconds), if it says;
            an event stream ends then.
    """

    user_id: str
    username: str | None
    role: str
    expires_at: float | None = None

    @property
    def is_admin(self) -> bool:
        """True if this caller may change the schedule."""
        return self.role == ADMIN


#: Who made the request, once authenticated.
PRINCIPAL_KEY = web.RequestKey[Principal]("archibald_principal")


@runtime_checkable
class Authenticator(Protocol):
    """Turns a request into a ``Principal``; a host app can plug in its own."""

    async def authenticate(self, request: web.Request) -> Principal:
        """Return who made ``request``.

        ``request[QUERY_TOKEN_KEY]`` is True on routes that accept the credential in the
        query string (the event stream).

        Raises:
            AuthError: no valid credential.
        """
        ...


def _check_algorithm(algorithm: str) -> int:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    return ALGORITHMS[algorithm]


def _check_secret(secret: str | bytes | None, algorithm: str = "HS256") -> bytes:
    if secret is None or secret in ("", b""):
        raise MissingSecretError(
            f"no JWT secret configured: {_HOW_TO_SET} (or pass secret=... to setup(), create_app() "
            "or JWTAuthenticator())"
        )
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    needed = max(MIN_SECRET_BYTES, _check_algorithm(algorithm))
    if len(raw) < needed:
        raise MissingSecretError(
            f"the JWT secret has {len(raw)} bytes, too short ({algorithm} needs {needed}): {_HOW_TO_SET}"
        )
    return raw


def secret_from_env(environ: Mapping[str, str] | None = None) -> bytes:
    """The signing secret from ``ARCHIBALD_JWT_SECRET``.

    Raises:
        MissingSecretError: unset or shorter than 32 bytes; the message says how to set it.
    """
    env = os.environ if environ is None else environ
    return _check_secret(env.get(SECRET_ENV))


def bearer_token(request: web.Request) -> str:
    """The token of ``Authorization: Bearer``, or of ``?token=`` where the route allows it.

    Raises:
        AuthError: no token, or a malformed ``Authorization`` header.
    """
    headers = request.headers.getall("Authorization", [])
    if len(headers) > 1:
        # A proxy may have checked another copy than the one we would read: refuse both.
        raise AuthError("more than one Authorization header")
    header = headers[0] if headers else None
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            raise AuthError("malformed Authorization header; expected 'Bearer <token>'")
        return token
    if request.get(QUERY_TOKEN_KEY, False):
        token = request.query.get("token", "")
        if token:
            return token
    raise AuthError("missing bearer token")


def _claim_str(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise AuthError(f"token claim {name} must be a string")
    return str(value)


class JWTAuthenticator:
    """Bearer JWTs signed with a shared secret; the algorithm is pinned (HS256 by default).

    Tokens must carry ``exp``; ``userId`` or ``sub`` names the user; ``role`` "admin" may write.

    Args:
        secret: at least 32 bytes; by default read from ``ARCHIBALD_JWT_SECRET``.
        algorithm: one of ``ALGORITHMS``; tokens signed any other way (``none``, RS256...) are rejected.
        leeway: seconds of clock skew tolerated on ``exp``.
        audience: the ``aud`` tokens must carry; if None, a token with an ``aud`` is rejected.

    Raises:
        MissingSecretError: no secret, or a short one.
        ValueError: an algorithm that is not an HMAC one.
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        *,
        algorithm: str = "HS256",
        leeway: float = 0,
        audience: str | None = None,
    ) -> None:
        _check_algorithm(algorithm)
        if secret is None:
            secret = secret_from_env()
        self._secret = _check_secret(secret, algorithm)
        self._algorithm = algorithm
        self._leeway = leeway
        self._audience = audience

    def decode(self, token: str) -> Principal:
        """Check ``token`` and return its principal.

        Raises:
            AuthError: malformed, badly signed, of another algorithm, expired, or without a user.
        """
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                options={"require": ["exp"]},
                leeway=self._leeway,
                audience=self._audience,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {exc}") from None
        user_id = _claim_str(claims, "userId") or _claim_str(claims, "sub")
        if not user_id:
            raise AuthError("token names no user (userId or sub)")
        role = claims.get("role")
        try:
            expires_at = float(claims["exp"])
        except (TypeError, ValueError, OverflowError):  # PyJWT takes any integer, even 10**400
            raise AuthError("token expiry (exp) is out of range") from None
        username = _claim_str(claims, "username")
        return Principal(user_id, username, role if isinstance(role, str) else "", expires_at)

    async def authenticate(self, request: web.Request) -> Principal:
        """Decode the request's bearer token (see :func:`bearer_token`)."""
        return self.decode(bearer_token(request))


def make_token(
    secret: str | bytes,
    *,
    role: str,
    sub: str,
    username: str | None = None,
    ttl: float = DEFAULT_TTL,
    algorithm: str = "HS256",
) -> str:
    """A signed token with ``sub``/``userId``, ``username``, ``role``, ``iat`` and ``exp``.

    Raises:
        MissingSecretError: the secret is shorter than 32 bytes.
        ValueError: ``ttl`` is not positive, or ``algorithm`` is not an HMAC one.
    """
    _check_algorithm(algorithm)
    raw = _check_secret(secret, algorithm)
    if not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    now = int(time.time())
    claims = {
        "sub": sub,
        "userId": sub,
        "username": username if username is not None else sub,
        "role": role,
        "iat": now,
        "exp": now + int(ttl),
    }
    return jwt.encode(claims, raw, algorithm=algorithm)
