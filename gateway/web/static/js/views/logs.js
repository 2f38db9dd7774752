// A server's live log tail: recent lines over REST, then the logs socket; level filter,
// search, pause. After a reconnect it resumes from the newest line it has (server-side
// `since`, or a REST backfill), and a line already shown is never shown twice.

import { api } from "../api.js";
import { LiveSocket } from "../socket.js";
import { act, errorBox, h, replace } from "../ui.js";

const LEVELS = ["debug", "info", "warning", "error", "critical"];
const MAX_LINES = 2000;

const rank = (level) => Math.max(0, LEVELS.indexOf(String(level).toLowerCase()));
const keyOf = (line) => `${Date.parse(line.timestamp)}|${line.level}|${line.source ?? ""}|${line.message}`;

export class LogsView {
  constructor(server) {
    this.server = server;
    this.box = errorBox();
    this.lines = [];
    this.seen = new Set();
    this.newest = null;
    this.paused = false;
    this.held = [];
  }

  render(el) {
    this.level = h("select", { "aria-label": "Minimum level", onchange: () => this.redraw() },
      LEVELS.map((l) => h("option", { value: l, selected: l === "debug" }, l)));
    this.search = h("input", { type: "search", placeholder: "Search", "aria-label": "Search logs",
      oninput: () => this.redraw() });
    this.pauseButton = h("button", { type: "button", class: "ghost", "aria-pressed": "false",
      onclick: () => this.togglePause() }, "Pause");
    this.count = h("span", { class: "muted", "aria-live": "polite" });
    this.list = h("div", { class: "logs", role: "log", "aria-label": "Log lines", tabindex: 0 });
    replace(el, h("div", { class: "row" }, h("label", {}, "Level", this.level), h("label", {}, "Search", this.search),
      this.pauseButton, this.count), this.box, this.list);
    this.updateCount();
    act(null, this.box, async () => {
      const loadedAt = new Date().toISOString();
      const recent = await api("GET", `/logs/${this.server.id}?limit=200`);
      this.take(recent.reverse());
      this.socket = new LiveSocket("logs", this.server.id, {
        onFrame: (frame) => { if (frame.type === "log") this.take([frame.data]); },
        since: () => this.newest || loadedAt,
        onResume: (since) => this.backfill(since),
      });
    });
  }

  backfill(since) {
    if (!since) return;
    act(null, this.box, async () => {
      const missed = await api("GET", `/logs/${this.server.id}?${new URLSearchParams({ start: since, limit: "1000" })}`);
      this.take(missed.reverse());
    });
  }

  take(lines) {
    const fresh = [];
    for (const line of lines) {
      const key = keyOf(line);
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      fresh.push(line);
      if (!this.newest || Date.parse(line.timestamp) >= Date.parse(this.newest)) this.newest = line.timestamp;
    }
    if (!fresh.length) return;
    if (this.paused) { this.held.push(...fresh); this.updateCount(); return; }
    this.append(fresh);
  }

  append(fresh) {
    this.lines.push(...fresh);
    this.lines.sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
    if (this.lines.length > MAX_LINES) this.lines.splice(0, this.lines.length - MAX_LINES);
    this.redraw();
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseButton.textContent = this.paused ? "Resume" : "Pause";
    this.pauseButton.setAttribute("aria-pressed", String(this.paused));
    if (!this.paused) { const held = this.held.splice(0); if (held.length) this.append(held); }
    this.updateCount();
  }

  visible() {
    const min = rank(this.level.value);
    const needle = this.search.value.trim().toLowerCase();
    return this.lines.filter((l) => rank(l.level) >= min && (!needle || l.message.toLowerCase().includes(needle)));
  }

  redraw() {
    const atBottom = this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - 20;
    const shown = this.visible();
    replace(this.list, shown.map((l) => h("div", { class: "log", "data-test": "log-line" },
      h("span", { class: "muted" }, new Date(l.timestamp).toLocaleTimeString(), " "),
      h("span", { class: `lvl lvl-${String(l.level).toLowerCase()}` }, String(l.level).toUpperCase()),
      l.source ? h("span", { class: "muted" }, `[${l.source}] `) : null, l.message)));
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
    this.updateCount(shown.length);
  }

  updateCount(shown = this.visible().length) {
    this.count.textContent = `${shown} of ${this.lines.length} lines` + (this.held.length ? `, ${this.held.length} waiting` : "");
  }

  close() { this.socket?.close(); }
}
