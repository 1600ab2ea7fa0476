// The service's clock in the browser. Times in the API are schedule time, which runs
// `speed` times faster than real time under `serve --speed`; the page reads the service's
// clock once per (re)connection and extrapolates it between readings.

import { parseTime } from "./format.js";

export class ServiceClock {
  constructor(url) {
    this.url = url;
    this.baseMs = Date.now();
    this.basePerf = performance.now();
    this.speed = 1;
    this.epochMs = null;
  }

  /** Read the service's clock (no credential needed: it tells only the time). */
  async sync() {
    const sent = performance.now();
    const response = await fetch(this.url, { cache: "no-store", credentials: "omit" });
    if (!response.ok) throw new Error(`clock: ${response.status}`);
    const data = await response.json();
    const received = performance.now();
    const now = parseTime(data.now);
    if (now === null) throw new Error("clock: no time");
    this.speed = typeof data.speed === "number" && data.speed >= 0 ? data.speed : 1;
    // The reading was taken about half-way through the round trip.
    this.baseMs = now + ((received - sent) / 2) * this.speed;
    this.basePerf = received;
    this.epochMs = parseTime(data.epoch);
  }

  /** Milliseconds of the service's "now". */
  now() {
    return this.baseMs + (performance.now() - this.basePerf) * this.speed;
  }
}
