// Banners at the top: what needs a person's attention now. Derived from the status (hold,
// orchestrator, timers, stale and failing types, the store) and from the event stream.

import { erpBanner } from "./breakers.js";
import { el } from "./dom.js";

/** The banners the model calls for, as [key, level, text, action?] (an action: an admin's button). */
export function bannersFor(model) {
  const out = [];
  if (!model.live) out.push(["stream", "warn", "Live updates interrupted: reconnecting to the service…"]);
  const status = model.status;
  if (status) {
    const erp = erpBanner(status);
    if (erp) out.push(["erp-breaker", "error", erp, model.admin ? { action: "reset-breaker", label: "Reset breakers" } : null]);
    if (status.held) out.push(["hold", "warn", "Syncs are on hold: a user action holds the ERP; runs wait until it is released."]);
    if (status.orchestrator && status.orchestrator !== "running") {
      out.push(["orchestrator", "error", `The orchestrator is ${status.orchestrator}: no sync runs meanwhile.`]);
    }
    if (status.store === "unavailable") out.push(["store", "error", "The store is unavailable: runs are not being recorded."]);
    const types = Object.entries(status.types || {});
    const failedTimers = types.filter(([, t]) => t.timer === "failed").map(([name]) => name);
    if (failedTimers.length) out.push(["timer", "error", `Timer failed: ${failedTimers.join(", ")} will not run on schedule.`]);
    const stale = types.filter(([, t]) => t.fresh === false).map(([name]) => name);
    if (stale.length) out.push(["stale", "warn", `Stale: ${stale.join(", ")} not synced successfully for too long.`]);
    const failing = types.filter(([, t]) => (t.consecutiveFailures || 0) >= 3).map(([name]) => name);
    if (failing.length) out.push(["failing", "warn", `Failing: the last runs of ${failing.join(", ")} failed.`]);
  }
  for (const [key, text] of model.notices) out.push([key, "error", text]);
  return out;
}

/**
 * Show `banners` in `box`, touching the DOM only when they changed (it is a live region).
 * A banner's button calls `act(action, button)`.
 */
export function showBanners(box, banners, act = null) {
  const key = JSON.stringify(banners);
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(
    ...banners.map(([name, level, text, action]) => {
      const banner = el("div", { class: `banner ${level}`, "data-banner": name }, el("span", { text }));
      if (action && act) {
        const button = el("button", { type: "button", class: "quiet", "data-action": action.action, text: action.label });
        button.addEventListener("click", () => act(action.action, button));
        banner.append(button);
      }
      return banner;
    }),
  );
}
