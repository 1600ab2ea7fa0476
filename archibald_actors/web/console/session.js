// The token: taken once from ?token= (then dropped from the address bar) or pasted, kept in
// sessionStorage (this tab only). Its payload is decoded for display only: the server checks
// the signature and enforces every rule.

const KEY = "archibald-sync.token";

/** Move a ?token= from the address bar into sessionStorage; true if there was one. */
export function adoptTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token === null) return false;
  url.searchParams.delete("token");
  // replaceState: no history entry keeps the token, and a reload does not resend it.
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  if (token.trim()) store(token.trim());
  return true;
}

export function load() {
  return window.sessionStorage.getItem(KEY);
}

export function store(token) {
  window.sessionStorage.setItem(KEY, token);
}

export function forget() {
  window.sessionStorage.removeItem(KEY);
}

/** The JWT's claims ({} when it is not a readable JWT); for display, never trusted. */
export function claims(token) {
  const part = (token || "").split(".")[1];
  if (!part) return {};
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
    const value = JSON.parse(new TextDecoder().decode(bytes));
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}
