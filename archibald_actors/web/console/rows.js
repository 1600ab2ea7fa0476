// One table row per sync type: state, freshness, last and next run, a 60-run sparkline and
// (for an admin) the controls. Rows are built once and updated in place, so an open error
// stays open and focus stays on its button while events arrive.

import { typeBreaker } from "./breakers.js";
import { el, setAttr, setText, svg } from "./dom.js";
import { ago, clockTime, countdown, duration, parseTime } from "./format.js";
import { ProgressBar } from "./progress.js";

const SPARK_RUNS = 60;
const SPARK_W = 150;
const SPARK_H = 22;

/** The row's data-state: running | queued | idle | paused | never. */
export function rowState(type, model) {
  const st = model.status?.types?.[type];
  if (model.status?.running?.syncType === type || st?.state === "running") return "running";
  if (st?.state === "queued") return "queued";
  if (model.schedule?.[type]?.enabled === false || st?.timer === "paused") return "paused";
  if (st && !st.lastRun) return "never";
  return "idle";
}

export class TypeRows {
  /**
   * @param {HTMLElement} body the table's tbody
   * @param {object} actions run(type), pause(type), resume(type), edit(type), resetBreaker(type);
   *   null for a reader
   * @param {object} agents the per-agent tables: toggle(type, row) -> whether it is open now
   */
  constructor(body, actions, agents) {
    this.body = body;
    this.actions = actions;
    this.agents = agents;
    this.rows = new Map();
  }

  /** Make sure there is one row per type, in this order. */
  setTypes(types) {
    const wanted = new Set(types);
    for (const [type, row] of this.rows) {
      if (!wanted.has(type)) {
        row.tr.remove();
        this.rows.delete(type);
      }
    }
    for (const type of types) {
      const row = this.rows.get(type) || this.build(type);
      this.body.append(row.tr); // append moves it: rows follow the schedule's order
      if (row.panel) this.body.append(row.panel); // an open per-agent table stays under its row
    }
  }

  build(type) {
    const row = { type, lastKey: null, sparkKey: null };
    row.name = el("th", { scope: "row" }, el("span", { class: "type-name", text: type }));
    row.timing = el("span", { class: "sub" });
    row.counts = el("span", { class: "agent-counts", hidden: true });
    row.name.append(row.timing, row.counts);
    row.badge = el("span", { class: "badge" });
    row.stateText = el("span", { class: "sub" });
    row.progress = new ProgressBar();
    row.breaker = el("span", { class: "badge breaker", "data-breaker": "", hidden: true });
    row.fresh = el("span", { class: "badge" });
    row.last = el("div", { class: "last" });
    row.lastAgo = el("span", { class: "sub" });
    row.next = el("span", { class: "next" });
    row.nextAt = el("span", { class: "sub" });
    row.spark = el("div", { class: "spark" });
    row.tr = el(
      "tr",
      { "data-sync-type": type, "data-state": "idle" },
      row.name,
      el("td", { "data-label": "State" }, row.badge, row.stateText, row.progress.node, row.breaker),
      el("td", { "data-label": "Fresh" }, row.fresh),
      el("td", { "data-label": "Last run" }, row.last, row.lastAgo),
      el("td", { "data-label": "Next run" }, row.next, row.nextAt),
      el("td", { "data-label": "Last 60 runs" }, row.spark),
    );
    if (this.actions) {
      const act = this.actions;
      row.run = el("button", { type: "button", "data-action": "run", "aria-label": `Run ${type} now`, text: "Run now" });
      row.toggle = el("button", { type: "button", class: "quiet", "data-action": "pause" });
      row.edit = el("button", { type: "button", class: "quiet", "data-action": "edit", "aria-label": `Edit the timing of ${type}`, text: "Edit" });
      row.run.addEventListener("click", () => act.run(type, row.run));
      row.toggle.addEventListener("click", () => {
        const action = row.toggle.dataset.action;
        (action === "pause" ? act.pause : act.resume)(type, row.toggle);
      });
      row.edit.addEventListener("click", () => act.edit(type));
      // Next to the breaker's badge, so the actions column keeps its width.
      row.reset = el("button", { type: "button", class: "quiet small", "data-action": "reset-breaker", hidden: true, "aria-label": `Reset the breakers of ${type}`, text: "Reset" });
      row.reset.addEventListener("click", () => act.resetBreaker(type, row.reset));
      row.breaker.after(row.reset);
      row.tr.append(el("td", { class: "actions", "data-label": "Actions" }, row.run, row.toggle, row.edit));
    }
    this.rows.set(type, row);
    return row;
  }

  /** Bring every row up to date with the model. */
  update(model, now) {
    const queue = (model.status?.queue || []).map((q) => q.syncType);
    for (const row of this.rows.values()) this.updateRow(row, model, queue, now);
  }

  updateRow(row, model, queue, now) {
    const { type } = row;
    const st = model.status?.types?.[type] || {};
    const entry = model.schedule?.[type];
    const state = rowState(type, model);
    setAttr(row.tr, "data-state", state);
    if (entry) setText(row.timing, ` every ${entry.interval} min, +${entry.startDelay} min`);

    setAttr(row.badge, "class", `badge state-${state}`);
    const position = queue.indexOf(type) + 1;
    setText(row.badge, state === "queued" && position ? `queued #${position}` : state === "never" ? "never run" : state);
    row.runningSince = state === "running" && model.status?.running?.syncType === type
      ? parseTime(model.status.running.startedAt) : null;

    const failing = (st.consecutiveFailures || 0) >= 3;
    const fresh = st.fresh === undefined ? null : st.fresh;
    setAttr(row.fresh, "class", `badge ${fresh === false ? "stale" : failing ? "failing" : fresh ? "fresh" : ""}`);
    setText(row.fresh, fresh === false ? "stale" : failing ? `failing ×${st.consecutiveFailures}` : fresh ? "fresh" : "–");
    setAttr(row.tr, "data-fresh", fresh === null ? null : String(fresh));

    this.updateJobs(row, model);
    this.updateAgents(row, st.agents);
    const breaker = typeBreaker(model.status, type);
    row.breaker.hidden = !breaker;
    if (row.reset) row.reset.hidden = !breaker;
    setAttr(row.tr, "data-breaker", breaker ? breaker.state : null);
    if (breaker) {
      setText(row.breaker, breaker.text);
      setAttr(row.breaker, "class", `badge breaker ${breaker.state}`);
      setAttr(row.breaker, "title", breaker.title);
    }

    this.updateLast(row, st.lastRun);
    row.nextMs = entry?.enabled === false ? null : parseTime(st.nextRunAt ?? entry?.nextRunAt);
    row.paused = entry?.enabled === false;
    this.updateSpark(row, model.runsByType.get(type) || []);

    if (row.toggle) {
      const paused = entry?.enabled === false;
      setAttr(row.toggle, "data-action", paused ? "resume" : "pause");
      setText(row.toggle, paused ? "Resume" : "Pause");
      setAttr(row.toggle, "aria-label", `${paused ? "Resume" : "Pause"} ${type}'s timer`);
    }
    this.tickRow(row, now);
  }

  /** The progress bar of the type's running job (the longest-running one, if several). */
  updateJobs(row, model) {
    const jobs = (model.status?.jobs || []).filter((j) => j.syncType === row.type);
    const job = jobs.find((j) => j.progress) || null;
    const who = job?.agentId ? `${job.agentId}: ` : "";
    const more = jobs.length > 1 ? ` (+${jobs.length - 1} running)` : "";
    row.progress.show(job?.progress || null, who);
    if (job?.progress && more) row.progress.label.textContent += more;
  }

  /** A per-agent type's counts, and the button that opens its table of agents. */
  updateAgents(row, counts) {
    row.counts.hidden = !counts;
    if (!counts) return;
    if (!row.agentsButton) {
      row.countsText = el("span", { class: "sub" });
      row.agentsButton = el("button", {
        type: "button", class: "quiet small", "data-agents-toggle": "", "aria-expanded": "false",
        "aria-label": `Agents of ${row.type}`, text: "Agents ▸",
      });
      row.agentsButton.addEventListener("click", () => {
        const open = this.agents.toggle(row.type, row);
        setAttr(row.agentsButton, "aria-expanded", String(open));
        setText(row.agentsButton, open ? "Agents ▾" : "Agents ▸");
      });
      row.counts.append(row.countsText, row.agentsButton);
    }
    const parts = [`${counts.ok} ok`];
    if (counts.failed) parts.push(`${counts.failed} failed`);
    if (counts.skipped) parts.push(`${counts.skipped} skipped`);
    if (counts.running) parts.push(`${counts.running} running`);
    setText(row.countsText, `${counts.total} agent${counts.total === 1 ? "" : "s"}: ${parts.join(" · ")}`);
    for (const key of ["total", "ok", "failed", "skipped", "running"]) setAttr(row.counts, `data-${key}`, String(counts[key]));
  }

  updateLast(row, run) {
    const key = run ? `${run.finishedAt}|${run.outcome}` : "none";
    if (key === row.lastKey) return;
    row.lastKey = key;
    row.lastFinished = run ? parseTime(run.finishedAt) : null;
    if (!run) {
      row.last.replaceChildren(el("span", { class: "sub", text: "no run yet" }));
      return;
    }
    const outcome = el("span", { class: `outcome ${run.outcome}`, text: run.outcome });
    const info = el("span", { text: ` · ${duration(run.durationMs)} · ${run.trigger}` });
    if (run.error) {
      // <details>: the error opens on click or Enter, with no script of ours.
      row.last.replaceChildren(
        el("details", {}, el("summary", {}, outcome, info), el("pre", { class: "error", text: run.error })),
      );
    } else {
      row.last.replaceChildren(outcome, info);
    }
  }

  updateSpark(row, runs) {
    const recent = runs.slice(0, SPARK_RUNS).reverse(); // oldest first, left to right
    const key = recent.length ? `${recent.length}|${recent[recent.length - 1].finishedAt}` : "0";
    if (key === row.sparkKey) return;
    row.sparkKey = key;
    const longest = Math.max(1, ...recent.map((r) => r.durationMs || 0));
    const width = SPARK_W / SPARK_RUNS;
    const bars = recent.map((run, i) => {
      const h = Math.max(3, Math.round((SPARK_H - 2) * Math.sqrt((run.durationMs || 0) / longest)));
      return svg(
        "rect",
        { class: `bar ${run.outcome}`, x: (SPARK_RUNS - recent.length + i) * width, y: SPARK_H - h, width: Math.max(1, width - 0.5), height: h },
        svg("title", { text: `${clockTime(parseTime(run.startedAt))} ${run.outcome}, ${duration(run.durationMs)}` }),
      );
    });
    const ok = recent.filter((r) => r.outcome === "success").length;
    const label = recent.length ? `${ok} of the last ${recent.length} runs succeeded` : "no runs yet";
    row.spark.replaceChildren(
      svg("svg", { viewBox: `0 0 ${SPARK_W} ${SPARK_H}`, width: SPARK_W, height: SPARK_H, role: "img", "aria-label": label }, ...bars),
    );
  }

  /** The parts that move with the clock: countdowns, "ago", elapsed time. */
  tick(now) {
    for (const row of this.rows.values()) this.tickRow(row, now);
  }

  tickRow(row, now) {
    setText(row.stateText, row.runningSince ? ` ${duration(now - row.runningSince)}` : "");
    setText(row.lastAgo, row.lastFinished ? ago(now - row.lastFinished) : "");
    if (row.paused) {
      setText(row.next, "paused");
      setText(row.nextAt, "");
    } else if (row.nextMs) {
      setText(row.next, countdown(row.nextMs - now));
      setText(row.nextAt, `at ${clockTime(row.nextMs)}`);
    } else {
      setText(row.next, "–");
      setText(row.nextAt, "");
    }
  }
}
