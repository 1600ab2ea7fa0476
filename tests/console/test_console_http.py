"""The console's files over real HTTP: where they are served, CSP, cache headers, gzip, ETags,
that they stay small and need no other origin, and that the wheel ships them."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from archibald_actors import ManualClock, SyncService
from archibald_actors.web import setup
from archibald_actors.web.static import CSP, console_files
from tests.console.conftest import SPEED, Served
from tests.web.conftest import PAUSED, SECRET

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "archibald_actors" / "web" / "console"


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the raw (still encoded) body of a GET."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def asset_paths(index: str) -> list[str]:
    """The paths index.html loads (script, stylesheet, icon)."""
    return re.findall(r'(?:src|href)="([^"]+)"', index)


def test_serve_answers_the_console_at_the_root_with_a_strict_csp_and_no_cache(served: Served) -> None:
    status, headers, body = fetch(served.base + "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Content-Security-Policy"] == CSP
    assert "default-src 'self'" in CSP and "unsafe-inline" not in CSP and "unsafe-eval" not in CSP
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"  # the first load may carry ?token=
    page = body.decode()
    assert 'data-api="/api/sync"' in page and 'data-clock="/clock"' in page
    # No inline script, no inline style, no handler attributes: the CSP would refuse them anyway.
    assert all('src="' in tag for tag in re.findall(r"<script[^>]*>", page))
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page)
    # Unchanged page: the browser's revalidation costs a 304 and no body, per encoding.
    status, _, body = fetch(served.base + "/", {"If-None-Match": headers["Etag"]})
    assert (status, body) == (304, b"")
    _, zipped, _ = fetch(served.base + "/", {"Accept-Encoding": "gzip"})
    assert zipped["Content-Encoding"] == "gzip" and zipped["Etag"] != headers["Etag"]
    assert fetch(served.base + "/", {"Accept-Encoding": "gzip", "If-None-Match": zipped["Etag"]})[0] == 304
    assert fetch(served.base + "/", {"If-None-Match": zipped["Etag"]})[0] == 200


def test_assets_are_versioned_cached_for_a_year_and_gzipped(served: Served) -> None:
    _, _, index = fetch(served.base + "/")
    version = console_files().version
    paths = asset_paths(index.decode())
    assert {p.rsplit("/", 1)[1] for p in paths} == {"app.js", "style.css", "icon.svg"}
    for path in paths:
        assert path.startswith(f"/assets/{version}/")
    # Every module app.js imports, directly or not, is served under the same version.
    modules = {"app.js"}
    for name in sorted(p.name for p in CONSOLE.glob("*.js")):
        modules |= set(re.findall(r'from "\./([a-z]+\.js)"', (CONSOLE / name).read_text()))
    assert modules == {p.name for p in CONSOLE.glob("*.js")}
    total = packed_total = plain_total = 0
    for name in sorted(modules | {"style.css", "icon.svg"}):
        url = f"{served.base}/assets/{version}/{name}"
        status, headers, plain = fetch(url)
        assert status == 200, name
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert headers["Content-Security-Policy"] == CSP
        assert headers["Vary"] == "Accept-Encoding"
        assert "Content-Encoding" not in headers
        assert (
            headers["Content-Type"].split(";")[0]
            == {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}[name.rsplit(".", 1)[1]]
        )
        total += len(plain)
        status, headers, packed = fetch(url, {"Accept-Encoding": "gzip, deflate"})
        if len(plain) >= 1024:
            assert headers["Content-Encoding"] == "gzip", name
            assert gzip.decompress(packed) == plain
            assert len(packed) < len(plain)
            packed_total += len(packed)
            plain_total += len(plain)
        status, headers, _ = fetch(url, {"Accept-Encoding": "gzip;q=0"})
        assert status == 200 and "Content-Encoding" not in headers
    _, _, page = fetch(served.base + "/")
    total += len(page)
    assert total < 150_000, f"the console weighs {total} bytes before gzip"
    assert packed_total < plain_total * 0.4


def test_unknown_versions_files_and_paths_are_not_served(served: Served) -> None:
    version = console_files().version
    assert fetch(f"{served.base}/assets/{version}/app.js")[0] == 200
    assert fetch(f"{served.base}/assets/000000000000/app.js")[0] == 404  # another release
    assert fetch(f"{served.base}/assets/{version}/static.py")[0] == 404
    assert fetch(f"{served.base}/assets/{version}/..%2fstatic.py")[0] == 404
    assert fetch(f"{served.base}/assets/{version}/index.html")[0] == 404  # only at the root


def test_the_clock_tells_the_service_time_speed_and_epoch(served: Served) -> None:
    status, headers, body = fetch(served.base + "/clock")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    clock = json.loads(body)
    assert set(clock) == {"now", "speed", "epoch"}
    assert clock["speed"] == pytest.approx(SPEED, rel=0.01)
    assert clock["epoch"] < clock["now"]  # ISO 8601 UTC strings sort as times


async def test_setup_with_console_serves_it_under_the_prefix(aiohttp_client: Any) -> None:
    app = web.Application()
    service = SyncService(schedule=PAUSED, clock=ManualClock())
    setup(app, service, prefix="/erp/sync", secret=SECRET, console=True)
    client = await aiohttp_client(app)
    try:
        response = await client.get("/erp/sync/console/")
        page = await response.text()
        assert response.status == 200
        assert response.headers["Content-Security-Policy"] == CSP
        assert 'data-api="/erp/sync"' in page and 'data-clock="/erp/sync/console/clock"' in page
        for path in asset_paths(page):
            assert path.startswith("/erp/sync/console/assets/")
            async with client.get(path) as asset:
                assert asset.status == 200, path
                # aiohttp's client asks for gzip by default and decodes it
                assert asset.headers.get("Content-Encoding") in ("gzip", None)
        async with client.get("/erp/sync/console", allow_redirects=False) as redirect:
            assert (redirect.status, redirect.headers["Location"]) == (308, "/erp/sync/console/")
        async with client.get("/erp/sync/console/clock") as clock:
            assert set(await clock.json()) == {"now", "speed", "epoch"}
        # The API's own catch-all still answers the rest of the prefix, as JSON.
        async with client.get("/erp/sync/nothing") as missing:
            assert missing.status == 404 and (await missing.json())["success"] is False
        async with client.get("/") as root:
            assert root.status == 404  # the host's root stays the host's
    finally:
        await client.close()  # the app's cleanup stops the service


async def test_setup_without_console_serves_none(aiohttp_client: Any) -> None:
    app = web.Application()
    service = SyncService(schedule=PAUSED, clock=ManualClock())
    setup(app, service, secret=SECRET)
    client = await aiohttp_client(app)
    try:
        async with client.get("/api/sync/console/") as response:
            assert response.status == 404
            assert (await response.json())["success"] is False
    finally:
        await client.close()  # the app's cleanup stops the service


def test_the_wheel_ships_the_console(tmp_path: Path) -> None:
    # Built as pip builds it (an isolated setuptools from the index), from a copy: setuptools
    # writes build/ and *.egg-info next to the sources.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "archibald_actors", source / "archibald_actors", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(source)],
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("archibald_actors-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {
            n.rsplit("/", 1)[1] for n in archive.namelist() if n.startswith("archibald_actors/web/console/")
        }
        archive.extractall(tmp_path / "installed")
    assert shipped == {p.name for p in CONSOLE.iterdir() if p.is_file()}
    # Read through importlib.resources from the unpacked wheel, not from this checkout.
    probe = (
        "import archibald_actors, sys; from archibald_actors.web.static import console_files; "
        "print(archibald_actors.__file__); print(sorted(console_files().files))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(tmp_path / "installed"), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,  # not this checkout: `python -c` puts the working directory first
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    assert out[0].startswith(str(tmp_path / "installed"))
    assert "index.html" in out[1] and "app.js" in out[1]
