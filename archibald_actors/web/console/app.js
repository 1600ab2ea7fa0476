// The console's entry point: sign-in, the model, and what each event of the stream changes.
// Every action goes through the public HTTP API; the stream only says when to read again.

import { AgentTables } from "./agents.js";
import { Api, AuthError } from "./api.js";
import { bannersFor, showBanners } from "./banners.js";
import { ServiceClock } from "./clock.js";
import { Editor } from "./editor.js";
import { HOUR } from "./format.js";
import { TypeRows } from "./rows.js";
import { adoptTokenFromUrl, claims, forget, load, store } from "./session.js";
import { LiveStream } from "./stream.js";
import { Timeline, ZOOMS } from "./timeline.js";

const $ = (id) => document.getElementById(id);
const TICK_MS = 1000;
const NOTICE_MS = 10000;
/** Runs kept per type by the service; the history request asks for all of them. */
const HISTORY_LIMIT = 600;
const RUN_EVENTS = new Set(["sync.completed", "sync.failed", "sync.cancelled", "sync.skipped"]);
/** Real ms between two drawings of the rows for progress events (each job may send many a second). */
const PROGRESS_DRAW_MS = 500;

const page = {
  api: null,
  stream: null,
  rows: null,
  agents: null,
  editor: null,
  timeline: new Timeline($("timeline"), $("timeline-span")),
  clock: new ServiceClock(document.body.dataset.clock),
  ticker: null,
  // Out of the document until an admin signs in: a reader's page holds no control at all.
  editorForm: $("editor"),
};
page.editorForm.remove();

const model = {
  types: [],
  schedule: null,
  status: null,
  history: [],
  runsByType: new Map(),
  preview: null,
  live: true,
  admin: false,
  notices: new Map(),
};

const banners = () => showBanners($("banners"), bannersFor(model), page.api && model.admin ? bannerAction : null);

// --- refreshing -------------------------------------------------------------------------

const pending = new Set();
let flushTimer = null;
let inflight = false;

/** Ask for parts of the model to be read again; bursts of events cost one read each. */
function want(...parts) {
  for (const part of parts) pending.add(part);
  if (!flushTimer && !inflight) flushTimer = setTimeout(flush, 50);
}

async function flush() {
  flushTimer = null;
  if (!page.api || !pending.size) return;
  const parts = [...pending];
  pending.clear();
  inflight = true;
  try {
    await Promise.all(parts.map(read));
    render();
  } catch (error) {
    failed("refresh", error);
  } finally {
    inflight = false;
    if (pending.size) want();
  }
}

async function read(part) {
  const api = page.api;
  if (part === "schedule") setSchedule(await api.schedule());
  else if (part === "status") model.status = await api.status();
  else if (part === "history") setHistory(await api.history(HISTORY_LIMIT));
  else if (part === "clock") await page.clock.sync();
}

/** A new schedule; its nextRunAt also goes into the status, which may be older. */
function setSchedule(schedule) {
  model.schedule = schedule;
  for (const [type, entry] of Object.entries(schedule)) {
    const st = model.status?.types?.[type];
    if (st) st.nextRunAt = entry.nextRunAt;
  }
}

function setHistory(runs) {
  model.history = runs;
  const byType = new Map();
  for (const run of runs) {
    if (!byType.has(run.syncType)) byType.set(run.syncType, []);
    byType.get(run.syncType).push(run); // newest first, as the API answers
  }
  model.runsByType = byType;
}

/** A finished run from the stream goes into the history at once (no read needed). */
function addRun(run) {
  if (!run.syncType || !run.startedAt) return;
  const same = (r) => r.syncType === run.syncType && r.startedAt === run.startedAt && (r.agentId || null) === (run.agentId || null);
  const known = model.history.some(same);
  if (!known) setHistory([run, ...model.history].slice(0, HISTORY_LIMIT));
}

// --- rendering --------------------------------------------------------------------------

function render() {
  if (model.schedule) {
    const types = Object.keys(model.schedule);
    if (types.join() !== model.types.join()) {
      model.types = types;
      page.rows.setTypes(types);
    }
  }
  model.preview = page.editor ? page.editor.preview(model, page.clock) : null;
  const now = page.clock.now();
  page.rows.update(model, now);
  page.agents.update(model, now);
  page.timeline.render(model, now);
  banners();
}

let progressTimer = null;

/** A sync.progress event moves its job's bar without reading the status again. */
function progressed(data) {
  const job = (model.status?.jobs || []).find(
    (j) => j.syncType === data.syncType && (j.agentId || null) === (data.agentId || null) && j.startedAt === data.startedAt,
  );
  if (!job) {
    want("status"); // a job the page has not read yet
    return;
  }
  const { done, total, message, percentage } = data;
  job.progress = { done, total, message, percentage };
  if (progressTimer) return;
  progressTimer = setTimeout(() => {
    progressTimer = null;
    if (!page.api) return;
    const now = page.clock.now();
    page.rows.update(model, now);
    page.agents.update(model, now);
  }, PROGRESS_DRAW_MS);
}

function tick() {
  if (document.hidden || !page.api) return;
  const now = page.clock.now();
  page.rows.tick(now);
  page.agents.update(model, now);
  if (page.timeline.due(now)) page.timeline.render(model, now);
}

function notice(key, text) {
  model.notices.set(key, text);
  banners();
  setTimeout(() => {
    if (model.notices.get(key) === text) {
      model.notices.delete(key);
      banners();
    }
  }, NOTICE_MS);
}

function failed(what, error) {
  if (error instanceof AuthError) signOut(`The service refused the token: ${error.message}.`);
  else notice(what, `${what}: ${error.message}`);
}

// --- actions (admin) --------------------------------------------------------------------

async function act(what, button, work) {
  if (button) button.disabled = true;
  try {
    await work();
  } catch (error) {
    failed(what, error);
  } finally {
    if (button) button.disabled = false;
  }
}

const actions = {
  run: (type, button) => act(`Run ${type}`, button, async () => {
    await page.api.run(type);
    want("status");
  }),
  pause: (type, button) => act(`Pause ${type}`, button, async () => {
    setSchedule(await page.api.retune({ syncType: type, enabled: false }));
    render();
    want("status");
  }),
  resume: (type, button) => act(`Resume ${type}`, button, async () => {
    setSchedule(await page.api.retune({ syncType: type, enabled: true }));
    render();
    want("status");
  }),
  edit: (type) => page.editor.open(type, model.schedule?.[type]),
  runAgent: (type, agentId, button) => act(`Run ${type} for ${agentId}`, button, async () => {
    await page.api.run(type, agentId);
    want("status");
  }),
  resetBreaker: (type, button, agentId) => act("Reset breaker", button, async () => {
    await page.api.resetBreakers(agentId ? { syncType: type, agentId } : { syncType: type });
    want("status");
    page.agents.touched(agentId);
  }),
};

/** A banner's button: the ERP-wide breaker's reset (which closes every breaker). */
function bannerAction(action, button) {
  if (action !== "reset-breaker") return;
  act("Reset breakers", button, async () => {
    await page.api.resetBreakers({});
    want("status");
  });
}

/** The service's preview of a retune over the timeline's span ahead (1 to 48 hours). */
function plan(change) {
  const hours = Math.min(48, Math.max(1, Math.ceil(ZOOMS[page.timeline.zoom].ahead / HOUR)));
  return page.api.preview(change, hours);
}

async function save(change) {
  setSchedule(await page.api.retune(change));
  want("status");
}

// --- the event stream -------------------------------------------------------------------

function onEvent(type, data) {
  if (type === "sync.progress") {
    progressed(data);
  } else if (RUN_EVENTS.has(type)) {
    addRun(data);
    want("status");
    page.agents.touched(data.agentId);
  } else if (type === "agent.changed" || type === "agent.removed") {
    page.agents.touched(data.agentId, true);
    want("status");
  } else if (type.startsWith("breaker.")) {
    page.agents.touched(data.agentId);
    want("status");
  } else if (type === "schedule.changed") {
    want("schedule", "status");
  } else {
    want("status");
  }
}

function startStream() {
  page.stream = new LiveStream(() => page.api.eventsUrl(), {
    event: onEvent,
    open: () => {
      model.live = true;
      // Whatever happened while the stream was down is read again.
      want("clock", "schedule", "status", "history");
      page.agents.touched(null, true);
    },
    down: () => {
      model.live = false;
      banners();
    },
    closed: async () => {
      // The browser gave up: a refused token ends here, anything else is tried again.
      try {
        await page.api.status();
      } catch (error) {
        if (error instanceof AuthError) {
          signOut(`The service refused the token: ${error.message}.`);
          return false;
        }
      }
      return true;
    },
    expired: () => signOut("Your token expired: paste a new one to go on."),
    overflow: () => notice("stream", "The page fell behind the event stream; it reconnects and reads everything again."),
  });
  page.stream.start();
}

// --- signing in and out -----------------------------------------------------------------

async function signIn(token) {
  const who = claims(token);
  const admin = who.role === "admin";
  page.api = new Api(document.body.dataset.api, token);
  model.admin = admin;
  document.body.classList.toggle("read-only", !admin);
  $("who").textContent = `${who.username || who.sub || who.userId || "signed in"} · ${admin ? "admin" : `${who.role || "reader"}, read-only`}`;
  $("who").hidden = false;
  $("sign-out").hidden = false;
  $("sign-in").hidden = true;
  $("console").hidden = false;
  $("rows").replaceChildren();
  model.types = [];
  if (page.agents) page.agents.clear();
  // Agents read again redraw their tables only, not the whole page.
  page.agents = new AgentTables(() => page.api, admin ? actions : null, () => page.api && page.agents.update(model, page.clock.now()));
  page.rows = new TypeRows($("rows"), admin ? actions : null, page.agents);
  page.editor = null;
  if (admin) {
    document.querySelector(".timeline-box").before(page.editorForm);
    page.editor = new Editor(page.editorForm, { save, changed: render, saveFailed: failed, plan });
  }
  try {
    await Promise.all(["clock", "schedule", "status", "history"].map(read));
  } catch (error) {
    if (error instanceof AuthError) {
      signOut(`The service refused the token: ${error.message}.`);
      return;
    }
    notice("load", `Loading: ${error.message}`);
  }
  render();
  startStream();
  clearInterval(page.ticker);
  page.ticker = setInterval(tick, TICK_MS);
}

function signOut(reason) {
  forget();
  if (page.stream) page.stream.stop();
  clearInterval(page.ticker);
  if (page.editor) page.editor.dispose();
  if (page.agents) page.agents.clear();
  page.editorForm.remove();
  Object.assign(page, { api: null, stream: null, editor: null, ticker: null });
  model.live = true;
  model.admin = false;
  model.notices.clear();
  showBanners($("banners"), []);
  $("console").hidden = true;
  $("who").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-reason").textContent = reason || "";
  $("token-input").value = "";
  $("token-input").focus();
}

function main() {
  adoptTokenFromUrl();
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (!token) return;
    store(token);
    signIn(token);
  });
  $("sign-out").addEventListener("click", () => signOut("Signed out."));
  $("zoom-in").addEventListener("click", () => zoom(-1));
  $("zoom-out").addEventListener("click", () => zoom(1));
  new ResizeObserver(() => page.api && render()).observe($("timeline"));
  document.addEventListener("visibilitychange", () => page.api && !document.hidden && render());
  const token = load();
  if (token) signIn(token);
  else signOut("");
}

function zoom(delta) {
  page.timeline.zoomBy(delta);
  $("zoom-in").disabled = page.timeline.zoom === 0;
  $("zoom-out").disabled = page.timeline.zoom === ZOOMS.length - 1;
  render();
}

main();
