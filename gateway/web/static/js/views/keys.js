// API keys of a server: list, revoke, create (the key is shown once, with the agent command).

import { api } from "../api.js";
import { act, copy, errorBox, h, replace, when } from "../ui.js";

export function agentCommand(key) {
  return `OPSWIRE_API_KEY=${key} opswire agent --url ${location.origin}`;
}

// The new key, shown this once, in a modal dialog with a copy button.
export function showKey(created, serverName) {
  const command = agentCommand(created.key);
  const copyButton = h("button", { type: "button", onclick: () => copy(command, copyButton) }, "Copy");
  const dialog = h("dialog", { "aria-label": "New API key", "data-test": "key-dialog" },
    h("h2", {}, `Agent key for ${serverName}`),
    h("p", {}, "This key is shown only now. Run the agent on the server with:"),
    h("div", { class: "copyline" }, h("code", { "data-test": "agent-command" }, command), copyButton),
    h("p", { class: "muted" }, "Install the agent first: pip install 'opswire[agent]' (see docs/agent.md)."),
    h("form", { method: "dialog" }, h("button", { type: "submit", class: "ghost" }, "Done")));
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  copyButton.focus();
  return dialog;
}

export async function createKey(serverId, serverName, name = "agent") {
  const created = await api("POST", "/api-keys", { server_id: serverId, name });
  showKey(created, serverName);
  return created;
}

export function render(el, server) {
  const box = errorBox();
  const list = h("div", { class: "scroll" });
  const load = () => act(null, box, async () => {
    const keys = await api("GET", `/api-keys?server_id=${server.id}`);
    replace(list, keys.length ? h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Prefix"), h("th", {}, "State"),
        h("th", { class: "hide-narrow" }, "Created"), h("th", { class: "hide-narrow" }, "Last used"), h("th", {}))),
      h("tbody", {}, keys.map((key) => {
        const revoke = h("button", { type: "button", class: "danger", "aria-label": `Revoke key ${key.name}`,
          onclick: () => act(revoke, box, async () => {
            if (!confirm(`Revoke the key "${key.name}"? Its agent is disconnected.`)) return;
            await api("DELETE", `/api-keys/${key.id}`);
            await load();
          }) }, "Revoke");
        return h("tr", { "data-test": "key-row" }, h("td", {}, key.name), h("td", {}, h("code", {}, key.prefix)),
          h("td", {}, h("span", { class: key.is_active ? "badge succeeded" : "badge" }, key.is_active ? "active" : "revoked")),
          h("td", { class: "hide-narrow" }, when(key.created_at)), h("td", { class: "hide-narrow" }, when(key.last_used_at)),
          h("td", {}, key.is_active ? revoke : null));
      }))) : h("p", { class: "muted" }, "No keys yet."));
  });
  const name = h("input", { name: "key_name", value: "agent", required: true, maxlength: 255 });
  const add = h("button", { type: "submit" }, "New key");
  const form = h("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    act(add, box, async () => { await createKey(server.id, server.name, name.value.trim()); await load(); });
  } }, h("label", {}, "Key name", name), add);
  replace(el, box, form, list);
  load();
}
