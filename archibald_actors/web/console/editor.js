// Editing a type's interval and start delay, with the new slots previewed on the timeline
// before saving. Until the service has a preview endpoint, the preview is the grid
// arithmetic of the timers (epoch + delay + k * interval), drawn as dashed marks.

import { AuthError } from "./api.js";
import { HOUR } from "./format.js";
import { gridSlots } from "./timeline.js";

const LIMITS = { interval: [5, 180], delay: [0, 180] };
/** How far ahead the preview reaches (the widest zoom). */
const PREVIEW_AHEAD = 48 * HOUR;

export class Editor {
  /** @param {object} on save(change) -> Promise, changed(), saveFailed(what, error) */
  constructor(form, on) {
    this.form = form;
    this.on = on;
    this.type = null;
    this.interval = form.querySelector("#edit-interval");
    this.delay = form.querySelector("#edit-delay");
    this.error = form.querySelector("#editor-error");
    this.title = form.querySelector("#editor-title");
    this.saveButton = form.querySelector("[data-action=save]");
    this.listeners = [
      [form, "submit", (event) => { event.preventDefault(); this.submit(); }],
      [form, "input", () => { this.check(); this.on.changed(); }],
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
    this.on.changed();
  }

  /** Hide the form. */
  close() {
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
    if (!values || clock.epochMs === null) return { type: this.type, slots: [] };
    const now = clock.now();
    return { type: this.type, slots: gridSlots(clock.epochMs, values.interval, values.delay, now, now + PREVIEW_AHEAD) };
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
