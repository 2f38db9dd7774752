// The dashboard's entry point: hash routes, the header (nav, connection, theme, sign out).

import { logout, onSession, signedIn } from "./api.js";
import { closeAll, onIndicator } from "./socket.js";
import { replace } from "./ui.js";
import * as audit from "./views/audit.js";
import * as auth from "./views/auth.js";
import * as channels from "./views/channels.js";
import * as fleet from "./views/fleet.js";
import * as server from "./views/server.js";
import * as alerts from "./views/alerts.js";

const ROUTES = [
  [/^#\/servers\/([0-9a-f-]{36})(?:\/(\w+))?$/, server],
  [/^#\/alerts$/, alerts],
  [/^#\/channels$/, channels],
  [/^#\/audit$/, audit],
  [/^#?\/?$/, fleet],
];
const main = document.getElementById("main");
let cleanup = null;

function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  closeAll();
  const signed = signedIn();
  document.getElementById("nav").hidden = !signed;
  document.getElementById("signout").hidden = !signed;
  if (!signed) {
    cleanup = auth.render(main, [], () => route());
    return;
  }
  const hash = location.hash || "#/";
  for (const [pattern, view] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      for (const link of document.querySelectorAll("nav a")) {
        const current = link.getAttribute("href") === (view === server ? "#/" : hash);
        if (current) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
      }
      cleanup = view.render(main, match.slice(1)) || null;
      return;
    }
  }
  replace(main, "Nothing here. ", Object.assign(document.createElement("a"), { href: "#/", textContent: "Back to the fleet" }));
}

function theme() {
  const saved = localStorage.getItem("opswire.theme");
  const dark = saved ? saved === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

document.getElementById("theme").addEventListener("click", () => {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  localStorage.setItem("opswire.theme", next);
  theme();
});
document.getElementById("signout").addEventListener("click", async () => {
  await logout();
});
onIndicator((state) => {
  const el = document.getElementById("conn");
  el.dataset.state = state;
  el.querySelector(".label").textContent = {
    live: "live", connecting: "connecting…", reconnecting: "reconnecting…", down: "offline", idle: "",
  }[state];
});
let wasSigned = signedIn();
onSession((session) => {
  // Only signing in or out changes the page; a refreshed token does not.
  if (Boolean(session) !== wasSigned) { wasSigned = Boolean(session); route(); }
});
window.addEventListener("hashchange", route);
theme();
route();
