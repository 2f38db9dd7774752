// The REST API with the session's tokens: refresh before expiry (rotation: every refresh
// returns a new pair, which replaces the old one), retry once on 401, errors in words.

const PREFIX = "/api/v1";
const KEY = "opswire.session";
const listeners = new Set();
let session = load();
let refreshing = null;
let refreshTimer = null;

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function load() {
  try { return JSON.parse(localStorage.getItem(KEY)) || null; } catch { return null; }
}

function store(pair) {
  session = pair ? {
    access: pair.access_token, refresh: pair.refresh_token,
    expiresAt: Date.now() + (pair.expires_in || 900) * 1000,
  } : null;
  if (session) localStorage.setItem(KEY, JSON.stringify(session));
  else localStorage.removeItem(KEY);
  schedule();
  for (const listener of listeners) listener(session);
}

function schedule() {
  clearTimeout(refreshTimer);
  if (!session) return;
  // Well before expiry, so open sockets can be renewed with the new token in time.
  const inMs = Math.max(5000, (session.expiresAt - Date.now()) * 0.75);
  refreshTimer = setTimeout(() => refresh().catch(() => {}), inMs);
}

export function signedIn() { return session !== null; }
export function accessToken() { return session?.access ?? null; }
export function onSession(listener) { listeners.add(listener); return () => listeners.delete(listener); }

export async function refresh() {
  if (!session) throw new ApiError(401, "Not signed in");
  if (!refreshing) {
    const token = session.refresh;
    refreshing = call("POST", "/auth/refresh", { refresh_token: token }, false)
      .then((pair) => { store(pair); return pair; })
      .catch((error) => {
        if (error.status === 401 || error.status === 422) store(null);
        throw error;
      })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

function words(status, body) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".") || "input"}: ${d.msg}`).join("; ");
  }
  if (status === 429) return "Too many requests: try again in a moment";
  if (status === 503) return "A service is unavailable right now: try again shortly";
  return `Request failed (HTTP ${status})`;
}

async function call(method, path, body, auth, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (auth && session) init.headers.authorization = `Bearer ${session.access}`;
  let response;
  try {
    response = await fetch(PREFIX + path, init);
  } catch {
    throw new ApiError(0, "Cannot reach the gateway: check your connection");
  }
  if (response.status === 204) return null;
  let parsed = null;
  const text = await response.text();
  if (text) { try { parsed = JSON.parse(text); } catch { parsed = null; } }
  if (!response.ok) {
    let message = words(response.status, parsed);
    const retry = response.headers.get("retry-after");
    if (response.status === 429 && retry) message += ` (retry in ${retry} s)`;
    throw new ApiError(response.status, message);
  }
  return parsed;
}

export async function api(method, path, body, headers) {
  try {
    return await call(method, path, body, true, headers);
  } catch (error) {
    if (error.status !== 401 || !session) throw error;
    try { await refresh(); } catch { throw new ApiError(401, "Your session ended: please sign in again"); }
    return call(method, path, body, true, headers);
  }
}

export async function login(email, password) {
  store(await call("POST", "/auth/login", { email, password }, false));
}

export async function register(email, password, fullName) {
  const body = { email, password };
  if (fullName) body.full_name = fullName;
  await call("POST", "/auth/register", body, false);
}

export async function logout() {
  if (session) {
    // Ends the session on the server where that exists; signing out here happens regardless.
    await call("POST", "/auth/logout", { refresh_token: session.refresh }, true).catch(() => {});
  }
  store(null);
}

schedule();
