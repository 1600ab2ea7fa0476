// The timeline: one lane per type on a shared time axis (3 h back to 6 h ahead by default,
// zoomable), past runs as bars from their real start to end coloured by outcome, the wait
// before each run as a thin line, future slots as marks, a retune's preview as dashed
// marks, and a "now" line. Hovering a bar or a mark shows its <title>.

import { svg } from "./dom.js";
import { HOUR, MINUTE, clockTime, duration, isoTime, localShift, parseTime } from "./format.js";

/** Zoom levels: how far back and ahead of now the axis reaches. */
export const ZOOMS = [
  { back: 20 * MINUTE, ahead: 40 * MINUTE },
  { back: HOUR, ahead: 2 * HOUR },
  { back: 3 * HOUR, ahead: 6 * HOUR },
  { back: 12 * HOUR, ahead: 24 * HOUR },
  { back: 24 * HOUR, ahead: 48 * HOUR },
];
export const DEFAULT_ZOOM = 2;

const TICK_STEPS = [5, 10, 15, 30, 60, 120, 180, 360, 720, 1440].map((m) => m * MINUTE);
const AXIS_H = 22;
const LANE_H = 26;
const BAR_H = 14;
const MIN_TICK_PX = 72;
/** Marks drawn per lane at most (a 5-minute interval over 48 hours is 576). */
const MAX_SLOTS = 600;

/**
 * Future slots on a type's grid: epoch + delay + k * interval, strictly after `after`, up to `until`.
 * The same arithmetic as the service's timers (first slot after now).
 */
export function gridSlots(epochMs, intervalMin, delayMin, after, until) {
  const step = intervalMin * MINUTE;
  const first = epochMs + delayMin * MINUTE;
  if (!(step > 0)) return [];
  let k = first > after ? 0 : Math.floor((after - first) / step) + 1;
  const slots = [];
  for (let t = first + k * step; t <= until && slots.length < MAX_SLOTS; k += 1, t = first + k * step) slots.push(t);
  return slots;
}

/**
 * Slots from the next run on: nextRunAt + k * interval, from `after` up to `until`.
 * `nextRunAt` comes from the status (read again on every event) before the schedule (read
 * when it changes), and a slot that has passed since it was read is skipped.
 */
export function nextSlots(entry, nextRunAt, after, until) {
  let t = parseTime(nextRunAt ?? entry?.nextRunAt);
  if (!entry || entry.enabled === false || t === null) return [];
  const step = entry.interval * MINUTE;
  if (!(step > 0)) return [];
  if (t < after) t += Math.ceil((after - t) / step) * step;
  const slots = [];
  for (; t <= until && slots.length < MAX_SLOTS; t += step) slots.push(t);
  return slots;
}

export class Timeline {
  constructor(container, spanLabel) {
    this.container = container;
    this.spanLabel = spanLabel;
    this.zoom = DEFAULT_ZOOM;
    this.drawn = { now: -Infinity, pxPerMs: 0 };
    this.key = "";
  }

  /** What the picture is drawn from besides the clock: an unchanged key and clock skip a redraw. */
  inputs(model, width) {
    const status = model.status || {};
    const first = model.history[0];
    const jobs = (status.jobs || (status.running ? [status.running] : [])).map((j) => `${j.syncType}/${j.agentId}/${j.startedAt}`);
    const next = Object.values(status.types || {}).map((t) => t.nextRunAt);
    const preview = model.preview ? `${model.preview.type}|${model.preview.key}|${model.preview.slots[0]}` : "";
    return [this.zoom, width, model.types.join(), model.history.length, first?.startedAt, first?.agentId,
      jobs.join(), next.join(), JSON.stringify(model.schedule), preview].join("§");
  }

  /** Whether the clock moved the picture by half a pixel or more since it was drawn. At
   * speed 1 that is every 15 s or so; redrawing every second would only cost CPU. */
  due(now) {
    return Math.abs(now - this.drawn.now) * this.drawn.pxPerMs >= 0.5;
  }

  zoomBy(delta) {
    this.zoom = Math.max(0, Math.min(ZOOMS.length - 1, this.zoom + delta));
  }

  /**
   * @param {object} model types, schedule, status, runsByType, preview ({type, slots} or null)
   * @param {number} now the service's now, in ms
   */
  render(model, now) {
    const width = Math.max(300, this.container.clientWidth || 800);
    // A status read after every event mostly changes nothing drawn here (progress, counts,
    // breakers): rebuilding the SVG each time was the page's longest task.
    const key = this.inputs(model, width);
    if (key === this.key && !this.due(now)) return;
    this.key = key;
    // Room for the longest type name (bold 11 px: about 7 px a character).
    const labelW = Math.min(150, 16 + 7 * Math.max(4, ...model.types.map((t) => t.length)));
    const { back, ahead } = ZOOMS[this.zoom];
    const start = now - back;
    const end = now + ahead;
    const plotW = width - labelW - 10;
    const x = (t) => labelW + ((t - start) / (end - start)) * plotW;
    this.drawn = { now, pxPerMs: plotW / (end - start) };
    const clampX = (t) => Math.max(labelW, Math.min(labelW + plotW, x(t)));
    const types = model.types;
    const height = AXIS_H + types.length * LANE_H + 6;

    const root = svg("svg", {
      "data-timeline": "",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: "group",
      "aria-label": `Timeline from ${clockTime(start)} to ${clockTime(end)}: past runs and upcoming slots per type`,
    });
    root.append(this.axis(start, end, x, height, labelW, plotW, x(now)));

    types.forEach((type, lane) => {
      const top = AXIS_H + lane * LANE_H;
      const mid = top + LANE_H / 2;
      const g = svg("g", { class: "lane", "data-lane": type });
      g.append(
        svg("rect", { class: lane % 2 ? "lane-bg odd" : "lane-bg", x: labelW, y: top, width: plotW, height: LANE_H }),
        svg("text", { class: "lane-label", x: labelW - 8, y: mid + 4, "text-anchor": "end", text: type }),
      );
      for (const run of model.runsByType.get(type) || []) {
        const s = parseTime(run.startedAt);
        const f = parseTime(run.finishedAt);
        if (s === null || f === null || f < start || s > end) continue;
        const asked = parseTime(run.scheduledAt ?? run.requestedAt);
        if (asked !== null && x(s) - x(asked) >= 2) {
          g.append(svg("line", { class: "wait", x1: clampX(asked), x2: clampX(s), y1: mid, y2: mid }));
        }
        const bar = svg("rect", {
          class: `run ${run.outcome}`,
          "data-run": run.startedAt,
          "data-sync-type": type,
          "data-outcome": run.outcome,
          x: clampX(s),
          y: mid - BAR_H / 2,
          width: Math.max(2, clampX(f) - clampX(s)),
          height: BAR_H,
          rx: 2,
        });
        const waited = asked !== null && s - asked >= 1000 ? `, waited ${duration(s - asked)}` : "";
        const error = run.error ? `\n${run.error}` : "";
        bar.append(svg("title", {
          text: `${type}: ${run.outcome} (${run.trigger})\n${clockTime(s, true)} to ${clockTime(f, true)}, ${duration(run.durationMs)}${waited}${error}`,
        }));
        g.append(bar);
      }
      const status = model.status;
      const jobs = status?.jobs || (status?.running ? [status.running] : []);
      for (const running of jobs) {
        if (running.syncType !== type) continue;
        const s = parseTime(running.startedAt);
        if (s !== null) {
          const bar = svg("rect", {
            class: "run running",
            "data-run": "running",
            "data-sync-type": type,
            x: clampX(s),
            y: mid - BAR_H / 2,
            width: Math.max(2, clampX(now) - clampX(s)),
            height: BAR_H,
            rx: 2,
          });
          const who = running.agentId ? ` for ${running.agentId}` : "";
          bar.append(svg("title", { text: `${type}${who}: running since ${clockTime(s, true)} (${running.trigger})` }));
          g.append(bar);
        }
      }
      const previewing = model.preview && model.preview.type === type;
      const nextRunAt = model.status?.types?.[type]?.nextRunAt;
      for (const t of nextSlots(model.schedule?.[type], nextRunAt, now, end)) {
        g.append(this.mark(x(t), mid, previewing ? "slot replaced" : "slot", {
          "data-slot": "",
          "data-sync-type": type,
          "data-at": isoTime(t),
        }, `${type}: slot at ${clockTime(t, true)}${previewing ? " (before the edit)" : ""}`));
      }
      if (model.preview?.plan) this.plan(g, type, model.preview, x, clampX, mid, start, end);
      if (previewing) {
        for (const t of model.preview.slots) {
          if (t < start || t > end) continue;
          g.append(this.mark(x(t), mid, "slot preview", {
            "data-preview-slot": "",
            "data-sync-type": type,
            "data-at": isoTime(t),
          }, `${type}: preview, slot at ${clockTime(t, true)} once saved`));
        }
      }
      root.append(g);
    });

    const nx = x(now);
    root.append(
      svg("line", { class: "now", "data-now": "", x1: nx, x2: nx, y1: AXIS_H - 4, y2: height - 2 }),
      svg("text", { class: "now-label", x: nx, y: AXIS_H - 7, "text-anchor": "middle", text: "now" }),
    );
    this.container.replaceChildren(root);
    if (this.spanLabel) {
      this.spanLabel.textContent = `${duration(back)} back, ${duration(ahead)} ahead`;
    }
  }

  /** The service's preview: predicted runs as outlined bars, collisions as red rings. */
  plan(g, type, preview, x, clampX, mid, start, end) {
    const { plan } = preview;
    for (const run of plan.runs || []) {
      if (run.syncType !== type) continue;
      const s = parseTime(run.startedAt);
      const f = parseTime(run.finishedAt) ?? end;
      if (s === null || f < start || s > end) continue;
      const slot = parseTime(run.scheduledAt);
      if (slot !== null && x(s) - x(slot) >= 2) {
        g.append(svg("line", { class: "wait", x1: clampX(slot), x2: clampX(s), y1: mid, y2: mid }));
      }
      const who = run.agentId ? ` for ${run.agentId}` : "";
      const waited = run.waitSeconds >= 1 ? `, after waiting ${duration(run.waitSeconds * 1000)} behind ${run.behind.join(", ")}` : "";
      g.append(svg("rect", {
        class: "predicted", "data-preview-run": "", "data-sync-type": type,
        x: clampX(s), y: mid - BAR_H / 2 + 2, width: Math.max(2, clampX(f) - clampX(s)), height: BAR_H - 4, rx: 2,
      }, svg("title", { text: `${type}${who}: predicted run at ${clockTime(s, true)}${waited}` })));
    }
    for (const collision of plan.collisions || []) {
      const t = parseTime(collision.at);
      if (t === null || t < start || t > end || !collision.types.includes(type)) continue;
      const mine = collision.types.includes(preview.type);
      const waits = collision.waited.map((w) => `${w.syncType}${w.agentId ? ` (${w.agentId})` : ""} waits ${duration(w.waitSeconds * 1000)}`);
      g.append(svg("circle", {
        class: mine ? "collision mine" : "collision", "data-collision": "", "data-sync-type": type, "data-at": isoTime(t),
        cx: x(t), cy: mid, r: this.drawn.pxPerMs * HOUR < 120 ? 4 : 7, // smaller on a phone
      }, svg("title", { text: `Predicted collision at ${clockTime(t, true)}: ${collision.types.join(", ")}${waits.length ? `\n${waits.join("\n")}` : ""}` })));
    }
  }

  mark(cx, mid, cls, attrs, title) {
    const r = 5;
    return svg(
      "path",
      { class: cls, d: `M${cx},${mid - r}L${cx + r},${mid}L${cx},${mid + r}L${cx - r},${mid}Z`, ...attrs },
      svg("title", { text: title }),
    );
  }

  axis(start, end, x, height, labelW, plotW, nowX) {
    const g = svg("g", { class: "axis" });
    const pxPerMs = plotW / (end - start);
    const step = TICK_STEPS.find((s) => s * pxPerMs >= MIN_TICK_PX) || TICK_STEPS[TICK_STEPS.length - 1];
    const offset = localShift(start); // ticks on local round times
    for (let t = Math.ceil((start + offset) / step) * step - offset; t <= end; t += step) {
      const tx = x(t);
      if (tx < labelW + 14 || tx > labelW + plotW - 14) continue;
      g.append(svg("line", { class: "tick", x1: tx, x2: tx, y1: AXIS_H - 2, y2: height - 2 }));
      if (Math.abs(tx - nowX) >= 34) {
        // the "now" label takes the axis there
        g.append(svg("text", { class: "tick-label", x: tx, y: AXIS_H - 8, "text-anchor": "middle", text: clockTime(t) }));
      }
    }
    return g;
  }
}
