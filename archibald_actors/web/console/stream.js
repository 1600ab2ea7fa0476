// One EventSource on the API's event stream drives every update of the page.
//
// The browser reconnects by itself after a dropped stream (sending Last-Event-ID); when it
// gives up (an answer that is not a stream, like a 401 or a 503), the page opens a new one
// after a growing delay. Every drop is reported, so the page can say it is not live.

/** Event types the service publishes (web/shapes.py EventType; a test keeps the two equal). */
export const EVENT_TYPES = [
  "sync.started",
  "sync.completed",
  "sync.failed",
  "sync.cancelled",
  "sync.skipped",
  "sync.progress",
  "breaker.opened",
  "breaker.half_open",
  "breaker.closed",
  "agent.changed",
  "agent.removed",
  "queue.changed",
  "schedule.changed",
  "child.restarted",
  "child.failed",
  "hold.taken",
  "hold.released",
  "leadership.changed",
];

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;

export class LiveStream {
  /**
   * @param {() => string} url the stream's URL (with ?token=)
   * @param {object} on callbacks: event(type, data), open(), down(), closed() -> Promise<boolean>
   *   (closed: the browser gave up; resolve false to stay closed, e.g. the token is refused),
   *   expired(), overflow()
   */
  constructor(url, on) {
    this.url = url;
    this.on = on;
    this.source = null;
    this.retryMs = RETRY_MIN_MS;
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
  }

  open() {
    if (this.stopped) return;
    const source = new EventSource(this.url());
    this.source = source;
    source.addEventListener("open", () => {
      this.retryMs = RETRY_MIN_MS;
      this.on.open();
    });
    source.addEventListener("error", () => this.failed(source));
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (message) => {
        let data = {};
        try {
          data = JSON.parse(message.data);
        } catch {
          data = {};
        }
        this.on.event(type, data);
      });
    }
    source.addEventListener("expired", () => {
      this.stop();
      this.on.expired();
    });
    source.addEventListener("overflow", () => this.on.overflow());
  }

  async failed(source) {
    if (this.stopped || source !== this.source) return;
    this.on.down();
    if (source.readyState !== EventSource.CLOSED) return; // the browser is reconnecting
    source.close();
    const again = await this.on.closed();
    if (!again || this.stopped || source !== this.source) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }
}
