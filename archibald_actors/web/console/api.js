// The public HTTP API, the same one every other client uses. A 401 becomes an AuthError,
// which sends the page back to the sign-in box with the server's reason.

export class AuthError extends Error {}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class Api {
  /** @param {string} prefix where the API is mounted, like "/api/sync" */
  constructor(prefix, token) {
    this.prefix = prefix;
    this.token = token;
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(this.prefix + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (error) {
      throw new ApiError(0, `the service cannot be reached (${error.message})`);
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    const message = (payload && payload.error) || `${response.status} ${response.statusText}`;
    if (response.status === 401) throw new AuthError(message);
    if (!response.ok || !payload || payload.success !== true) throw new ApiError(response.status, message);
    return payload.data;
  }

  schedule() {
    return this.request("GET", "/schedule");
  }

  status() {
    return this.request("GET", "/status");
  }

  history(limit = 600) {
    return this.request("GET", `/history?limit=${limit}`);
  }

  /** A manual run of a type; with `agentId`, only that agent's job of a per-agent type. */
  run(syncType, agentId) {
    const body = agentId ? { agentId } : undefined;
    return this.request("POST", `/${encodeURIComponent(syncType)}/run`, body);
  }

  agents() {
    return this.request("GET", "/agents");
  }

  /** One agent with its state per per-agent type: lastRun, nextRunAt, fresh, breaker. */
  agent(agentId) {
    return this.request("GET", `/agents/${encodeURIComponent(agentId)}`);
  }

  /** Close breakers: of a type, an agent, a pair, or (empty scope) all of them and the ERP-wide one. */
  resetBreakers(scope = {}) {
    return this.request("POST", "/breakers/reset", scope);
  }

  /** The next `hours` simulated under a retune (applies nothing). */
  preview(change, hours) {
    return this.request("POST", `/schedule/preview?hours=${hours}`, change);
  }

  retune(change) {
    return this.request("POST", "/schedule", change);
  }

  /** The URL of the event stream; EventSource cannot send headers, hence ?token=. */
  eventsUrl() {
    return `${this.prefix}/events?token=${encodeURIComponent(this.token)}`;
  }
}
