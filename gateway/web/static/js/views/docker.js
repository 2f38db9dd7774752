// Docker containers on a server (through its agent): start / stop / restart, logs.

import { api } from "../api.js";
import { act, errorBox, h, replace } from "../ui.js";

export function render(el, server) {
  const box = errorBox();
  const list = h("div", { class: "scroll" });
  const logs = h("div");
  const load = (button) => act(button, box, async () => {
    const containers = await api("GET", `/docker/${server.id}/containers`);
    replace(list, containers.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"),
      h("th", { class: "hide-narrow" }, "Image"), h("th", {}, "State"), h("th", {}))),
    h("tbody", {}, containers.map((c) => {
      const action = (verb) => {
        const button = h("button", { type: "button", class: "ghost", "aria-label": `${verb} ${c.name}`,
          onclick: () => act(button, box, async () => {
            const reply = await api("POST", `/docker/${server.id}/containers/${c.id}/${verb}`);
            if (!reply.success) throw new Error(`${verb} ${c.name}: ${reply.message}`);
            await load();
          }) }, verb);
        return button;
      };
      const showLogs = h("button", { type: "button", class: "ghost", "aria-label": `Logs of ${c.name}`,
        onclick: () => act(showLogs, box, async () => {
          const reply = await api("GET", `/docker/${server.id}/containers/${c.id}/logs?tail=200`);
          const data = reply?.data ?? reply;
          const text = typeof data === "string" ? data : JSON.stringify(data, null, 2);
          replace(logs, h("h2", {}, `Logs of ${c.name}`), h("pre", {}, text));
        }) }, "logs");
      return h("tr", {}, h("td", {}, c.name), h("td", { class: "hide-narrow" }, c.image),
        h("td", {}, c.status || c.state), h("td", { class: "row" }, action("start"), action("stop"), action("restart"), showLogs));
    }))) : h("p", { class: "muted" }, "No containers."));
  });
  const reload = h("button", { type: "button", class: "ghost", onclick: () => load(reload) }, "Refresh");
  replace(el, h("div", { class: "row" }, reload), box, list, logs);
  load();
}
