// The command console of a server: run a command, see output, exit code, duration; history.

import { api } from "../api.js";
import { act, errorBox, h, replace, when } from "../ui.js";

function result(run) {
  return h("div", { class: "panel", "data-test": "command-result" },
    h("div", { class: "row" }, h("code", {}, `$ ${run.command}`), h("span", { class: `badge ${run.status}` }, run.status),
      h("span", { class: "muted" }, `exit ${run.exit_code ?? "—"}`),
      h("span", { class: "muted" }, run.duration_ms !== null && run.duration_ms !== undefined ? `${run.duration_ms} ms` : "")),
    run.message ? h("p", { class: "muted" }, run.message) : null,
    h("pre", { "data-test": "command-output" }, run.output ?? ""),
    run.truncated ? h("p", { class: "muted" }, "Output was truncated.") : null);
}

export function render(el, server) {
  const box = errorBox();
  const output = h("div", { "aria-live": "polite" });
  const history = h("div", { class: "scroll" });
  const command = h("input", { name: "command", required: true, placeholder: "uptime", "aria-label": "Command",
    autocomplete: "off", style: "flex:1;min-width:12em" });
  const timeout = h("input", { name: "timeout_s", type: "number", min: 1, max: 3600, value: 30,
    "aria-label": "Timeout (seconds)", style: "width:6em" });
  const run = h("button", { type: "submit" }, "Run");
  const loadHistory = () => act(null, box, async () => {
    const runs = await api("GET", `/commands/${server.id}/history`);
    replace(history, runs.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Command"),
      h("th", {}, "Status"), h("th", { class: "hide-narrow" }, "Exit"), h("th", { class: "hide-narrow" }, "When"))),
    h("tbody", {}, runs.map((r) => h("tr", {},
      h("td", {}, h("button", { type: "button", class: "ghost", title: "Show output",
        onclick: () => replace(output, result(r)) }, r.command)),
      h("td", {}, h("span", { class: `badge ${r.status}` }, r.status)),
      h("td", { class: "hide-narrow" }, r.exit_code ?? "—"), h("td", { class: "hide-narrow" }, when(r.created_at))))))
      : h("p", { class: "muted" }, "No commands yet."));
  });
  const form = h("form", { class: "row", "aria-label": "Run a command", onsubmit: (event) => {
    event.preventDefault();
    act(run, box, async () => {
      replace(output, h("p", { class: "muted" }, "Running…"));
      const done = await api("POST", `/commands/${server.id}`, { command: command.value, timeout_s: Number(timeout.value || 30) },
        { "idempotency-key": crypto.randomUUID ? crypto.randomUUID() : String(Math.random()) });
      replace(output, result(done));
      await loadHistory();
      return done;
    }).then((done) => { if (done === undefined) replace(output); }); // failed: the error says why
  } }, command, h("label", {}, "Timeout (s)", timeout), run);
  replace(el, box, form, output, h("h2", {}, "History"), history);
  loadHistory();
}
