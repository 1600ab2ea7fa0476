// Editing a type's interval and start delay, with the new slots previewed on the timeline
// before saving. The new slots are the grid arithmetic of the timers (epoch + delay +
// k * interval), drawn at once as dashed marks; the service's preview (POST
// /schedule/preview, a simulation on the real actors) then adds the predicted runs and the
// collisions. A service without that endpoint (404) keeps the grid alone.

import { AuthError } from "./api.js";
import { HOUR, clockTime, parseTime } from "./format.js";
import { gridSlots } from "./timeline.js";

const LIMITS = { interval: [5, 180], delay: [0, 180] };
/** How far ahead the preview reaches (the widest zoom). */
const PREVIEW_AHEAD = 48 * HOUR;
/** Real ms of quiet typing before the service is asked. */
const PLAN_DEBOUNCE_MS = 300;
const GRID_NOTE = "The dashed marks on the timeline preview the new slots.";

export class Editor {
  /**
   * @param {object} on save(change) -> Promise, changed(), saveFailed(what, error),
   *   plan(change) -> Promise of the service's preview (404: none)
   */
  constructor(form, on) {
    this.form = form;
    this.on = on;
    this.type = null;
    this.plan = null; // {key, answer} of the latest preview asked
    this.planTimer = null;
    this.noPlans = false; // the service answered 404: grid only from now on
    this.note = form.querySelector("#editor-note");
    this.interval = form.querySelector("#edit-interval");
    this.delay = form.querySelector("#edit-delay");
    this.error = form.querySelector("#editor-error");
    this.title = form.querySelector("#editor-title");
    this.saveButton = form.querySelector("[data-action=save]");
    this.listeners = [
      [form, "submit", (event) => { event.preventDefault(); this.submit(); }],
      [form, "input", () => { this.check(); this.askPlan(); this.on.changed(); }],
      [form, "keydown", (event) => { if (event.key === "Escape") this.cancel(); }],
      [form.querySelector("#edit-cancel"), "click", () => this.cancel()],
    ];
    for (const [node, name, fn] of this.listeners) node.addEventListener(name, fn);
  }

  open(type, entry) {
    this.type = type;
    this.title.textContent = `Timing of ${type}`;
    this.interval.value = entry ? entry.interval : "";
    this.delay.value = entry ? entry.startDelay : "";
    this.error.textContent = "";
    this.form.hidden = false;
    this.form.dataset.syncType = type;
    this.interval.focus();
    this.interval.select();
    this.askPlan();
    this.on.changed();
  }

  /** The values as a POST /schedule body, and a key that tells two of them apart. */
  change() {
    const values = this.check();
    if (!values || !this.type) return null;
    return { syncType: this.type, intervalMinutes: values.interval, startDelayMinutes: values.delay };
  }

  /** Ask the service to simulate the edited values, once the typing pauses. */
  askPlan() {
    clearTimeout(this.planTimer);
    const change = this.change();
    if (!change || this.noPlans) {
      this.plan = null;
      this.showNote();
      return;
    }
    const key = JSON.stringify(change);
    if (this.plan?.key === key) return;
    this.plan = { key, answer: null };
    this.showNote();
    this.planTimer = setTimeout(async () => {
      let answer = null;
      try {
        answer = await this.on.plan(change);
      } catch (error) {
        if (this.plan?.key !== key) return;
        if (error.status === 404) this.noPlans = true;
        this.plan = error.status === 404 ? null : { key, answer: null, error: error.message };
        this.showNote();
        return;
      }
      if (this.plan?.key !== key) return; // the values changed meanwhile
      this.plan = { key, answer };
      this.showNote();
      this.on.changed();
    }, PLAN_DEBOUNCE_MS);
  }

  /** What the preview is based on, in words; the collisions it found, listed. */
  showNote() {
    const plan = this.plan;
    let text = GRID_NOTE;
    if (this.noPlans) text = `${GRID_NOTE} (This service predicts no collisions: it has no preview endpoint.)`;
    else if (plan?.error) text = `${GRID_NOTE} The service's preview failed: ${plan.error}`;
    else if (plan && !plan.answer) text = `${GRID_NOTE} Asking the service for the predicted runs…`;
    else if (plan?.answer) text = collisionText(plan.answer, this.type);
    this.note.textContent = text;
    this.form.dataset.plan = plan?.answer ? "ready" : this.noPlans ? "grid" : plan ? "pending" : "none";
  }

  /** Hide the form. */
  close() {
    clearTimeout(this.planTimer);
    this.plan = null;
    this.type = null;
    this.form.hidden = true;
    delete this.form.dataset.syncType;
  }

  /** Hide the form and let go of it (on signing out: the next admin gets a new Editor). */
  dispose() {
    this.close();
    for (const [node, name, fn] of this.listeners) node.removeEventListener(name, fn);
  }

  cancel() {
    this.close();
    this.on.changed();
  }

  /** The form's numbers, or null with the reason shown when one is out of range. */
  check() {
    const values = { interval: Number(this.interval.value), delay: Number(this.delay.value) };
    for (const [name, [low, high]] of Object.entries(LIMITS)) {
      const raw = name === "interval" ? this.interval.value : this.delay.value;
      if (raw === "" || !Number.isFinite(values[name]) || values[name] < low || values[name] > high) {
        this.error.textContent = `${name === "interval" ? "Interval" : "Start delay"} must be between ${low} and ${high} minutes.`;
        return null;
      }
    }
    this.error.textContent = "";
    return values;
  }

  /** The edited type's future slots under the form's values (null when not editing). */
  preview(model, clock) {
    if (!this.type) return null;
    const values = this.check();
    if (!values || clock.epochMs === null) return { type: this.type, slots: [], plan: null, key: "invalid" };
    const now = clock.now();
    const slots = gridSlots(clock.epochMs, values.interval, values.delay, now, now + PREVIEW_AHEAD);
    const plan = this.plan?.answer && this.plan.key === JSON.stringify(this.change()) ? this.plan.answer : null;
    return { type: this.type, slots, plan, key: `${this.plan?.key}|${plan ? plan.from : ""}` };
  }

  async submit() {
    const values = this.check();
    if (!values || !this.type) return;
    this.saveButton.disabled = true;
    try {
      await this.on.save({ syncType: this.type, intervalMinutes: values.interval, startDelayMinutes: values.delay });
      this.close();
      this.on.changed();
    } catch (error) {
      if (error instanceof AuthError) this.on.saveFailed("Save", error);
      else this.error.textContent = `Not saved: ${error.message}`;
    } finally {
      this.saveButton.disabled = false;
    }
  }
}

/** "2 collisions in the next 6 h, 2 with orders: orders and prices at 13:10 ..." */
export function collisionText(answer, type) {
  const collisions = answer.collisions || [];
  const hours = `${answer.hours} h`;
  if (!collisions.length) return `The service's simulation: no collision in the next ${hours} with these values.`;
  const mine = collisions.filter((c) => c.types.includes(type));
  const first = mine[0] || collisions[0];
  const at = parseTime(first.at);
  // Waits of slots from the preview's start on (a slot the retune puts in the past is not one).
  const from = parseTime(answer.from) ?? -Infinity;
  const wait = Math.max(0, ...(answer.runs || [])
    .filter((r) => r.syncType === type && (parseTime(r.scheduledAt) ?? -Infinity) >= from)
    .map((r) => r.waitSeconds || 0));
  const waits = wait >= 1 ? ` ${type} would wait up to ${Math.round(wait)} s.` : "";
  return `The service's simulation: ${collisions.length} collision${collisions.length > 1 ? "s" : ""} in the next ${hours}`
    + `, ${mine.length} with ${type}; the first: ${first.types.join(" and ")} at ${at === null ? "?" : clockTime(at)} (red marks).${waits}`;
}
