// Dashboard WebSockets (DESIGN §3): auth frame first, automatic reconnect with exponential
// backoff and full jitter, renewal with a new auth frame when the token is refreshed,
// and for logs a resume point (`since`) so nothing is missed after a reconnect.

import { accessToken, onSession, refresh } from "./api.js";

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 30000;
const PING_MS = 25000;
const sockets = new Set();
const indicatorListeners = new Set();
// Set when this gateway does not (yet) accept `since` or a second auth frame: fall back
// to a REST backfill / a fresh connection instead.
const fallback = { since: false, renew: false };

export function onIndicator(listener) { indicatorListeners.add(listener); listener(overall()); }

function overall() {
  if (!navigator.onLine) return "down";
  if (sockets.size === 0) return "idle";
  const states = [...sockets].map((s) => s.state);
  if (states.every((s) => s === "live")) return "live";
  if (states.some((s) => s === "reconnecting")) return "reconnecting";
  return "connecting";
}

function announce() { const state = overall(); for (const l of indicatorListeners) l(state); }
window.addEventListener("online", () => { for (const s of sockets) s.wakeUp(); announce(); });
window.addEventListener("offline", announce);

onSession((session) => {
  for (const socket of sockets) {
    if (session) socket.renew(session.access);
    else socket.close();
  }
});

export class LiveSocket {
  // kind: "metrics" | "logs"; onFrame(frame); since(): ISO timestamp to resume from, or null;
  // onResume(since): called on connecting when the server did not replay from `since` (backfill).
  constructor(kind, serverId, { onFrame, since = () => null, onResume = () => {} }) {
    Object.assign(this, { kind, serverId, onFrame, since, onResume });
    this.state = "connecting";
    this.attempt = 0;
    this.stopped = false;
    this.renewing = false;
    sockets.add(this);
    this.connect();
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/api/v1/ws/${this.kind}/${this.serverId}`;
  }

  connect() {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    const token = accessToken();
    if (!token) return;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    this.authed = false;
    const resumeFrom = this.kind === "logs" && !fallback.since ? this.since() : null;
    ws.onopen = () => {
      const frame = { type: "auth", token };
      if (resumeFrom) frame.since = resumeFrom;
      ws.send(JSON.stringify(frame));
    };
    ws.onmessage = (event) => this.receive(ws, event, resumeFrom);
    ws.onclose = () => this.closed(ws, resumeFrom);
  }

  receive(ws, event, resumeFrom) {
    let frame;
    try { frame = JSON.parse(event.data); } catch { return; }
    if (frame.type === "auth_success") {
      if (this.renewing) { this.renewing = false; return; }
      this.authed = true;
      this.everConnected = true;
      this.attempt = 0;
      this.setState("live");
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.send({ type: "ping" }), PING_MS);
      // Without a server-side replay, fill the gap (since the last line, or since the page's
      // first REST load) over REST; duplicates are dropped by the view.
      if (!resumeFrom) this.onResume(this.since());
      return;
    }
    if (frame.type === "error") {
      if (!this.authed && resumeFrom) fallback.since = true; // `since` refused: resume over REST
      else if (this.authed && this.renewing) { fallback.renew = true; this.renewing = false; ws.close(); }
      else if (!this.authed) this.tokenSuspect = true;
      return;
    }
    if (frame.type === "pong") return;
    this.onFrame(frame);
  }

  async closed(ws, resumeFrom) {
    if (ws !== this.ws) return;
    clearInterval(this.pinger);
    if (this.stopped) return;
    this.setState("reconnecting");
    if (this.tokenSuspect) {
      this.tokenSuspect = false;
      try { await refresh(); } catch { /* signed out: onSession closes us */ }
    }
    const immediate = this.kind === "logs" && resumeFrom && fallback.since;
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const delay = immediate ? 0 : Math.random() * ceiling; // full jitter
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  wakeUp() { if (this.state !== "live") { this.attempt = 0; this.connect(); } }

  renew(token) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.authed) return;
    if (fallback.renew) { this.ws.close(); return; } // reconnects at once with the new token
    this.renewing = true;
    this.send({ type: "auth", token });
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  setState(state) { this.state = state; announce(); }

  close() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pinger);
    sockets.delete(this);
    if (this.ws) this.ws.close();
    announce();
  }
}

// Close every socket (leaving a page).
export function closeAll() { for (const socket of [...sockets]) socket.close(); }
