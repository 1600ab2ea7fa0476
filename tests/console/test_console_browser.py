"""The console in real headless Chromium against a real ``serve --speed`` process.

Every wait is an auto-waiting ``expect`` (or ``wait_for_function``) with a bounded timeout;
transient states are recorded in the page by a MutationObserver, so a state that lasts a
second cannot be missed by polling.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from itertools import pairwise
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.console.conftest import PHONE, WAIT_MS, Pages, Served
from tests.serve_process import call

TYPES = ["orders", "customers", "prices", "invoices", "ddt", "products"]
#: What the served config gives each type before anything ran.
FIRST_STATES = {t: "paused" if t == "ddt" else "never" for t in TYPES}

RECORD = """() => {
  window.__seen = {};
  window.__banners = new Set();
  const note = () => {
    for (const row of document.querySelectorAll("tr[data-sync-type]")) {
      const type = row.dataset.syncType;
      (window.__seen[type] ||= []).push(row.dataset.state);
    }
    for (const banner of document.querySelectorAll("[data-banner]")) {
      window.__banners.add(banner.dataset.banner);
    }
  };
  new MutationObserver(note).observe(document.body, { attributes: true, childList: true, subtree: true });
  note();
}"""


def signed_in(pages: Pages, served: Served, token: str, **kwargs: object) -> Page:
    """The console opened with ``?token=``, its six rows shown, recording states and banners."""
    page = pages.open(served.url(token), **kwargs)  # type: ignore[arg-type]
    expect(page.locator("tr[data-sync-type]")).to_have_count(len(TYPES))
    page.evaluate(RECORD)
    return page


def row(page: Page, sync_type: str):  # type: ignore[no-untyped-def]
    return page.locator(f'tr[data-sync-type="{sync_type}"]')


def slots(page: Page, sync_type: str, kind: str = "data-slot") -> list[str]:
    return page.locator(f"[data-timeline] [{kind}][data-sync-type={sync_type}]").evaluate_all(
        "marks => marks.map(m => m.dataset.at)"
    )


def ms(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000


def test_signs_in_with_a_query_token_drops_it_and_shows_six_rows(pages: Pages, served: Served) -> None:
    token = served.token()
    page = signed_in(pages, served, token)
    assert "token" not in page.url and page.url == served.base + "/"
    assert page.evaluate("sessionStorage.getItem('archibald-sync.token')") == token
    for sync_type, state in FIRST_STATES.items():
        expect(row(page, sync_type)).to_have_attribute("data-state", state)
    expect(page.locator("#who")).to_contain_text("admin")
    # The timeline: a lane per type; the future slots follow the schedule, none for paused ddt.
    _, schedule = call("GET", served.base + "/api/sync/schedule", token)
    expect(page.locator("[data-timeline] [data-lane]")).to_have_count(len(TYPES))
    expect(page.locator("[data-timeline] [data-slot][data-sync-type=ddt]")).to_have_count(0)
    for sync_type in ("orders", "products"):
        marks = slots(page, sync_type)
        entry = schedule["data"][sync_type]
        assert marks[0] == entry["nextRunAt"]
        steps = {ms(b) - ms(a) for a, b in pairwise(marks)}
        assert steps <= {entry["interval"] * 60_000}, steps
    expect(page.locator("[data-timeline] [data-now]")).to_have_count(1)
    # A reload keeps the session (sessionStorage), with no token in the address.
    page.reload()
    expect(page.locator("tr[data-sync-type]")).to_have_count(len(TYPES))
    assert "token" not in page.url
    assert all(url.startswith(served.base + "/") for url in pages.requests), "a request left the origin"


def test_run_now_turns_the_row_running_then_idle_with_a_new_bar_and_no_reload(
    pages: Pages, served: Served, tmp_path: Path
) -> None:
    token = served.token()
    page = signed_in(pages, served, token)
    page.evaluate("window.__sameDocument = true")
    prices = row(page, "prices")
    bars = page.locator("[data-timeline] [data-run][data-sync-type=prices]")
    expect(bars).to_have_count(0)
    prices.locator("[data-action=run]").click()
    page.wait_for_function("() => (window.__seen.prices || []).includes('running')", timeout=WAIT_MS)
    expect(prices).to_have_attribute("data-state", "idle", timeout=30_000)
    expect(bars).to_have_count(1)
    expect(bars.first).to_have_attribute("data-outcome", "success")
    expect(prices.locator(".outcome")).to_have_text("success")
    expect(prices.locator(".spark rect")).to_have_count(1)
    assert page.evaluate("window.__sameDocument") is True  # updated live, never reloaded
    # The bar spans the run's real start and end, as the API recorded them.
    _, history = call("GET", served.base + "/api/sync/history?syncType=prices", token)
    (run,) = history["data"]
    assert bars.first.get_attribute("data-run") == run["startedAt"]
    # Screenshots for people to look at: desktop, and a phone in the dark.
    customers = row(page, "customers")
    customers.locator("[data-action=run]").click()
    expect(customers).to_have_attribute("data-state", "idle", timeout=30_000)
    expect(page.locator("[data-timeline] [data-run][data-sync-type=customers]")).to_have_count(1)
    shots = [pages.shot(page, "desktop-1280x800")]
    phone = signed_in(pages, served, token, viewport=PHONE, dark=True)
    expect(phone.locator("[data-timeline] [data-run]")).to_have_count(2)
    shots.append(pages.shot(phone, "phone-390x844-dark"))
    for shot in shots:
        assert shot.stat().st_size > 10_000
        shutil.copy(shot, tmp_path / shot.name)


def test_a_retune_previews_saves_and_moves_the_slots(pages: Pages, served: Served) -> None:
    token = served.token()
    page = signed_in(pages, served, token)
    before = slots(page, "orders")
    row(page, "orders").locator("[data-action=edit]").click()
    editor = page.locator("#editor")
    expect(editor).to_be_visible()
    expect(page.locator("#edit-interval")).to_have_value("10")
    expect(page.locator("#edit-interval")).to_be_focused()
    page.locator("#edit-interval").fill("25")
    page.locator("#edit-delay").fill("65")
    preview = page.locator("[data-timeline] [data-preview-slot][data-sync-type=orders]")
    expect(preview.first).to_be_visible()
    previewed = slots(page, "orders", "data-preview-slot")
    assert {ms(b) - ms(a) for a, b in pairwise(previewed)} == {25 * 60_000}
    assert slots(page, "orders") == before  # nothing saved yet
    _, schedule = call("GET", served.base + "/api/sync/schedule", token)
    assert schedule["data"]["orders"]["interval"] == 10
    # An out-of-range value says why and previews nothing.
    page.locator("#edit-interval").fill("2")
    expect(page.locator("#editor-error")).to_contain_text("between 5 and 180")
    expect(preview).to_have_count(0)
    page.locator("#edit-interval").fill("25")
    expect(preview.first).to_be_visible()
    page.locator("[data-action=save]").click()
    expect(editor).to_be_hidden()
    expect(preview).to_have_count(0)
    page.wait_for_function(
        "first => document.querySelector('[data-timeline] [data-slot][data-sync-type=orders]')"
        "?.dataset.at !== first",
        arg=before[0],
        timeout=WAIT_MS,
    )
    after = slots(page, "orders")
    _, schedule = call("GET", served.base + "/api/sync/schedule", token)
    entry = schedule["data"]["orders"]
    assert (entry["interval"], entry["startDelay"]) == (25, 65)
    assert after[0] == entry["nextRunAt"]
    # The preview was the slots the service then armed (the first may have passed meanwhile).
    assert abs(ms(after[0]) - ms(next(p for p in previewed if ms(p) >= ms(after[0]) - 1))) <= 1
    expect(row(page, "orders")).to_contain_text("every 25 min, +65 min")


def test_pause_and_resume(pages: Pages, served: Served) -> None:
    token = served.token()
    page = signed_in(pages, served, token)
    orders = row(page, "orders")
    orders.locator("[data-action=pause]").click()
    expect(orders).to_have_attribute("data-state", "paused")
    expect(page.locator("[data-timeline] [data-slot][data-sync-type=orders]")).to_have_count(0)
    expect(orders.locator("[data-action=resume]")).to_be_visible()
    _, schedule = call("GET", served.base + "/api/sync/schedule", token)
    assert schedule["data"]["orders"]["enabled"] is False
    orders.locator("[data-action=resume]").focus()
    page.keyboard.press("Enter")  # the controls work from the keyboard
    expect(orders).to_have_attribute("data-state", "never")
    expect(orders.locator("[data-action=pause]")).to_be_visible()
    expect(page.locator("[data-timeline] [data-slot][data-sync-type=orders]").first).to_be_visible()
    _, schedule = call("GET", served.base + "/api/sync/schedule", token)
    assert schedule["data"]["orders"]["enabled"] is True


def test_an_agent_token_sees_the_page_without_controls_and_the_api_refuses_its_writes(
    pages: Pages, served: Served
) -> None:
    token = served.token("agent", sub="agent-7")
    page = signed_in(pages, served, token)
    for sync_type, state in FIRST_STATES.items():
        expect(row(page, sync_type)).to_have_attribute("data-state", state)
    expect(page.locator("#who")).to_contain_text("read-only")
    expect(page.locator("[data-action]")).to_have_count(0)
    expect(page.locator("th.admin-only")).to_be_hidden()
    status, body = call(
        "POST", served.base + "/api/sync/schedule", token, {"syncType": "orders", "enabled": False}
    )
    assert status == 403 and body["success"] is False
    # The page shows what the API holds: an admin's pause shows up live.
    call("POST", served.base + "/api/sync/schedule", served.token(), {"syncType": "orders", "enabled": False})
    expect(row(page, "orders")).to_have_attribute("data-state", "paused")


def test_an_expired_token_returns_to_sign_in_with_the_reason(pages: Pages, served: Served) -> None:
    page = pages.open(served.url(served.expired_token()))
    expect(page.locator("#sign-in")).to_be_visible()
    expect(page.locator("#sign-in-reason")).to_contain_text("expired")
    expect(page.locator("#console")).to_be_hidden()
    assert "token" not in page.url
    assert page.evaluate("sessionStorage.getItem('archibald-sync.token')") is None
    # Pasting a good token signs in.
    page.locator("#token-input").fill(served.token())
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("tr[data-sync-type]")).to_have_count(len(TYPES))


def test_a_token_that_expires_while_open_returns_to_sign_in(pages: Pages, served: Served) -> None:
    page = signed_in(pages, served, served.token(ttl=8))
    # The server ends the stream with `event: expired` when the token's exp passes.
    expect(page.locator("#sign-in")).to_be_visible(timeout=30_000)
    expect(page.locator("#sign-in-reason")).to_contain_text("expired")
    assert page.evaluate("sessionStorage.getItem('archibald-sync.token')") is None


def test_a_dropped_event_stream_is_announced_and_recovered(pages: Pages, served: Served) -> None:
    token = served.token()
    page = signed_in(pages, served, token)
    banner = page.locator("[data-banner=stream]")
    expect(banner).to_have_count(0)
    pages.server_goes_away = True
    served.restart()  # SIGTERM ends every stream; the new process serves the same port and store
    page.wait_for_function("() => window.__banners.has('stream')", timeout=WAIT_MS)
    expect(banner).to_have_count(0, timeout=30_000)  # reconnected
    # Live again: a run requested by someone else shows up without a reload.
    status, _ = call("POST", served.base + "/api/sync/customers/run", token)
    assert status == 202
    expect(page.locator("[data-timeline] [data-run][data-sync-type=customers]")).to_have_count(
        1, timeout=30_000
    )
    expect(row(page, "customers")).to_have_attribute("data-state", "idle")
