// The fleet at a glance: status, last seen, live CPU / memory / disk, open alerts; add a server.

import { api } from "../api.js";
import { LiveSocket } from "../socket.js";
import { act, ago, bar, errorBox, h, plain, replace } from "../ui.js";
import { createKey } from "./keys.js";

function diskPercent(sample) {
  const disks = sample.disk_usage || [];
  const values = disks.map((d) => plain(d.percent)).filter((v) => v !== null);
  return values.length ? Math.max(...values) : null;
}

export function render(main) {
  const box = errorBox();
  const body = h("tbody");
  const sockets = [];
  const rows = new Map();

  const row = (server, openAlerts) => {
    const cells = {
      dot: h("span", { class: `dot ${server.status}`, title: server.status }),
      status: h("span", { "data-test": "status" }, server.status),
      seen: h("td", { class: "hide-narrow" }, ago(server.last_seen)),
      cpu: h("td", {}, bar(null, "CPU")), mem: h("td", {}, bar(null, "Memory")),
      disk: h("td", { class: "hide-narrow" }, bar(null, "Disk")),
    };
    const tr = h("tr", { "data-test": "server-row", "data-server": server.id },
      h("td", {}, cells.dot, " ", h("a", { href: `#/servers/${server.id}` }, server.name), " ",
        h("span", { class: "muted" }, cells.status)),
      cells.seen, cells.cpu, cells.mem, cells.disk,
      h("td", {}, openAlerts ? h("a", { class: "badge active", href: `#/servers/${server.id}/alerts` },
        `${openAlerts} open`) : h("span", { class: "muted" }, "0")));
    rows.set(server.id, { server, cells, tr });
    return tr;
  };

  const update = (serverId, sample) => {
    const entry = rows.get(serverId);
    if (!entry) return;
    const { cells } = entry;
    replace(cells.cpu, bar(plain(sample.cpu_percent), "CPU"));
    replace(cells.mem, bar(plain(sample.memory_percent), "Memory"));
    replace(cells.disk, bar(diskPercent(sample), "Disk"));
    cells.seen.textContent = ago(sample.timestamp);
    cells.cpu.setAttribute("data-value", String(plain(sample.cpu_percent)));
  };

  const setStatus = (serverId, status) => {
    const entry = rows.get(serverId);
    if (!entry) return;
    entry.cells.dot.className = `dot ${status}`;
    entry.cells.status.textContent = status;
  };

  const load = () => act(null, box, async () => {
    const [servers, active] = await Promise.all([api("GET", "/servers"), api("GET", "/alerts?status=active")]);
    for (const s of sockets.splice(0)) s.close();
    rows.clear();
    const open = new Map();
    for (const alert of active) open.set(alert.server_id, (open.get(alert.server_id) || 0) + 1);
    replace(body, servers.map((s) => row(s, open.get(s.id) || 0)));
    empty.hidden = servers.length > 0;
    for (const server of servers) {
      sockets.push(new LiveSocket("metrics", server.id, { onFrame: (frame) => {
        if (frame.type === "metrics") update(server.id, frame.data);
        if (frame.type === "alert") load();
      } }));
    }
  });

  const name = h("input", { name: "server_name", required: true, maxlength: 255, placeholder: "web-1" });
  const add = h("button", { type: "submit" }, "Add server");
  const form = h("form", { class: "row", "aria-label": "Add a server", onsubmit: (event) => {
    event.preventDefault();
    act(add, box, async () => {
      const server = await api("POST", "/servers", { name: name.value.trim() });
      name.value = "";
      await createKey(server.id, server.name);
      await load();
    });
  } }, h("label", {}, "New server name", name), add);
  const empty = h("p", { class: "muted", hidden: true }, "No servers yet: add one, then run the agent on it.");
  replace(main, h("h1", {}, "Fleet"), box, h("section", { class: "panel" }, form),
    h("section", { class: "panel scroll" }, h("table", { "aria-label": "Servers" },
      h("thead", {}, h("tr", {}, h("th", {}, "Server"), h("th", { class: "hide-narrow" }, "Last seen"),
        h("th", {}, "CPU"), h("th", {}, "Memory"), h("th", { class: "hide-narrow" }, "Disk"), h("th", {}, "Alerts"))),
      body), empty));
  load();
  // Presence changes (online/offline) are not on the metrics socket: look again now and then.
  const poll = setInterval(() => act(null, box, async () => {
    for (const server of await api("GET", "/servers")) {
      setStatus(server.id, server.status);
      const entry = rows.get(server.id);
      if (entry && !entry.cells.cpu.hasAttribute("data-value")) entry.cells.seen.textContent = ago(server.last_seen);
    }
  }), 3000);
  return () => { clearInterval(poll); for (const s of sockets) s.close(); };
}
