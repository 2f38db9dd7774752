// A server's charts: CPU, memory, disk per mount, network rx/tx rate, load average;
// history for 1 h … 30 d (rolled-up tiers where the gateway has them), then live samples.

import { api } from "../api.js";
import { LineChart } from "../charts.js";
import { act, bytes, errorBox, h, plain, replace } from "../ui.js";

const HOUR = 3600000;
export const RANGES = [["1h", HOUR], ["6h", 6 * HOUR], ["24h", 24 * HOUR], ["7d", 168 * HOUR], ["30d", 720 * HOUR]];
const percent = (v) => `${v.toFixed(0)}%`;

export class MetricsView {
  constructor(server) {
    this.server = server;
    this.box = errorBox();
    this.range = RANGES[0];
    this.charts = {
      cpu: new LineChart("CPU", { format: percent, max: 100 }),
      memory: new LineChart("Memory", { format: percent, max: 100 }),
      disk: new LineChart("Disk per mount", { format: percent, max: 100 }),
      network: new LineChart("Network", { format: (v) => `${bytes(v)}/s` }),
      load: new LineChart("Load average", { format: (v) => v.toFixed(1) }),
    };
    this.previous = null;
  }

  render(el) {
    const buttons = RANGES.map(([label, ms]) => {
      const button = h("button", { type: "button", class: "ghost", "aria-pressed": String(label === this.range[0]),
        onclick: () => {
          this.range = [label, ms];
          for (const b of buttons) b.setAttribute("aria-pressed", String(b === button));
          this.load(button);
        } }, label);
      return button;
    });
    replace(el, h("div", { class: "row", role: "group", "aria-label": "Time range" }, buttons), this.box,
      h("div", { class: "charts" }, Object.values(this.charts).map((c) => c.el)));
    this.load();
  }

  load(button) {
    return act(button, this.box, async () => {
      const end = new Date();
      const start = new Date(end.getTime() - this.range[1]);
      const query = new URLSearchParams({ start: start.toISOString(), end: end.toISOString(), limit: "1000" });
      const samples = await api("GET", `/metrics/${this.server.id}/history?${query}`);
      this.previous = null;
      for (const chart of Object.values(this.charts)) { chart.clear(); chart.setWindow(this.range[1]); }
      for (const sample of samples) this.add(sample, false);
      this.draw();
    });
  }

  // A sample (live or from history): one point per series.
  add(sample, redraw = true) {
    const t = Date.parse(sample.timestamp);
    if (Number.isNaN(t)) return;
    const c = this.charts;
    c.cpu.add("cpu", t, plain(sample.cpu_percent));
    c.memory.add("memory", t, plain(sample.memory_percent));
    for (const disk of sample.disk_usage || []) c.disk.add(disk.path || disk.mountpoint || "disk", t, plain(disk.percent));
    const load = sample.load_average;
    if (Array.isArray(load)) ["1 min", "5 min", "15 min"].forEach((name, i) => c.load.add(name, t, plain(load[i])));
    const totals = { rx: 0, tx: 0 };
    for (const nic of sample.network || []) {
      if (nic.interface === "lo") continue;
      totals.rx += plain(nic.bytes_recv) || 0;
      totals.tx += plain(nic.bytes_sent) || 0;
    }
    const prev = this.previous;
    if (prev && t > prev.t) {
      const seconds = (t - prev.t) / 1000;
      const rx = (totals.rx - prev.rx) / seconds;
      const tx = (totals.tx - prev.tx) / seconds;
      if (rx >= 0) c.network.add("rx", t, rx); // counters reset on reboot: skip that step
      if (tx >= 0) c.network.add("tx", t, tx);
    }
    this.previous = { t, ...totals };
    if (redraw) this.draw();
  }

  draw() { for (const chart of Object.values(this.charts)) chart.draw(); }
}
