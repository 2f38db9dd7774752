// Alerts (active / resolved, resolve by hand) and threshold rules, for one server or all.

import { api } from "../api.js";
import { act, errorBox, h, replace, when } from "../ui.js";

const METRICS = { cpu: "CPU %", memory: "Memory %", disk: "Disk % (fullest mount)", offline: "Offline (agent disconnected)" };
const COMPARISONS = { gt: "above", lt: "below" };

export class AlertsPanel {
  // serverId: only that server's, or null for everything the user has.
  constructor(serverId, names = new Map()) {
    this.serverId = serverId;
    this.names = names;
    this.box = errorBox();
    this.status = "active";
  }

  render(el) {
    this.alertsEl = h("div", { class: "scroll" });
    this.rulesEl = h("div", { class: "scroll" });
    const tabs = ["active", "resolved", ""].map((status) => h("button", {
      type: "button", class: "ghost", "aria-pressed": String(status === this.status),
      onclick: (event) => {
        this.status = status;
        for (const b of event.target.parentElement.children) b.setAttribute("aria-pressed", String(b === event.target));
        this.loadAlerts();
      } }, status || "all"));
    replace(el, this.box,
      h("section", { class: "panel" }, h("h2", {}, "Alerts"), h("div", { class: "row", role: "group",
        "aria-label": "Alert status" }, tabs), this.alertsEl),
      this.serverId ? h("section", { class: "panel" }, h("h2", {}, "Threshold rules"), this.ruleForm(), this.rulesEl) : null);
    this.refresh();
  }

  refresh() { this.loadAlerts(); if (this.serverId) this.loadRules(); }

  query(extra = {}) {
    const params = new URLSearchParams(extra);
    if (this.serverId) params.set("server_id", this.serverId);
    return params.toString();
  }

  loadAlerts() {
    return act(null, this.box, async () => {
      const alerts = await api("GET", `/alerts?${this.query(this.status ? { status: this.status } : {})}`);
      replace(this.alertsEl, alerts.length ? h("table", {}, h("thead", {}, h("tr", {},
        h("th", {}, "State"), this.serverId ? null : h("th", {}, "Server"), h("th", {}, "What"),
        h("th", { class: "hide-narrow" }, "Since"), h("th", { class: "hide-narrow" }, "Resolved"), h("th", {}))),
      h("tbody", {}, alerts.map((alert) => {
        const resolve = h("button", { type: "button", "aria-label": `Resolve alert: ${alert.message}`,
          onclick: () => act(resolve, this.box, async () => {
            await api("POST", `/alerts/${alert.id}/resolve`);
            await this.loadAlerts();
          }) }, "Resolve");
        return h("tr", { "data-test": "alert-row", "data-status": alert.status },
          h("td", {}, h("span", { class: `badge ${alert.status}` }, alert.status)),
          this.serverId ? null : h("td", {}, h("a", { href: `#/servers/${alert.server_id}` },
            this.names.get(alert.server_id) || alert.server_id.slice(0, 8))),
          h("td", {}, alert.message), h("td", { class: "hide-narrow" }, when(alert.created_at)),
          h("td", { class: "hide-narrow" }, when(alert.resolved_at)),
          h("td", {}, alert.status === "active" ? resolve : null));
      }))) : h("p", { class: "muted" }, `No ${this.status || ""} alerts.`));
    });
  }

  ruleForm() {
    const metric = h("select", { name: "metric_type", "aria-label": "Metric" },
      Object.entries(METRICS).map(([v, label]) => h("option", { value: v }, label)));
    const comparison = h("select", { name: "comparison", "aria-label": "Comparison" },
      Object.entries(COMPARISONS).map(([v, label]) => h("option", { value: v }, label)));
    const value = h("input", { name: "threshold_value", type: "number", min: 0, max: 100, step: "any", value: 90,
      required: true, "aria-label": "Threshold value (%)" });
    const duration = h("input", { name: "duration_s", type: "number", min: 0, max: 86400, value: 0,
      "aria-label": "For at least (seconds)" });
    const sync = () => { const offline = metric.value === "offline"; comparison.disabled = value.disabled = duration.disabled = offline; };
    metric.addEventListener("change", sync);
    const add = h("button", { type: "submit" }, "Add rule");
    return h("form", { class: "row", "aria-label": "Add a threshold rule", onsubmit: (event) => {
      event.preventDefault();
      act(add, this.box, async () => {
        const offline = metric.value === "offline";
        await api("POST", "/alerts/thresholds", {
          server_id: this.serverId, metric_type: metric.value, comparison: offline ? "gt" : comparison.value,
          threshold_value: offline ? 0 : Number(value.value), duration_s: offline ? 0 : Number(duration.value || 0),
        });
        await this.loadRules();
      });
    } }, h("label", {}, "Metric", metric), h("label", {}, "Is", comparison), h("label", {}, "Value (%)", value),
    h("label", {}, "For (s)", duration), add);
  }

  loadRules() {
    return act(null, this.box, async () => {
      const rules = await api("GET", `/alerts/thresholds?${this.query()}`);
      replace(this.rulesEl, rules.length ? h("table", {}, h("thead", {}, h("tr", {},
        h("th", {}, "Rule"), h("th", {}, "Enabled"), h("th", {}))),
      h("tbody", {}, rules.map((rule) => {
        const text = rule.metric_type === "offline" ? "Server goes offline"
          : `${METRICS[rule.metric_type]} ${COMPARISONS[rule.comparison]} ${rule.threshold_value}` +
            (rule.duration_s ? ` for ${rule.duration_s} s` : "");
        const toggle = h("input", { type: "checkbox", checked: rule.enabled, "aria-label": `Enable rule: ${text}`,
          onchange: () => act(toggle, this.box, async () => {
            await api("PUT", `/alerts/thresholds/${rule.id}`, { enabled: toggle.checked });
          }).then(() => this.loadRules()) });
        const remove = h("button", { type: "button", class: "danger", "aria-label": `Delete rule: ${text}`,
          onclick: () => act(remove, this.box, async () => {
            await api("DELETE", `/alerts/thresholds/${rule.id}`);
            await this.loadRules();
          }) }, "Delete");
        return h("tr", { "data-test": "rule-row" }, h("td", {}, text), h("td", {}, toggle), h("td", {}, remove));
      }))) : h("p", { class: "muted" }, "No rules yet."));
    });
  }
}

export function render(main) {
  const el = h("div");
  replace(main, h("h1", {}, "Alerts"), el);
  const names = new Map();
  const panel = new AlertsPanel(null, names);
  api("GET", "/servers").then((servers) => {
    for (const s of servers) names.set(s.id, s.name);
    panel.render(el);
  }, (error) => { panel.render(el); panel.box.show(error); });
  return null;
}
