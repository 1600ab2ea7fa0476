"""API errors, and how every failure is answered: as JSON, never as an HTML page."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

__all__ = ["ApiError", "Handler", "error_response", "json_error"]

log = logging.getLogger("archibald_actors.web")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """A failure with an HTTP status and a message for the client.

    Args:
        status: the HTTP status code.
        message: what went wrong; for a bad input it names the field.
        headers: extra response headers (``WWW-Authenticate`` on a 401).
    """

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def response(self) -> web.Response:
        """The JSON response ``{"success": false, "error": message}``."""
        return json_error(self.status, self.message, self.headers)


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A response ``{"success": false, "error": message}`` with ``status``."""
    return web.json_response({"success": False, "error": message}, status=status, headers=headers)


def error_response(request: web.Request, exc: Exception) -> web.Response:
    """The JSON answer to ``exc`` raised while handling ``request``.

    Raises:
        web.HTTPException: ``exc`` itself if it is a redirect or another non-error status.
    """
    if isinstance(exc, ApiError):
        return exc.response()
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc  # redirects and the like pass through unchanged
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")}
        return json_error(exc.status, exc.reason.lower() if exc.reason else "error", headers)
    if isinstance(exc, ConnectionError):
        # The client went away mid-request (it gave up, or a shutdown closed its
        # connection): nobody will read this answer, and nothing of ours went wrong.
        log.info("%s %s: the client went away: %s", request.method, request.path, exc)
        return json_error(400, "the connection was lost before the request was read")
    log.error("unexpected error in %s %s", request.method, request.path, exc_info=exc)
    return json_error(500, "internal error")
