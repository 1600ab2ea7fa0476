// The per-agent table of a per-agent type, opened under its row: search by id or name, sort
// by staleness, each agent's last run and breaker, and (admin) run one agent now.
//
// The agents come from GET /agents and each one's state from GET /agents/{id} (a few at a
// time). They are read when a table opens; afterwards an event naming an agent reads that
// agent again, so a busy stream costs one small read per agent that changed.

import { breakerText } from "./breakers.js";
import { el, setAttr, setText } from "./dom.js";
import { ago, duration, parseTime } from "./format.js";
import { ProgressBar } from "./progress.js";

/** Agent reads in flight at once. */
const READS = 4;
/** Rows drawn at most; a search narrows the rest down. */
const SHOWN = 200;
const COLUMNS = ["Agent", "State", "Last run", "Fresh", "Breaker"];

export class AgentTables {
  /**
   * @param {() => object} api the signed-in Api
   * @param {object} actions runAgent(type, agentId, button), resetBreaker(type, button, agentId);
   *   null for a reader
   * @param {() => void} changed called when agents were read (to draw the tables again)
   */
  constructor(api, actions, changed) {
    this.api = api;
    this.actions = actions;
    this.changed = changed;
    this.tables = new Map(); // open tables by type
    this.agents = null; // [{agentId, name, enabled}] once read
    this.details = new Map(); // agentId -> GET /agents/{id}
    this.dirty = new Set();
    this.timer = null;
    this.loading = null;
  }

  /** Open or close `type`'s table under its row; returns whether it is open now. */
  toggle(type, row) {
    const open = this.tables.get(type);
    if (open) {
      open.tr.remove();
      row.panel = null;
      this.tables.delete(type);
      return false;
    }
    const table = this.build(type);
    row.panel = table.tr;
    row.tr.after(table.tr);
    this.tables.set(type, table);
    if (this.agents === null) this.load();
    else this.render(table);
    table.search.focus();
    return true;
  }

  /** Read the list and every agent again (on opening, and after the stream reconnects). */
  async load() {
    if (this.loading) return this.loading;
    this.loading = (async () => {
      try {
        this.agents = await this.api().agents();
        await this.readAll(this.agents.map((a) => a.agentId));
      } catch (error) {
        for (const table of this.tables.values()) setText(table.note, `Agents could not be read: ${error.message}`);
      } finally {
        this.loading = null;
      }
      this.changed();
    })();
    return this.loading;
  }

  async readAll(ids) {
    const queue = [...ids];
    const worker = async () => {
      while (queue.length) {
        const id = queue.shift();
        try {
          this.details.set(id, await this.api().agent(id));
        } catch (error) {
          // Gone, or not this token's to read (an agent's token reads only itself).
          if (error.status === 404 || error.status === 403) this.details.delete(id);
          else throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(READS, queue.length) }, worker));
  }

  /** An event named `agentId` (a run, a breaker, a change): read it again if a table is open. */
  touched(agentId, listChanged = false) {
    if (this.agents === null) return;
    if (!this.tables.size) {
      this.agents = null; // read afresh on the next opening
      return;
    }
    if (listChanged) this.listChanged = true;
    // Only agents in the list: an agent's token lists (and may read) only itself.
    if (agentId && (listChanged || this.agents.some((a) => a.agentId === agentId))) this.dirty.add(agentId);
    if (!this.timer) this.timer = setTimeout(() => this.flush(), 300);
  }

  async flush() {
    const ids = [...this.dirty];
    this.dirty.clear();
    try {
      if (this.listChanged) {
        this.listChanged = false;
        this.agents = await this.api().agents();
      }
      const listed = new Set(this.agents.map((a) => a.agentId));
      for (const id of ids) if (!listed.has(id)) this.details.delete(id);
      await this.readAll(ids.filter((id) => listed.has(id)));
    } catch {
      // The next event or reconnection reads them again.
    }
    this.timer = null;
    this.changed();
  }

  /** Draw every open table again (jobs and progress come from `model.status`). */
  update(model, now) {
    this.model = model;
    for (const table of this.tables.values()) this.render(table, now);
  }

  /** Close every table and forget the agents (signing out). */
  clear() {
    for (const table of this.tables.values()) table.tr.remove();
    this.tables.clear();
    this.agents = null;
    this.details.clear();
    clearTimeout(this.timer);
    this.timer = null;
  }

  build(type) {
    const id = `agents-${type}`;
    const search = el("input", { type: "search", id: `${id}-search`, placeholder: "id or name", autocomplete: "off", "data-agent-search": "" });
    const sort = el("select", { id: `${id}-sort`, "data-agent-sort": "" },
      el("option", { value: "stale", text: "stalest first" }),
      el("option", { value: "id", text: "by id" }),
    );
    const note = el("span", { class: "sub", "aria-live": "polite" });
    const body = el("tbody");
    const head = el("tr", {}, ...COLUMNS.map((c) => el("th", { scope: "col", text: c })),
      this.actions ? el("th", { scope: "col", text: "Actions" }) : null);
    const tr = el("tr", { class: "agents-panel", "data-agents": type },
      el("td", { colspan: "7" },
        el("div", { class: "agents-tools" },
          el("label", { for: search.id, text: "Search" }), search,
          el("label", { for: sort.id, text: "Sort" }), sort, note),
        el("table", { class: "agents", id, "aria-label": `Agents of ${type}` }, el("thead", {}, head), body)));
    const table = { type, tr, search, sort, note, body, rows: new Map() };
    search.addEventListener("input", () => this.render(table));
    sort.addEventListener("change", () => this.render(table));
    return table;
  }

  render(table, now = Date.now()) {
    if (this.agents === null) {
      setText(table.note, "Reading the agents…");
      return;
    }
    const { type } = table;
    const query = table.search.value.trim().toLowerCase();
    const stateOf = (a) => this.details.get(a.agentId)?.types?.[type] || null;
    let list = this.agents.filter((a) => !query || a.agentId.toLowerCase().includes(query) || (a.name || "").toLowerCase().includes(query));
    const staleness = (a) => parseTime(stateOf(a)?.lastSuccessAt) ?? -Infinity; // never succeeded: stalest
    list = list.sort((a, b) => (table.sort.value === "stale" ? staleness(a) - staleness(b) : 0) || a.agentId.localeCompare(b.agentId));
    const shown = list.slice(0, SHOWN);
    setText(table.note, `${list.length} of ${this.agents.length} agents${list.length > SHOWN ? `, the first ${SHOWN} shown` : ""}`);
    const jobs = (this.model?.status?.jobs || []).filter((j) => j.syncType === type);
    const keep = new Set();
    for (const agent of shown) {
      keep.add(agent.agentId);
      const row = table.rows.get(agent.agentId) || this.buildRow(table, agent);
      this.updateRow(row, agent, stateOf(agent), jobs.find((j) => j.agentId === agent.agentId), now);
      table.body.append(row.tr); // in sorted order
    }
    for (const [agentId, row] of table.rows) {
      if (!keep.has(agentId)) {
        row.tr.remove();
        table.rows.delete(agentId);
      }
    }
  }

  buildRow(table, agent) {
    const row = {
      name: el("th", { scope: "row" }),
      badge: el("span", { class: "badge" }),
      progress: new ProgressBar(),
      last: el("div", { class: "last" }),
      lastAgo: el("span", { class: "sub" }),
      fresh: el("span", { class: "badge" }),
      breaker: el("span", { class: "badge breaker" }),
    };
    row.tr = el("tr", { "data-agent-id": agent.agentId },
      row.name,
      el("td", { "data-label": "State" }, row.badge, row.progress.node),
      el("td", { "data-label": "Last run" }, row.last, row.lastAgo),
      el("td", { "data-label": "Fresh" }, row.fresh),
      el("td", { "data-label": "Breaker" }, row.breaker));
    if (this.actions) {
      const { type } = table;
      row.run = el("button", { type: "button", "data-action": "run", "data-agent-id": agent.agentId, "aria-label": `Run ${type} for ${agent.agentId} now`, text: "Run" });
      row.run.addEventListener("click", () => this.actions.runAgent(type, agent.agentId, row.run));
      row.reset = el("button", { type: "button", class: "quiet", "data-action": "reset-breaker", "data-agent-id": agent.agentId, hidden: true, "aria-label": `Reset the breaker of ${type} for ${agent.agentId}`, text: "Reset breaker" });
      row.reset.addEventListener("click", () => this.actions.resetBreaker(type, row.reset, agent.agentId));
      row.tr.append(el("td", { class: "actions", "data-label": "Actions" }, row.run, row.reset));
    }
    table.rows.set(agent.agentId, row);
    return row;
  }

  updateRow(row, agent, st, job, now) {
    const title = agent.name ? `${agent.agentId} · ${agent.name}` : agent.agentId;
    setText(row.name, title);
    const state = !agent.enabled ? "disabled" : job ? "running" : st?.lastRun ? "idle" : "never";
    setAttr(row.tr, "data-state", state);
    setAttr(row.badge, "class", `badge state-${state === "disabled" ? "paused" : state}`);
    setText(row.badge, state === "never" ? "never run" : state);
    row.progress.show(job?.progress || null);
    const run = st?.lastRun;
    const key = run ? `${run.finishedAt}|${run.outcome}` : "none";
    if (row.lastKey !== key) {
      row.lastKey = key;
      if (!run) row.last.replaceChildren(el("span", { class: "sub", text: "no run yet" }));
      else {
        const why = run.outcome === "skipped" && run.reason ? ` (${run.reason})` : "";
        const outcome = el("span", { class: `outcome ${run.outcome}`, text: run.outcome + why });
        const info = el("span", { text: ` · ${duration(run.durationMs)} · ${run.trigger}` });
        row.last.replaceChildren(run.error
          ? el("details", {}, el("summary", {}, outcome, info), el("pre", { class: "error", text: run.error }))
          : el("span", {}, outcome, info));
      }
    }
    const finished = parseTime(run?.finishedAt);
    setText(row.lastAgo, finished === null ? "" : ago(now - finished));
    const fresh = st ? st.fresh : null;
    setAttr(row.fresh, "class", `badge ${fresh === false ? "stale" : fresh ? "fresh" : ""}`);
    setText(row.fresh, fresh === false ? "stale" : fresh ? "fresh" : "–");
    const breaker = breakerText(st?.breaker);
    setText(row.breaker, breaker || "closed");
    setAttr(row.breaker, "class", `badge breaker ${breaker ? st.breaker.state : "closed"}`);
    setAttr(row.tr, "data-breaker", st?.breaker?.state || "closed");
    if (row.run) row.run.disabled = !agent.enabled || Boolean(job);
    if (row.reset) row.reset.hidden = !breaker;
  }
}
