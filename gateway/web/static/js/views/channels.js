// Notification channels: Apprise URLs where alerts are sent; send a test; last error.

import { api } from "../api.js";
import { act, errorBox, h, replace, toast, when } from "../ui.js";

const EXAMPLES = "json://host:port/path · slack://TokenA/TokenB/TokenC · discord://id/token · " +
  "tgram://bottoken/chat_id · ntfy://topic · mailto://user:pass@example.com";

export function render(main) {
  const box = errorBox();
  const list = h("div", { class: "scroll" });
  const load = () => act(null, box, async () => {
    const channels = await api("GET", "/notifications/channels");
    replace(list, channels.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "URL"),
      h("th", {}, "Enabled"), h("th", { class: "hide-narrow" }, "Last sent"), h("th", {}, "Last error"), h("th", {}))),
    h("tbody", {}, channels.map((c) => {
      const toggle = h("input", { type: "checkbox", checked: c.enabled, "aria-label": `Enable ${c.name}`,
        onchange: () => act(toggle, box, () => api("PUT", `/notifications/channels/${c.id}`, { enabled: toggle.checked }))
          .then(load) });
      const test = h("button", { type: "button", class: "ghost", "aria-label": `Send a test to ${c.name}`,
        onclick: () => act(test, box, async () => {
          const result = await api("POST", `/notifications/channels/${c.id}/test`);
          if (!result.sent) throw new Error(`Test to ${c.name} failed: ${result.error}`);
          toast(`Test sent to ${c.name}`);
          await load();
        }).then((r) => (r === undefined ? load() : null)) }, "Send test");
      const remove = h("button", { type: "button", class: "danger", "aria-label": `Delete ${c.name}`,
        onclick: () => act(remove, box, async () => {
          await api("DELETE", `/notifications/channels/${c.id}`);
          await load();
        }) }, "Delete");
      return h("tr", { "data-test": "channel-row" }, h("td", {}, c.name), h("td", {}, h("code", {}, c.url)),
        h("td", {}, toggle), h("td", { class: "hide-narrow" }, when(c.last_sent_at)),
        h("td", {}, c.last_error ? h("span", { class: "lvl-error" }, `${c.last_error} (${when(c.last_error_at)})`) : "—"),
        h("td", { class: "row" }, test, remove));
    }))) : h("p", { class: "muted" }, "No channels yet: alerts are only shown here and on open dashboards."));
  });
  const name = h("input", { name: "channel_name", required: true, maxlength: 255, placeholder: "on-call" });
  const url = h("input", { name: "channel_url", required: true, type: "password", autocomplete: "off",
    placeholder: "json://…", style: "min-width:18em" });
  const add = h("button", { type: "submit" }, "Add channel");
  const form = h("form", { class: "row", "aria-label": "Add a channel", onsubmit: (event) => {
    event.preventDefault();
    act(add, box, async () => {
      await api("POST", "/notifications/channels", { name: name.value.trim(), url: url.value.trim() });
      name.value = url.value = "";
      await load();
    });
  } }, h("label", {}, "Name", name), h("label", {}, "Apprise URL (kept secret)", url), add);
  replace(main, h("h1", {}, "Notification channels"), box,
    h("section", { class: "panel" }, h("p", { class: "muted" }, "Every alert that fires or resolves on your servers is sent " +
      "to each enabled channel. Examples: ", EXAMPLES), form), h("section", { class: "panel" }, list));
  load();
  return null;
}
