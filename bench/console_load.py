"""The console in headless Chromium: first paint, time to a full page, bytes, and the main
thread's work while the service publishes hundreds of events a minute.

What it measures
----------------
``archibald-sync serve --speed N`` runs in a subprocess (its default schedule and demo
handlers: at 900x, orders runs every 0.7 real seconds, about 600 events a minute). Debian's
Chromium, driven by Playwright, opens the console with ``?token=`` and records:

* ``first-contentful-paint`` (the browser's paint timing) and ``ready``: until the six rows
  and the timeline are drawn from the API's answers (the page is usable);
* the page's bytes: the document and its assets as decoded and as transferred (gzip), and
  whether any request went to another origin;
* for ``--seconds`` (60): the events the stream delivered (counted by a second SSE client),
  the long tasks (over 50 ms, PerformanceObserver ``longtask``) and the main thread's busy
  time (the DevTools ``Performance.getMetrics`` TaskDuration), as a share of the window.

The goals (issue 13): no long task over 50 ms while 500 events a minute arrive, under
150 KB before gzip, no other origin. There is no peer page to compare with; the numbers
are printed with their goal.

``--config FILE`` passes a config to ``serve`` (handlers that report ``ctx.progress``, a
per-agent type); ``--agents N`` adds N agents through the API and keeps the per-agent table
of the first per-agent type open during the window (every agent's row drawn and updated);
``--run-all`` asks for a run of every type as the window opens (progress bars moving).

Run (from the repo root)::

    .venv/bin/python bench/console_load.py                 # 60 s at --speed 900
    .venv/bin/python bench/console_load.py --seconds 30 --speed 600
    .venv/bin/python bench/console_load.py --speed 30 --config bench/console_agents.toml --agents 20 --run-all
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

# Installed before the page's own scripts: paint, long tasks, and when the page is usable.
PROBE = """
window.__long = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__long.push(entry.duration);
}).observe({ type: "longtask", buffered: true });
const ready = () => {
  const rows = document.querySelectorAll("tr[data-sync-type]").length;
  if (rows === 6 && document.querySelector("[data-timeline]")) {
    window.__ready = performance.now();
  } else {
    requestAnimationFrame(ready);
  }
};
requestAnimationFrame(ready);
"""


def serve(speed: float, db: Path, config: str | None) -> tuple[subprocess.Popen[bytes], str, str]:
    env = {**os.environ, "ARCHIBALD_JWT_SECRET": secrets.token_hex(32)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "archibald_actors",
            "serve",
            "--port",
            "0",
            "--speed",
            str(speed),
            "--db",
            str(db),
            "--print-token",
            "--log-level",
            "WARNING",
            *(["--config", config] if config else []),
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    token = base = ""
    while not base:
        line = proc.stdout.readline().decode()
        if not line:
            raise SystemExit("serve ended before listening")
        if match := re.search(r"admin token \(valid \d+ h\): (\S+)", line):
            token = match[1]
        if match := re.search(r"^listening on (\S+)", line):
            base = match[1]
    return proc, base, token


def send(method: str, url: str, token: str, body: object = None) -> object:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["data"]


def add_agents(base: str, token: str, count: int) -> None:
    """PUT ``agent-001``... through the API."""
    for n in range(1, count + 1):
        send("PUT", f"{base}/api/sync/agents/agent-{n:03d}", token, {"name": f"Shop {n}"})


def run_all(base: str, token: str) -> None:
    """A manual run of every type (every agent's job of a per-agent type)."""
    schedule = send("GET", f"{base}/api/sync/schedule", token)
    assert isinstance(schedule, dict)
    for sync_type in schedule:
        send("POST", f"{base}/api/sync/{sync_type}/run", token)


def count_events(url: str, stop: threading.Event, counted: list[int]) -> None:
    with urllib.request.urlopen(url, timeout=30) as stream:
        for raw in stream:
            if stop.is_set():
                return
            if raw.startswith(b"event: "):
                counted[0] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=900.0)
    parser.add_argument("--config", help="a config for serve (handlers with progress, per-agent types)")
    parser.add_argument("--agents", type=int, default=0, help="agents to add; opens a per-agent table")
    parser.add_argument("--run-all", action="store_true", help="run every type as the window opens")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, base, token = serve(args.speed, Path(tmp) / "sync.db", args.config)
        try:
            add_agents(base, token, args.agents)
            with sync_playwright() as driver:
                browser = driver.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                context = browser.new_context(viewport={"width": 1280, "height": 800})
                context.add_init_script(PROBE)
                page = context.new_page()
                requests: list[str] = []
                page.on("request", lambda request: requests.append(request.url))
                page.goto(f"{base}/?token={token}")
                page.wait_for_function("() => window.__ready !== undefined", timeout=30_000)
                paint = page.evaluate(
                    "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
                )
                ready = page.evaluate("() => window.__ready")
                sizes = page.evaluate(
                    """() => [performance.getEntriesByType('navigation')[0],
                              ...performance.getEntriesByType('resource')]
                        .filter((e) => !e.name.includes('/api/') && !e.name.endsWith('/clock'))
                        .map((e) => [e.name, e.decodedBodySize, e.transferSize])"""
                )
                if args.agents:
                    page.locator("[data-agents-toggle]").first.click()
                    page.locator("tr[data-agent-id]").nth(args.agents - 1).wait_for(timeout=30_000)
                cdp = context.new_cdp_session(page)
                cdp.send("Performance.enable")
                page.evaluate("() => { window.__long = []; }")
                before = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                stop, counted = threading.Event(), [0]
                events_url = f"{base}/api/sync/events?token={token}"
                counter = threading.Thread(target=count_events, args=(events_url, stop, counted), daemon=True)
                counter.start()
                started = time.monotonic()
                if args.run_all:
                    run_all(base, token)
                page.wait_for_timeout(args.seconds * 1000)
                window = time.monotonic() - started
                stop.set()
                after = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                long_tasks = page.evaluate("() => window.__long")
                rows = page.locator("tr[data-sync-type]").count()
                bars = page.locator("[data-timeline] [data-run]").count()
                agent_rows = page.locator("tr[data-agent-id]").count()
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
    decoded = sum(s[1] for s in sizes)
    transferred = sum(s[2] for s in sizes)
    foreign = [u for u in requests if not u.startswith(base + "/")]
    busy = after["TaskDuration"] - before["TaskDuration"]
    script = after["ScriptDuration"] - before["ScriptDuration"]
    per_minute = counted[0] / window * 60
    print(f"first contentful paint {paint:.0f} ms, ready (rows and timeline drawn) {ready:.0f} ms")
    print(
        f"page: {len(sizes)} files, {decoded / 1000:.1f} KB decoded (goal < 150 KB), "
        f"{transferred / 1000:.1f} KB transferred; requests to another origin: {len(foreign)}"
    )
    print(
        f"{window:.0f} s with {counted[0]} events ({per_minute:.0f}/min; goal: responsive at 500/min): "
        f"{len(long_tasks)} long tasks (> 50 ms), longest {max(long_tasks, default=0):.0f} ms; "
        f"main thread busy {busy / window:.1%} (script {script / window:.1%})"
    )
    print(f"at the end: {rows} rows, {bars} run bars on the timeline, {agent_rows} agent rows")


if __name__ == "__main__":
    main()
