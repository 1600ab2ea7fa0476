// How times and durations read on the page. Every time is on the service's clock.

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** "42 s", "3 min 5 s", "1 h 20 min". */
export function duration(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

/** "just now", "4 min ago", "2 h ago". */
export function ago(ms) {
  if (ms < 5000) return "just now";
  if (ms < MINUTE) return `${Math.round(ms / 1000)} s ago`;
  if (ms < HOUR) return `${Math.round(ms / MINUTE)} min ago`;
  if (ms < 48 * HOUR) return `${(ms / HOUR).toFixed(ms < 10 * HOUR ? 1 : 0)} h ago`;
  return `${Math.round(ms / (24 * HOUR))} d ago`;
}

/** A live countdown: "in 4:05", "in 1:02:03", "due". */
export function countdown(ms) {
  if (ms <= 0) return "due";
  const total = Math.ceil(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `in ${h}:${String(m).padStart(2, "0")}:${s}` : `in ${m}:${s}`;
}

const two = (n) => (n < 10 ? `0${n}` : `${n}`);
const DAY_S = 86400;
// Times are formatted by hand from the local offset, read once a minute: with
// toLocaleTimeString (a new formatter per call) the titles of one timeline took 20-80 ms
// (Chromium's profiler, bench/console_load.py). Near a DST change a time can be an hour
// off for up to a minute.
let offset = { at: -Infinity, ms: 0 };

function localOffset(ms) {
  if (Math.abs(ms - offset.at) > MINUTE) offset = { at: ms, ms: -new Date(ms).getTimezoneOffset() * MINUTE };
  return offset.ms;
}

/** Local clock time "14:05" (with seconds when asked). */
export function clockTime(ms, seconds = false) {
  const t = (((Math.floor((ms + localOffset(ms)) / 1000)) % DAY_S) + DAY_S) % DAY_S;
  const hm = `${two(Math.floor(t / 3600))}:${two(Math.floor((t % 3600) / 60))}`;
  return seconds ? `${hm}:${two(t % 60)}` : hm;
}

/** The local time zone's offset from UTC at `ms`, in ms (axis ticks fall on local round times). */
export function localShift(ms) {
  return localOffset(ms);
}

/** Milliseconds of an ISO time, or null. */
export function parseTime(iso) {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

/** ISO time with milliseconds, as the API writes it. */
export function isoTime(ms) {
  return new Date(ms).toISOString();
}

export { HOUR, MINUTE };
