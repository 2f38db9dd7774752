// A server's page: charts, logs, alerts and rules, command console, Docker, API keys.

import { api } from "../api.js";
import { LiveSocket } from "../socket.js";
import { act, ago, errorBox, h, replace } from "../ui.js";
import { AlertsPanel } from "./alerts.js";
import * as consoleTab from "./console.js";
import * as dockerTab from "./docker.js";
import * as keysTab from "./keys.js";
import { LogsView } from "./logs.js";
import { MetricsView } from "./metrics.js";

const TABS = [["charts", "Charts"], ["logs", "Logs"], ["alerts", "Alerts"], ["commands", "Commands"],
  ["docker", "Docker"], ["keys", "API keys"]];

export function render(main, [serverId, tab = "charts"]) {
  const box = errorBox();
  let metrics = null;
  let logs = null;
  let alerts = null;
  let socket = null;
  let poll = null;
  const header = h("div");
  const panel = h("section", { id: "tab-panel", role: "tabpanel" });
  replace(main, header, box, panel);

  const show = (server) => {
    const status = h("span", { "data-test": "server-status" }, server.status);
    const dot = h("span", { class: `dot ${server.status}` });
    const seen = h("span", { class: "muted" }, `last seen ${ago(server.last_seen)}`);
    const remove = h("button", { type: "button", class: "danger", onclick: () => act(remove, box, async () => {
      if (!confirm(`Delete ${server.name}? Its agent is disconnected; history is kept.`)) return;
      await api("DELETE", `/servers/${server.id}`);
      location.hash = "#/";
    }) }, "Delete server");
    const tabs = TABS.map(([id, label]) => h("a", { href: `#/servers/${server.id}/${id}`, role: "tab",
      "aria-selected": String(id === tab) }, label));
    replace(header, h("p", {}, h("a", { href: "#/" }, "← Fleet")),
      h("div", { class: "row title" }, h("h1", {}, dot, " ", server.name), status, seen, h("span", { class: "spacer" }), remove),
      server.hostname ? h("p", { class: "muted" }, server.hostname) : null,
      h("nav", { class: "tabs", role: "tablist", "aria-label": "Server sections" }, tabs));
    poll = setInterval(() => api("GET", `/servers/${server.id}`).then((s) => {
      status.textContent = s.status;
      dot.className = `dot ${s.status}`;
      seen.textContent = `last seen ${ago(s.last_seen)}`;
    }, (error) => box.show(error)), 3000);

    if (tab === "charts") { metrics = new MetricsView(server); metrics.render(panel); }
    else if (tab === "logs") { logs = new LogsView(server); logs.render(panel); }
    else if (tab === "alerts") { alerts = new AlertsPanel(server.id); alerts.render(panel); }
    else if (tab === "commands") consoleTab.render(panel, server);
    else if (tab === "docker") dockerTab.render(panel, server);
    else if (tab === "keys") keysTab.render(panel, server);
    if (metrics || alerts) {
      socket = new LiveSocket("metrics", server.id, { onFrame: (frame) => {
        if (frame.type === "metrics") metrics?.add(frame.data);
        if (frame.type === "alert") alerts?.refresh();
      } });
    }
  };

  act(null, box, async () => show(await api("GET", `/servers/${serverId}`)));
  return () => { clearInterval(poll); socket?.close(); logs?.close(); };
}
