"""The aiohttp web layer: the HTTP API of DESIGN section 9, embeddable or standalone.

``setup(app, service)`` mounts the API into a host application; ``create_app(service)``
builds a standalone one. Handlers reach the actors only through the non-blocking
``Bridge``; authentication is pluggable (``Authenticator``), JWT by default.
"""

from archibald_actors.web.access import Rule, api_middleware, requires
from archibald_actors.web.app import DEFAULT_PREFIX, METRICS_KEY, create_app, freeze_heap, setup, stop_service
from archibald_actors.web.auth import (
    PRINCIPAL_KEY,
    QUERY_TOKEN_KEY,
    SECRET_ENV,
    Authenticator,
    AuthError,
    JWTAuthenticator,
    MissingSecretError,
    Principal,
    make_token,
    secret_from_env,
)
from archibald_actors.web.bridge import BRIDGE_KEY, SERVICE_KEY, Bridge
from archibald_actors.web.error import ApiError
from archibald_actors.web.events import HUB_KEY, EventHub
from archibald_actors.web.metrics import SyncMetrics
from archibald_actors.web.openapi import OPENAPI_KEY, build_openapi

__all__ = [
    "BRIDGE_KEY",
    "DEFAULT_PREFIX",
    "HUB_KEY",
    "METRICS_KEY",
    "OPENAPI_KEY",
    "PRINCIPAL_KEY",
    "QUERY_TOKEN_KEY",
    "SECRET_ENV",
    "SERVICE_KEY",
    "ApiError",
    "AuthError",
    "Authenticator",
    "Bridge",
    "EventHub",
    "JWTAuthenticator",
    "MissingSecretError",
    "Principal",
    "Rule",
    "SyncMetrics",
    "api_middleware",
    "build_openapi",
    "create_app",
    "freeze_heap",
    "make_token",
    "requires",
    "secret_from_env",
    "setup",
    "stop_service",
]
