// The user's audit log: who did what, newest first.

import { api } from "../api.js";
import { act, errorBox, h, replace, when } from "../ui.js";

export function render(main) {
  const box = errorBox();
  const list = h("div", { class: "scroll panel" });
  replace(main, h("h1", {}, "Audit log"), box, list);
  act(null, box, async () => {
    const entries = await api("GET", "/audit?limit=200");
    replace(list, entries.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Action"),
      h("th", {}, "Target"), h("th", { class: "hide-narrow" }, "Detail"))),
    h("tbody", {}, entries.map((e) => h("tr", { "data-test": "audit-row" }, h("td", {}, when(e.timestamp)),
      h("td", {}, h("code", {}, e.action)), h("td", {}, e.target || "—"),
      h("td", { class: "hide-narrow" }, e.detail ? h("code", {}, JSON.stringify(e.detail)) : "")))))
      : h("p", { class: "muted" }, "Nothing recorded yet."));
  });
  return null;
}
