"""The aiohttp web layer: the HTTP API (schedule, status, runs, history, events), embeddable or standalone.

``setup(app, service)`` mounts the API into a host application; ``create_app(service)``
builds a standalone one. Handlers reach the actors only through the non-blocking
``Bridge``; authentication is pluggable (``Authenticator``), JWT by default.
"""

from archibald_actors.web.access import Rule, requires
from archibald_actors.web.app import DEFAULT_PREFIX, create_app, freeze_heap, setup, stop_service
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
from archibald_actors.web.bridge import Bridge
from archibald_actors.web.context import API_KEY, SyncApi
from archibald_actors.web.error import ApiError
from archibald_actors.web.events import EventHub
from archibald_actors.web.metrics import SyncMetrics
from archibald_actors.web.openapi import build_openapi

__all__ = [
    "API_KEY",
    "DEFAULT_PREFIX",
    "PRINCIPAL_KEY",
    "QUERY_TOKEN_KEY",
    "SECRET_ENV",
    "ApiError",
    "AuthError",
    "Authenticator",
    "Bridge",
    "EventHub",
    "JWTAuthenticator",
    "MissingSecretError",
    "Principal",
    "Rule",
    "SyncApi",
    "SyncMetrics",
    "build_openapi",
    "create_app",
    "freeze_heap",
    "make_token",
    "requires",
    "secret_from_env",
    "setup",
    "stop_service",
]
