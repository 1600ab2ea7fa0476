"""The console's live progress, per-agent table, breakers and service preview, in real
headless Chromium against a real ``serve --speed`` process.

The served config (``AGENTS_CONFIG``) has per-agent invoices, a prices handler that reports
its progress and a products handler that always fails; one failure opens a breaker and two
failing lanes the ERP-wide one. Transient states are recorded by a MutationObserver, so a
state that lasts a second cannot be missed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, Route, expect

from tests.console.conftest import AGENTS_CONFIG, PHONE, WAIT_MS, Pages, Served
from tests.console.test_console_browser import TYPES, row, signed_in
from tests.serve_process import call

SERVE_CONFIG = AGENTS_CONFIG
AGENTS = {"agent-01": "Shop 1", "agent-02": "Shop 2", "agent-03": "Warehouse", "agent-bad": "Broken"}

WATCH = """() => {
  window.__done = [];
  window.__agentStates = {};
  window.__running = [];
  const note = () => {
    const bar = document.querySelector('tr[data-sync-type=prices] [data-progress]:not([hidden])');
    if (bar) window.__done.push(Number(bar.dataset.done));
    for (const tr of document.querySelectorAll('tr[data-agent-id]')) {
      (window.__agentStates[tr.dataset.agentId] ||= []).push(tr.dataset.state);
    }
    const counts = document.querySelector('tr[data-sync-type=invoices] .agent-counts');
    if (counts && counts.dataset.running) window.__running.push(Number(counts.dataset.running));
  };
  const all = { attributes: true, childList: true, subtree: true, characterData: true };
  new MutationObserver(note).observe(document.body, all);
  note();
}"""


def with_agents(served: Served) -> str:
    """An admin token, with ``AGENTS`` added through the API."""
    token = served.token()
    for agent_id, name in AGENTS.items():
        status, _ = call("PUT", f"{served.base}/api/sync/agents/{agent_id}", token, {"name": name})
        assert status == 200
    return token


def posts(page: Page, path: str) -> list[Any]:
    """The JSON bodies of the page's POSTs to ``path`` (recorded from now on)."""
    bodies: list[Any] = []

    def seen(request: Any) -> None:
        if request.method == "POST" and request.url.split("?")[0].endswith(path):
            bodies.append(json.loads(request.post_data or "null"))

    page.on("request", seen)
    return bodies


def agent_rows(page: Page):  # type: ignore[no-untyped-def]
    return page.locator("tr[data-agents=invoices] tr[data-agent-id]")


def test_a_running_job_shows_a_live_progress_bar(pages: Pages, served: Served) -> None:
    token = served.token()
    page = signed_in(pages, served, token)
    page.evaluate(WATCH)
    prices = row(page, "prices")
    bar = prices.locator("[data-progress]")
    expect(bar).to_be_hidden()
    prices.locator("[data-action=run]").click()
    expect(bar).to_be_visible()
    expect(bar.locator(".progress-label")).to_contain_text("/ 100 rows")
    expect(bar.locator("progress")).to_have_attribute("max", "100")
    # It moves with the sync.progress events, without a reload, then goes away at the end.
    page.wait_for_function("() => new Set(window.__done).size >= 3", timeout=WAIT_MS)
    expect(prices).to_have_attribute("data-state", "idle", timeout=30_000)
    expect(bar).to_be_hidden()
    done = page.evaluate("window.__done")
    assert done == sorted(done) and done[-1] > done[0]
    assert all(0 <= d <= 100 for d in done)
    _, history = call("GET", served.base + "/api/sync/history?syncType=prices", token)
    assert history["data"][0]["result"] == {"rows": 100}


def test_the_per_agent_table_opens_searches_sorts_and_runs_one_agent(pages: Pages, served: Served) -> None:
    token = with_agents(served)
    page = signed_in(pages, served, token)
    page.evaluate(WATCH)
    invoices = row(page, "invoices")
    counts = invoices.locator(".agent-counts")
    expect(counts).to_have_attribute("data-total", str(len(AGENTS)))
    expect(counts).to_contain_text("4 agents")
    assert row(page, "orders").locator(".agent-counts").is_hidden()  # a shared type has none
    toggle = invoices.locator("[data-agents-toggle]")
    toggle.focus()
    page.keyboard.press("Enter")  # keyboard-usable
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(agent_rows(page)).to_have_count(len(AGENTS))
    expect(page.locator("[data-agent-search]")).to_be_focused()
    # Search by name or id.
    page.locator("[data-agent-search]").fill("shop 2")
    expect(agent_rows(page)).to_have_count(1)
    expect(agent_rows(page).first).to_have_attribute("data-agent-id", "agent-02")
    page.locator("[data-agent-search]").fill("AGENT-0")
    expect(agent_rows(page)).to_have_count(3)
    page.locator("[data-agent-search]").fill("")
    # Run one agent now: its row runs, the type's running count goes up, then it is ok.
    agent = page.locator("tr[data-agent-id=agent-02]")
    agent.locator("[data-action=run]").click()
    page.wait_for_function(
        "() => (window.__agentStates['agent-02'] || []).includes('running')", timeout=WAIT_MS
    )
    expect(agent).to_have_attribute("data-state", "idle", timeout=30_000)
    expect(agent.locator(".outcome")).to_have_text("success")
    assert 1 in page.evaluate("window.__running")
    expect(counts).to_have_attribute("data-ok", "1")
    _, history = call("GET", served.base + "/api/sync/history?syncType=invoices", token)
    assert [r["agentId"] for r in history["data"]] == ["agent-02"]  # that agent only
    # Stalest first: agents that never succeeded come before agent-02; by id it is second.
    expect(agent_rows(page).last).to_have_attribute("data-agent-id", "agent-02")
    page.locator("[data-agent-sort]").select_option("id")
    expect(agent_rows(page).nth(1)).to_have_attribute("data-agent-id", "agent-02")
    # Closing it takes the table away.
    toggle.click()
    expect(page.locator("tr[data-agents]")).to_have_count(0)


def test_breakers_show_on_rows_and_in_a_banner_and_an_admin_resets_them(
    pages: Pages, served: Served, tmp_path: Path
) -> None:
    token = with_agents(served)
    page = signed_in(pages, served, token)
    reader = signed_in(pages, served, served.token("agent", sub="agent-01"))
    resets = posts(page, "/breakers/reset")
    products = row(page, "products")
    products.locator("[data-action=run]").click()
    expect(products).to_have_attribute("data-breaker", "open")
    expect(products.locator("[data-breaker]")).to_contain_text("breaker open until")
    expect(row(reader, "products").locator("[data-breaker]")).to_contain_text("breaker open")
    products.locator("[data-action=reset-breaker]").click()
    expect(products).not_to_have_attribute("data-breaker", "open")
    expect(products.locator("[data-action=reset-breaker]")).to_be_hidden()
    assert resets == [{"syncType": "products"}]
    # A second failing lane (an agent's) within 10 minutes opens the ERP-wide breaker.
    status, _ = call("POST", f"{served.base}/api/sync/invoices/run", token, {"agentId": "agent-bad"})
    assert status == 202
    banner = page.locator("[data-banner=erp-breaker]")
    expect(banner).to_contain_text("ERP-wide breaker is open")
    expect(row(page, "invoices").locator("[data-breaker]")).to_contain_text("1 agent breaker open")
    expect(reader.locator("[data-banner=erp-breaker]")).to_be_visible()
    # The agent's table shows its breaker, with a reset for that pair.
    row(page, "invoices").locator("[data-agents-toggle]").click()
    bad = page.locator("tr[data-agent-id=agent-bad]")
    expect(bad).to_have_attribute("data-breaker", "open")
    expect(bad.locator(".outcome")).to_have_text("failed")
    expect(bad.locator("[data-action=reset-breaker]")).to_be_visible()
    # The agent-role page shows the same without a single control (its table too).
    row(reader, "invoices").locator("[data-agents-toggle]").click()
    expect(reader.locator("tr[data-agent-id]")).to_have_count(1)  # an agent sees itself only
    expect(reader.locator("[data-action]")).to_have_count(0)
    shots = [pages.shot(page, "breakers-desktop-1280x800")]
    phone = signed_in(pages, served, token, viewport=PHONE, dark=True)
    row(phone, "invoices").locator("[data-agents-toggle]").click()
    expect(phone.locator("tr[data-agent-id]")).to_have_count(len(AGENTS))
    shots.append(pages.shot(phone, "breakers-phone-390x844-dark"))
    for shot in shots:
        shutil.copy(shot, tmp_path / shot.name)
    # The banner's reset closes every breaker, the ERP-wide one too.
    banner.locator("[data-action=reset-breaker]").click()
    expect(banner).to_have_count(0)
    expect(bad).to_have_attribute("data-breaker", "closed")
    assert resets[-1] == {}
    _, status_body = call("GET", f"{served.base}/api/sync/status", token)
    breakers = status_body["data"]["breakers"]
    assert breakers["erp"]["state"] == "closed"
    assert [p for p in breakers["pairs"] if p["state"] != "closed"] == []
    expect(reader.locator("[data-banner=erp-breaker]")).to_have_count(0)


def test_the_preview_marks_a_collision_of_a_retune(pages: Pages, served: Served) -> None:
    token = served.token()
    page = signed_in(pages, served, token)
    previews = posts(page, "/schedule/preview")
    row(page, "prices").locator("[data-action=edit]").click()
    page.locator("#edit-interval").fill("10")
    page.locator("#edit-delay").fill("0")  # prices on orders' 10-minute grid: they meet
    expect(page.locator("#editor")).to_have_attribute("data-plan", "ready")
    assert previews[-1] == {"syncType": "prices", "intervalMinutes": 10, "startDelayMinutes": 0}
    marks = page.locator("[data-timeline] [data-collision][data-sync-type=prices]")
    expect(marks.first).to_be_visible()
    expect(page.locator("[data-timeline] [data-collision][data-sync-type=orders]").first).to_be_visible()
    expect(page.locator("#editor-note")).to_contain_text("orders and prices")
    # A retune that meets nobody: the marks of prices go away.
    page.locator("#edit-interval").fill("180")
    page.locator("#edit-delay").fill("7")
    expect(page.locator("#editor")).to_have_attribute("data-plan", "ready")
    expect(marks).to_have_count(0)
    # Nothing was saved.
    _, schedule = call("GET", served.base + "/api/sync/schedule", token)
    assert schedule["data"]["prices"]["interval"] == 30
    assert len(TYPES) == 6


def test_without_a_preview_endpoint_the_grid_preview_stays(pages: Pages, served: Served) -> None:
    page = signed_in(pages, served, served.token())
    pages.expected.append("the server responded with a status of 404")

    def missing(route: Route) -> None:
        body = '{"success": false, "error": "Not Found"}'
        route.fulfill(status=404, content_type="application/json", body=body)

    page.route("**/schedule/preview*", missing)
    row(page, "prices").locator("[data-action=edit]").click()
    page.locator("#edit-interval").fill("10")
    page.locator("#edit-delay").fill("0")
    expect(page.locator("#editor")).to_have_attribute("data-plan", "grid")
    expect(page.locator("#editor-note")).to_contain_text("no preview endpoint")
    expect(page.locator("[data-timeline] [data-preview-slot][data-sync-type=prices]").first).to_be_visible()
    expect(page.locator("[data-timeline] [data-collision]")).to_have_count(0)
