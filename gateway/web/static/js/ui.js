// Small DOM helpers shared by every view: element builder, errors in words, formatting.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function toast(message, bad = false) {
  const box = document.getElementById("toasts");
  const item = h("div", { class: bad ? "toast bad" : "toast" }, message);
  box.append(item);
  setTimeout(() => item.remove(), bad ? 8000 : 4000);
}

// An inline error area: shows the API's words, never fails silently.
export function errorBox() {
  const box = h("div", { class: "error", role: "alert", hidden: true });
  box.show = (error) => {
    box.textContent = error ? describe(error) : "";
    box.hidden = !error;
  };
  return box;
}

export function describe(error) {
  return error && error.message ? error.message : String(error);
}

// Run an action from a button: disable it meanwhile, show any error inline and as a toast.
export async function act(button, box, work) {
  if (button) button.disabled = true;
  box?.show(null);
  try {
    return await work();
  } catch (error) {
    if (box) box.show(error);
    toast(describe(error), true);
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(n >= 10 || i === 0 ? 0 : 1)} ${units[i]}`;
}

export function bar(percent, label) {
  const value = typeof percent === "number" ? Math.max(0, Math.min(100, percent)) : null;
  const el = h("div", {
    class: value !== null && value >= 90 ? "bar high" : "bar", role: "meter", "aria-label": label,
    "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": value ?? 0,
  }, h("span", { style: `width:${value ?? 0}%` }), h("em", {}, value === null ? "—" : `${value.toFixed(1)}%`));
  return el;
}

export async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard permission (plain http): select a hidden field and copy that.
    const area = h("textarea", { style: "position:fixed;opacity:0" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  if (button) {
    const before = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = before; }, 1500);
  }
}

// A plain value of a sample field, or the average of a rolled-up tier point ({avg,min,max}).
export function plain(value) {
  if (typeof value === "number") return value;
  if (value && typeof value === "object" && typeof value.avg === "number") return value.avg;
  return null;
}
