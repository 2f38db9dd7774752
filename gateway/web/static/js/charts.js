// Our own small SVG line charts: a few series over a time window, redrawn as points arrive.

const NS = "http://www.w3.org/2000/svg";
const W = 600;
const H = 160;
const PAD = { left: 44, right: 8, top: 8, bottom: 18 };
const COLORS = ["--chart-1", "--chart-2", "--chart-3", "--chart-4", "--chart-5"];

function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

export class LineChart {
  // format(v) labels the y axis; max: a fixed top (100 for percentages) or null for auto.
  constructor(title, { format = (v) => v.toFixed(0), max = null, windowMs = 3600000 } = {}) {
    Object.assign(this, { format, max, windowMs });
    this.series = new Map(); // name -> [[t, v], ...]
    this.el = document.createElement("figure");
    this.el.className = "chart panel";
    this.el.setAttribute("data-chart", title);
    const heading = document.createElement("h3");
    heading.textContent = title;
    this.svg = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": `${title} chart` });
    this.legend = document.createElement("figcaption");
    this.legend.className = "legend";
    this.el.append(heading, this.svg, this.legend);
  }

  setWindow(ms) { this.windowMs = ms; }

  clear() { this.series.clear(); this.draw(); }

  add(name, t, v) {
    if (v === null || v === undefined || !Number.isFinite(v)) return;
    if (!this.series.has(name)) this.series.set(name, []);
    const points = this.series.get(name);
    if (points.length && t <= points[points.length - 1][0]) return; // time order; a sample once
    points.push([t, v]);
  }

  // Number of points drawn (the browser test reads it from data-points).
  get count() { let n = 0; for (const p of this.series.values()) n += p.length; return n; }

  draw() {
    const now = Date.now();
    const start = now - this.windowMs;
    for (const [name, points] of this.series) {
      const kept = points.filter(([t]) => t >= start);
      this.series.set(name, kept);
    }
    const values = [...this.series.values()].flat().map(([, v]) => v);
    const top = this.max ?? Math.max(1, ...values) * 1.1;
    const x = (t) => PAD.left + ((t - start) / this.windowMs) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
    this.svg.replaceChildren();
    for (const frac of [0, 0.5, 1]) {
      const v = top * frac;
      this.svg.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "axis" }));
      const label = svg("text", { x: 2, y: y(v) + 3 });
      label.textContent = this.format(v);
      this.svg.append(label);
    }
    const legend = [];
    let i = 0;
    for (const [name, points] of this.series) {
      const color = `var(${COLORS[i % COLORS.length]})`;
      i += 1;
      if (points.length) {
        const d = points.map(([t, v], k) => `${k ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
        this.svg.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 1.6,
          "vector-effect": "non-scaling-stroke" }));
      }
      const last = points.length ? this.format(points[points.length - 1][1]) : "—";
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = color;
      item.append(swatch, `${name}: ${last}`);
      legend.push(item);
    }
    if (!this.series.size) legend.push("no data in this range");
    this.legend.replaceChildren(...legend);
    this.el.setAttribute("data-points", String(this.count));
  }
}
