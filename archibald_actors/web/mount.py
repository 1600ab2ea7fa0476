"""Putting the API's routes on the host's router, under its prefix.

The routes go straight onto the host's router, not into a sub-application: aiohttp
resolves a sub-application with a second router and wraps each of its requests in extra
middleware layers, which cost about 13 µs of the ~130 µs a ``GET /schedule`` takes
(``bench/api_throughput.py``). Each route's handler is wrapped once, at mount time, with
what a middleware would do per request: hand it its ``SyncApi``, apply its access rule,
and answer every failure as JSON. Paths under the prefix that match no route answer a
JSON 404, and known paths a JSON 405 for other methods, as a sub-application would.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import hdrs, web

from archibald_actors.web.access import authorize, rule_for
from archibald_actors.web.context import API_KEY, SyncApi
from archibald_actors.web.error import ApiError, Handler, error_response

__all__ = ["check_prefix", "mount"]


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is a path like ``/api/sync`` (a leading slash, none at the end).

    Raises:
        ValueError: the prefix is empty, relative, or ends with a slash.
    """
    if not prefix.startswith("/") or prefix.endswith("/") or "{" in prefix:
        raise ValueError(f"prefix must look like '/api/sync' (no trailing slash), got {prefix!r}")
    return prefix


def mount(app: web.Application, api: SyncApi, routes: Iterable[web.AbstractRouteDef]) -> None:
    """Add ``routes`` (paths relative to ``api.prefix``) to ``app``'s router, for ``api``."""
    by_path: dict[str, list[web.RouteDef]] = {}
    for route in routes:
        if not isinstance(route, web.RouteDef):
            raise TypeError(f"only handler routes can be mounted, got {route!r}")
        by_path.setdefault(route.path, []).append(route)
    for path, defs in by_path.items():
        resource = app.router.add_resource(api.prefix + path)
        allowed: list[str] = []
        for route in defs:
            handler = endpoint(route.handler, api)
            resource.add_route(route.method, handler)
            allowed.append(route.method)
            if route.method == hdrs.METH_GET and route.kwargs.get("allow_head", True):
                resource.add_route(hdrs.METH_HEAD, handler)
                allowed.append(hdrs.METH_HEAD)
        resource.add_route(hdrs.METH_ANY, _method_not_allowed(allowed))
    app.router.add_route(hdrs.METH_ANY, api.prefix + "{rest:(/.*)?}", _not_found)


def endpoint(handler: Handler, api: SyncApi) -> Handler:
    """``handler`` with its API at hand, its access rule applied and every failure answered as JSON."""
    rule = rule_for(handler)

    async def handle(request: web.Request) -> web.StreamResponse:
        request[API_KEY] = api
        try:
            await authorize(request, rule, api.authenticator)
            return await handler(request)
        except Exception as exc:
            return error_response(request, exc)

    handle.__doc__ = handler.__doc__
    return handle


def _method_not_allowed(allowed: list[str]) -> Handler:
    async def method_not_allowed(request: web.Request) -> web.StreamResponse:
        message = f"method not allowed: {request.method}; allowed: {', '.join(allowed)}"
        return ApiError(405, message, {"Allow": ",".join(allowed)}).response()

    return method_not_allowed


async def _not_found(request: web.Request) -> web.StreamResponse:
    return ApiError(404, f"not found: {request.path}").response()
