"""Mounting the API: into a host aiohttp application (``setup``) or as a standalone app (``create_app``).

The API's routes go on the host's router under ``prefix``, each with its access rule and
JSON errors built in (see :mod:`.mount`), so the host's own routes and middlewares keep
working as they were. ``/healthz`` and ``/metrics`` go on the host's root. The service's
actors start and stop with the app through ``cleanup_ctx``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from archibald_actors.errors import ServiceStateError
from archibald_actors.service import SyncService
from archibald_actors.web.agent_routes import agent_routes
from archibald_actors.web.auth import Authenticator, JWTAuthenticator
from archibald_actors.web.bridge import DEFAULT_TIMEOUT, Bridge
from archibald_actors.web.context import SyncApi
from archibald_actors.web.events import EventHub
from archibald_actors.web.health import HEALTH_TIMEOUT, health_handler
from archibald_actors.web.metrics import SyncMetrics, metrics_handler
from archibald_actors.web.mount import check_prefix, mount
from archibald_actors.web.openapi import build_openapi
from archibald_actors.web.planning_routes import planning_routes
from archibald_actors.web.routes import routes
from archibald_actors.web.static import mount_console

__all__ = [
    "DEFAULT_PREFIX",
    "create_app",
    "freeze_heap",
    "setup",
    "start_service",
    "stop_service",
]

log = logging.getLogger("archibald_actors.web")

DEFAULT_PREFIX = "/api/sync"
#: Real seconds ``service.stop`` may take on app cleanup.
STOP_TIMEOUT = 10.0
#: Services an app starts and stops (``manage_service=True``): a service starts once, so a
#: second such ``setup()`` would only fail when its app starts. Weak: mounting is no ownership.
_MANAGED: weakref.WeakSet[SyncService] = weakref.WeakSet()


async def off_loop(work: Callable[[], None], name: str) -> None:
    """Run blocking ``work`` on a thread of its own and await it without blocking the loop.

    Not the default executor: it is shared with the host and can be starved. The service
    reads its store when it starts and waits for its actors when it stops; neither may
    happen on the loop, and coroutine handlers need the loop free while they are cancelled.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def settle(error: BaseException | None) -> None:
        if done.done():
            return
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)

    def run() -> None:
        error: BaseException | None = None
        try:
            work()
        except BaseException as exc:  # handed to the awaiting coroutine
            error = exc
        loop.call_soon_threadsafe(settle, error)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    await done
    thread.join(1.0)  # it has nothing left to do but return


def freeze_heap() -> int:
    """Collect garbage once, then hide every object alive from the collector; return how many.

    Call it once the server is up (``archibald-sync serve`` does). A full collection
    otherwise walks every object of the process (aiohttp, pykka, the store's driver...),
    and on the loop's thread that held it for 17 to 21 ms every few thousand requests
    (``bench/loop_stall.py``). What exists after start-up lives as long as the process, so
    walking it finds nothing to free. This is ``gc.freeze()``, as CPython's documentation
    suggests for servers; a host embedding the API decides for its own process.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def start_service(service: SyncService) -> None:
    """``service.start()`` off the loop; coroutine handlers will run on this loop."""
    loop = asyncio.get_running_loop()
    await off_loop(lambda: service.start(loop=loop), "archibald-web-start")


async def stop_service(service: SyncService, timeout: float = STOP_TIMEOUT, *, drain: bool = False) -> None:
    """``service.stop(timeout, drain=drain)`` off the loop."""
    await off_loop(lambda: service.stop(timeout, drain=drain), "archibald-web-stop")


def setup(
    app: web.Application,
    service: SyncService,
    *,
    prefix: str = DEFAULT_PREFIX,
    secret: str | bytes | None = None,
    authenticator: Authenticator | None = None,
    manage_service: bool = True,
    healthz_path: str | None = "/healthz",
    metrics_path: str | None = "/metrics",
    timeout: float = DEFAULT_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
    drain: bool = False,
    console: bool = False,
) -> SyncApi:
    """Mount the sync API of ``service`` into the host ``app``; return what was mounted.

    Args:
        app: the host application (not yet frozen); its routes and middlewares are untouched.
        service: the service to expose.
        prefix: where the API is mounted, like ``/api/sync``.
        secret: the JWT secret (at least 32 bytes); by default ``ARCHIBALD_JWT_SECRET``.
        authenticator: how callers are authenticated, instead of bearer JWTs signed with
            ``secret``.
        manage_service: start the service when the app starts and stop it on cleanup;
            False if the host does that itself. A service is managed by one ``setup()`` only.
        healthz_path: where ``/healthz`` goes on the host's root (None: not mounted).
        metrics_path: where ``/metrics`` goes on the host's root (None: not mounted).
        timeout: real seconds a request waits for the actors before a 504.
        stop_timeout: real seconds ``service.stop`` may take on cleanup.
        drain: on cleanup let a running sync finish (up to ``stop_timeout``) instead of
            asking it to stop at its next safe point.
        console: also serve the browser console at ``{prefix}/console/``.

    Raises:
        MissingSecretError: no authenticator given, and no secret (``secret`` or
            ``ARCHIBALD_JWT_SECRET``) or a short one.
        ValueError: a prefix that is not a path like ``/api/sync``; both ``secret`` and
            ``authenticator`` given.
        ServiceStateError: ``service`` is already managed by another ``setup()``.
    """
    check_prefix(prefix)
    if manage_service and service in _MANAGED:
        raise ServiceStateError(
            "this service is already mounted by setup() with manage_service=True, which starts and "
            "stops it with its app; a service starts once: mount it with manage_service=True once, "
            "and pass manage_service=False to the other setup() calls"
        )
    if authenticator is None:
        authenticator = JWTAuthenticator(secret)
    elif secret is not None:
        raise ValueError("pass secret= or authenticator=, not both: the authenticator checks tokens itself")
    api = SyncApi(
        service=service,
        prefix=prefix,
        authenticator=authenticator,
        bridge=Bridge(timeout),
        hub=EventHub(),
        metrics=SyncMetrics(service.sync_types),
        openapi=build_openapi(
            prefix, healthz=healthz_path, metrics=metrics_path, sync_types=service.sync_types
        ),
    )
    hub, metrics = api.hub, api.metrics
    metrics.count_abandoned_threads(lambda: service.abandoned_threads)
    if console:  # before the API's routes: their catch-all answers any other path under the prefix
        mount_console(app, f"{prefix}/console/", prefix, service)
    # The agents' paths first: ``/agents/run`` names an agent, not a type to run.
    mount(app, api, [*agent_routes, *routes, *planning_routes])

    async def end_streams(_: web.Application) -> None:
        # on_shutdown runs before the server waits for handlers: open streams end now.
        hub.close()

    async def lifecycle(_: web.Application) -> AsyncIterator[None]:
        hub.attach(service.events)
        metrics.attach(service.events)
        try:
            if manage_service:
                await start_service(service)
        except BaseException:
            hub.close()
            metrics.detach()
            raise
        try:
            yield
        finally:
            hub.close()
            metrics.detach()
            if manage_service:
                await stop_service(service, stop_timeout, drain=drain)

    app.on_shutdown.append(end_streams)
    app.cleanup_ctx.append(lifecycle)
    if healthz_path:
        app.router.add_get(healthz_path, health_handler(service, api.bridge))
    if metrics_path:
        bridge = api.bridge

        async def read_status() -> dict[str, Any]:
            # Shares a status read in flight; bounded like the health probe.
            return await bridge.read("status", service.status_future, "status", timeout=HEALTH_TIMEOUT)

        app.router.add_get(metrics_path, metrics_handler(metrics, read_status))
    if manage_service:
        _MANAGED.add(service)  # last: a setup() that failed above leaves the service free
    return api


def create_app(
    service: SyncService,
    *,
    secret: str | bytes | None = None,
    authenticator: Authenticator | None = None,
    prefix: str = DEFAULT_PREFIX,
    timeout: float = DEFAULT_TIMEOUT,
    stop_timeout: float = STOP_TIMEOUT,
    drain: bool = False,
    console: bool = False,
) -> web.Application:
    """A standalone application serving the API of ``service``; it starts and stops the service.

    Args:
        service: the service to expose (not started yet).
        secret: the JWT secret (at least 32 bytes); by default ``ARCHIBALD_JWT_SECRET``.
        authenticator: replaces JWT authentication altogether.
        prefix: where the API is mounted.
        timeout: real seconds a request waits for the actors before a 504.
        stop_timeout: real seconds ``service.stop`` may take when the app shuts down.
        drain: let a running sync finish on shutdown (see :func:`setup`).
        console: serve the browser console at ``/`` (``archibald-sync serve`` does).

    Raises:
        MissingSecretError: no secret anywhere, or a short one; the message says how to set it.
    """
    app = web.Application()
    setup(
        app,
        service,
        prefix=prefix,
        secret=secret,
        authenticator=authenticator,
        timeout=timeout,
        stop_timeout=stop_timeout,
        drain=drain,
    )
    if console:
        mount_console(app, "/", prefix, service)
    return app
