"""Fixtures of the console tests: a real ``serve`` process, tokens, and Debian's headless Chromium.

Chromium is driven by Playwright for Python with ``executable_path=/usr/bin/chromium``
(``scripts/test`` installs Debian's package when it is missing): Playwright's own browser
download needs the internet, which CI machines and deployments do not have.
"""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from archibald_actors.web.auth import make_token
from tests.serve_process import STOP_TIMEOUT, launch_serve, stop

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
#: Schedule time runs this many times faster in the served process: a 60-90 s prices run
#: takes 2-3 real seconds, long enough to be seen running.
SPEED = 30
#: Every first slot is an hour or more away (two real minutes at SPEED), so nothing runs
#: unless a test asks; ddt starts paused.
CONFIG = """
[sync.orders]
start_delay_minutes = 60
[sync.customers]
start_delay_minutes = 70
[sync.prices]
start_delay_minutes = 80
[sync.invoices]
start_delay_minutes = 90
[sync.ddt]
start_delay_minutes = 100
enabled = false
[sync.products]
start_delay_minutes = 110
"""
#: Per-agent invoices (agents are added through the API), prices reporting its progress,
#: products always failing (no retry: a reset breaker stays closed); one failure opens a
#: breaker, two failing lanes the ERP-wide one.
AGENTS_CONFIG = """
[breakers]
failures = 1
cooldown_seconds = 7200
erp_lanes = 2
[sync.orders]
start_delay_minutes = 60
[sync.customers]
start_delay_minutes = 70
[sync.prices]
start_delay_minutes = 80
handler = "tests.console.handlers:progress_sync"
[sync.invoices]
start_delay_minutes = 90
scope = "per_agent"
handler = "tests.console.handlers:agent_sync"
retries = 0
[sync.ddt]
start_delay_minutes = 100
enabled = false
[sync.products]
start_delay_minutes = 110
handler = "tests.console.handlers:failing_sync"
retries = 0
"""
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: Real milliseconds an expectation may wait (a loaded 2-core machine runs six suites).
WAIT_MS = 15_000

expect.set_options(timeout=WAIT_MS)


@dataclass
class Served:
    """One ``archibald-sync serve`` process and what a test needs to talk to it."""

    base: str
    secret: str
    db: Path
    config: Path
    out: Path
    proc: Any
    restarts: list[Any] = field(default_factory=list)

    def token(self, role: str = "admin", *, sub: str = "alice", ttl: float = 3600) -> str:
        """A token signed with the server's secret."""
        return make_token(self.secret, role=role, sub=sub, ttl=ttl)

    def expired_token(self) -> str:
        """An admin token whose ``exp`` passed a minute ago."""
        payload = {"sub": "alice", "role": "admin", "exp": int(time.time()) - 60}
        return jwt.encode(payload, self.secret, algorithm="HS256")

    def url(self, token: str | None = None) -> str:
        """The console's address, with ``?token=`` when given."""
        return f"{self.base}/" + (f"?token={token}" if token else "")

    def restart(self) -> None:
        """Stop the server with SIGTERM (its event streams end) and start it again on its port and store."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(STOP_TIMEOUT)
        stop(self.proc)
        port = self.base.rsplit(":", 1)[1]
        self.proc, _, base = _launch(self, ["--port", port])
        assert base == self.base


def _launch(served: Served, port: list[str]) -> tuple[Any, Any, str]:
    args = [*port, "--db", str(served.db), "--speed", str(SPEED), "--config", str(served.config)]
    return launch_serve(args, secret=served.secret, stderr_path=served.out / "serve.err")


def _serve(tmp_path: Path, text: str) -> Iterator[Served]:
    config = tmp_path / "sync.toml"
    config.write_text(text)
    served = Served("", secrets.token_hex(32), tmp_path / "sync.db", config, tmp_path, None)
    served.proc, _, served.base = _launch(served, ["--port", "0"])
    try:
        yield served
    finally:
        stop(served.proc)


@pytest.fixture
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """A fresh ``serve --speed`` process on a free port, with its own store; killed in teardown.

    It serves ``CONFIG``, or the config a module names in its ``SERVE_CONFIG``.
    """
    yield from _serve(tmp_path, getattr(request.module, "SERVE_CONFIG", CONFIG))


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, once per module.

    Not once per session: while it runs, its event loop counts as the thread's running
    loop, and the asyncio tests of other modules could not start theirs.
    """
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless, once per module."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class Pages:
    """Opens pages in fresh browser contexts and records what the browser complained about."""

    browser: Browser
    shots: Path
    contexts: list[BrowserContext] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    #: Set by a test that takes the server away: failed requests are then expected.
    server_goes_away: bool = False
    #: Console errors a test expects (substrings), like the 404 of a route it took away.
    expected: list[str] = field(default_factory=list)

    def open(self, url: str, *, viewport: dict[str, int] = DESKTOP, dark: bool = False) -> Page:
        """A new context (its own sessionStorage) with one page at ``url``."""
        context = self.browser.new_context(viewport=viewport, color_scheme="dark" if dark else "light")  # type: ignore[arg-type]
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on(
            "console",
            lambda message: (
                self.errors.append(f"console {message.type}: {message.text}")
                if message.type == "error" and "status of 401" not in message.text
                else None
            ),
        )
        page.on("request", lambda request: self.requests.append(request.url))
        page.goto(url)
        return page

    def shot(self, page: Page, name: str) -> Path:
        """A full-page screenshot under the test's output directory."""
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def pages(browser: Browser, served: Served, tmp_path: Path) -> Iterator[Pages]:
    """Fresh browser contexts for one test (closed before ``served`` stops); no script error allowed."""
    shots = tmp_path / "screenshots"
    shots.mkdir()
    opened = Pages(browser, shots)
    try:
        yield opened
        errors = list(opened.errors)
    finally:
        for context in opened.contexts:
            context.close()
    if opened.server_goes_away:
        errors = [e for e in errors if "Failed to load resource: net::ERR_" not in e]
    errors = [e for e in errors if not any(x in e for x in opened.expected)]
    assert not errors
