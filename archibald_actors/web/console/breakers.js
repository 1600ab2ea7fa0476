// Circuit breakers as the status shows them: `breakers.pairs` lists every (type, lane) pair
// that is failing, open or half-open (lane: an agent, or null for the service's own), and
// `breakers.erp` is the ERP-wide breaker that holds every job while open.

import { clockTime, parseTime } from "./format.js";

const NOT_CLOSED = new Set(["open", "half_open"]);

/** The pairs of `type` that are open or half-open. */
export function openPairs(status, type) {
  return (status?.breakers?.pairs || []).filter((p) => p.syncType === type && NOT_CLOSED.has(p.state));
}

/** "open until 14:05", "half-open": a breaker's state in words. */
export function breakerText(breaker) {
  if (!breaker || !NOT_CLOSED.has(breaker.state)) return "";
  if (breaker.state === "half_open") return "half-open";
  const until = parseTime(breaker.until);
  return until === null ? "open" : `open until ${clockTime(until)}`;
}

/**
 * What a type's row says of its breakers: the shared lane's state, or how many agents'
 * breakers are open; null when all are closed.
 */
export function typeBreaker(status, type) {
  const pairs = openPairs(status, type);
  if (!pairs.length) return null;
  const shared = pairs.find((p) => p.agentId === null || p.agentId === undefined);
  if (shared) return { state: shared.state, text: `breaker ${breakerText(shared)}`, title: `${shared.failures} failed tries in a row` };
  const open = pairs.filter((p) => p.state === "open").length;
  const text = `${pairs.length} agent breaker${pairs.length > 1 ? "s" : ""} ${open === pairs.length ? "open" : "not closed"}`;
  return { state: open ? "open" : "half_open", text, title: pairs.map((p) => `${p.agentId}: ${breakerText(p)}`).join("\n") };
}

/** The ERP-wide breaker's banner text, or null while it is closed. */
export function erpBanner(status) {
  const erp = status?.breakers?.erp;
  if (!erp || erp.state !== "open") return null;
  const until = parseTime(erp.until);
  const when = until === null ? "" : ` until ${clockTime(until)}`;
  return `The ERP-wide breaker is open: ${erp.lanes} lanes failed within 10 minutes, so every job waits${when}.`;
}
