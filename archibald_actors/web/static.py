"""The browser console: its files served from the package with a strict CSP, caching and gzip.

The files live in ``archibald_actors/web/console/`` and ship in the wheel; there is no
build step. ``index.html`` is filled in once, at mount time, with where the API and the
assets are, and served with ``no-cache`` and an ETag (a browser asks again each time and
gets a 304 while nothing changed). Every other file is served under
``assets/<version>/``, where the version is a hash of all the files: a new release gets
new URLs, so the assets may be cached for a year, and the JavaScript modules still import
each other by plain relative names (no file renamed, no build step).

Bodies are read and gzipped once per mount, not per request. The console talks only to
its own origin, so the Content-Security-Policy allows nothing else and no inline code.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import hdrs, web

from archibald_actors.service import SyncService
from archibald_actors.status import iso_at

__all__ = ["CSP", "ConsoleFiles", "console_files", "console_routes", "mount_console"]

#: The package directory that holds the console's files.
CONSOLE_PACKAGE = "archibald_actors.web"
CONSOLE_DIR = "console"
#: Content types of the files the console may hold; any other file is not served.
CONTENT_TYPES: Mapping[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: Only this origin, no inline script or style, no frames, no plugins, no <base> tricks.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
#: Headers every console answer carries. ``no-referrer``: the first load may carry ?token=.
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
INDEX_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=31536000, immutable"
#: Bodies shorter than this are not worth a gzip header.
_GZIP_MIN = 1024


@dataclass(frozen=True)
class _Body:
    """One file ready to serve: plain and gzipped bytes, type and ETag."""

    plain: bytes
    gzipped: bytes | None
    content_type: str
    etag: str


@dataclass(frozen=True)
class ConsoleFiles:
    """The console's files as read from the package.

    Attributes:
        files: file name to contents (index.html still a template).
        version: a short hash of every file, the assets' URL segment.
    """

    files: Mapping[str, bytes]
    version: str

    @classmethod
    def load(cls) -> ConsoleFiles:
        """Read the files from the installed package (a wheel or a source checkout)."""
        root = resources.files(CONSOLE_PACKAGE).joinpath(CONSOLE_DIR)
        files = {
            entry.name: entry.read_bytes()
            for entry in root.iterdir()
            if entry.is_file() and _suffix(entry.name) in CONTENT_TYPES
        }
        if "index.html" not in files:
            raise FileNotFoundError(f"the console's index.html is missing from {root}")
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name] + b"\0")
        return cls(files=files, version=digest.hexdigest()[:12])


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:] if dot >= 0 else ""


def _body(data: bytes, content_type: str) -> _Body:
    gzipped = gzip.compress(data, compresslevel=9, mtime=0) if len(data) >= _GZIP_MIN else None
    etag = '"' + hashlib.sha256(data).hexdigest()[:20] + '"'
    return _Body(data, gzipped, content_type, etag)


def _accepts_gzip(request: web.Request) -> bool:
    for part in request.headers.get(hdrs.ACCEPT_ENCODING, "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().replace(" ", "")
            return quality not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _answer(request: web.Request, body: _Body, cache: str) -> web.Response:
    gzipped = body.gzipped is not None and _accepts_gzip(request)
    # Each encoding is its own representation, with its own strong validator.
    etag = body.etag[:-1] + '-gz"' if gzipped else body.etag
    headers = {**SECURITY_HEADERS, hdrs.CACHE_CONTROL: cache, hdrs.ETAG: etag, hdrs.VARY: "Accept-Encoding"}
    if etag in request.headers.get(hdrs.IF_NONE_MATCH, ""):
        return web.Response(status=304, headers=headers)
    headers[hdrs.CONTENT_TYPE] = body.content_type
    if gzipped:
        headers[hdrs.CONTENT_ENCODING] = "gzip"
        return web.Response(body=body.gzipped, headers=headers)
    return web.Response(body=body.plain, headers=headers)


class _SpeedMeter:
    """How fast schedule time runs against real time, from two readings of the clock.

    The ``Clock`` protocol does not say its speed; a scaled clock is linear, so the ratio
    of schedule to real seconds since the console was mounted is its speed (0 for a
    ``ManualClock`` that has not moved).
    """

    def __init__(self, service: SyncService) -> None:
        self._clock = service.clock
        self._clock_at = self._clock.now()
        self._real_at = time.monotonic()

    def speed(self) -> float:
        real = time.monotonic() - self._real_at
        if real <= 0:
            return 1.0
        return round((self._clock.now() - self._clock_at) / real, 3)


@functools.cache
def console_files() -> ConsoleFiles:
    """The console's files, read from the package once per process."""
    return ConsoleFiles.load()


def console_routes(
    base: str, api_prefix: str, service: SyncService, files: ConsoleFiles | None = None
) -> list[web.RouteDef]:
    """The console's routes under ``base`` (ending with ``/``), talking to the API at ``api_prefix``.

    ``GET base`` is the page, ``GET base + "assets/<version>/<file>"`` its files, and
    ``GET base + "clock"`` the service's clock (now, speed and epoch as wall times), which
    the page needs to draw schedule time (``--speed``) and to preview a retune's slots.
    """
    if not base.startswith("/") or not base.endswith("/"):
        raise ValueError(f"the console's base path must start and end with '/', got {base!r}")
    files = files or console_files()
    assets = f"{base}assets/{files.version}/"
    page = (
        files.files["index.html"]
        .decode()
        .replace("{{assets}}", html.escape(assets))
        .replace("{{api}}", html.escape(api_prefix))
        .replace("{{clock}}", html.escape(base + "clock"))
    )
    index = _body(page.encode(), CONTENT_TYPES[".html"])
    bodies = {
        name: _body(data, CONTENT_TYPES[_suffix(name)])
        for name, data in files.files.items()
        if name != "index.html"
    }
    meter = _SpeedMeter(service)

    async def console_page(request: web.Request) -> web.Response:
        """The console's page (no-cache: it names the assets of this release)."""
        return _answer(request, index, INDEX_CACHE)

    async def console_asset(request: web.Request) -> web.Response:
        """One of the console's files; cached for a year under its release's URL."""
        body = bodies.get(request.match_info["name"])
        if body is None or request.match_info["version"] != files.version:
            raise web.HTTPNotFound(headers=SECURITY_HEADERS)
        return _answer(request, body, ASSET_CACHE)

    async def console_clock(request: web.Request) -> web.Response:
        """The service's clock: ``now``, ``speed`` and ``epoch`` (the slots' origin), as JSON."""
        clock = service.clock
        data: dict[str, Any] = {
            "now": iso_at(clock, clock.now()),
            "speed": meter.speed(),
            "epoch": iso_at(clock, service.epoch),
        }
        return web.json_response(data, headers={**SECURITY_HEADERS, hdrs.CACHE_CONTROL: "no-store"})

    async def add_slash(request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect(base, headers=SECURITY_HEADERS)

    table = [
        web.get(base, console_page),
        web.get(base + "assets/{version}/{name}", console_asset),
        web.get(base + "clock", console_clock),
    ]
    if base != "/":
        table.append(web.get(base.rstrip("/"), add_slash))
    return table


def mount_console(app: web.Application, base: str, api_prefix: str, service: SyncService) -> None:
    """Serve the console at ``base`` on ``app``'s router (see :func:`console_routes`)."""
    app.router.add_routes(console_routes(base, api_prefix, service))
