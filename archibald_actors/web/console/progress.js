// A running job's progress (its handler's latest ctx.progress) as a native <progress> with a
// label. The status carries it per job; sync.progress events move it between two reads.

import { el, setAttr, setText } from "./dom.js";

const number = (n) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

/** "42 / 100 rows", "42 / 100 · parsing (42%)", "17 done" without a total. */
export function progressLabel(progress) {
  if (!progress) return "";
  const { done, total, message, percentage } = progress;
  const amount = total ? `${number(done)} / ${number(total)}` : `${number(done)} done`;
  const note = message ? ` ${message}` : total ? " rows" : "";
  const share = total && percentage !== null && percentage !== undefined ? ` (${Math.round(percentage)}%)` : "";
  return `${amount}${note}${share}`;
}

/** A bar and its label; `show(progress, who)` updates them in place (hidden without progress). */
export class ProgressBar {
  constructor() {
    this.bar = el("progress", { max: "100" });
    this.label = el("span", { class: "progress-label" });
    this.node = el("span", { class: "progress", "data-progress": "", hidden: true }, this.bar, this.label);
  }

  show(progress, prefix = "") {
    this.node.hidden = !progress;
    if (!progress) return;
    const known = progress.total && progress.percentage !== null && progress.percentage !== undefined;
    // A <progress> without a value is indeterminate: a total the handler does not know.
    if (known) setAttr(this.bar, "value", String(Math.min(100, Math.max(0, progress.percentage))));
    else setAttr(this.bar, "value", null);
    const text = prefix + progressLabel(progress);
    setText(this.label, text);
    setAttr(this.bar, "aria-label", `Progress: ${text}`);
    setAttr(this.node, "data-done", String(progress.done));
  }
}
