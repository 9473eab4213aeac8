// Hand-written SVG charts (no dependencies): stacked bars, lines, histogram.
const NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs = {}, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

/** A round top and step for an axis from 0 to at least v, with at most 5 steps. */
function niceScale(v, integer = true) {
  const max = v > 0 ? v : 1;
  let raw = max / 4;
  if (integer) raw = Math.max(1, raw);
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw && (!integer || Number.isInteger(s))) || 10 * p;
  return { top: step * Math.max(1, Math.ceil(max / step)), step };
}

function frame(container, { width = 720, height = 260, left = 44, right = 12, top = 10, bottom = 28, label } = {}) {
  container.replaceChildren();
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label || "chart" });
  const defs = svgEl("defs");
  const hatch = svgEl("pattern", { id: `hatch-${Math.random().toString(36).slice(2, 8)}`, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  hatch.append(svgEl("rect", { width: 6, height: 6, fill: "#f3f4f6" }), svgEl("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#b8c0ca", "stroke-width": 2 }));
  defs.append(hatch);
  svg.append(defs);
  container.append(svg);
  return { svg, hatchId: hatch.id, x0: left, x1: width - right, y0: height - bottom, y1: top, width, height };
}

function yAxis(f, scale, unit = "") {
  const g = svgEl("g", { class: "grid" });
  for (let v = 0; v <= scale.top + 1e-9; v += scale.step) {
    const y = f.y0 - ((f.y0 - f.y1) * v) / scale.top;
    g.append(svgEl("line", { x1: f.x0, x2: f.x1, y1: y, y2: y }));
    g.append(svgEl("text", { x: f.x0 - 6, y: y + 4, "text-anchor": "end" }, `${Number.isInteger(v) ? v : v.toFixed(1)}${unit}`));
  }
  f.svg.append(g);
  return scale.top;
}

function empty(f, message) {
  f.svg.append(svgEl("text", { class: "empty", x: (f.x0 + f.x1) / 2, y: (f.y0 + f.y1) / 2, "text-anchor": "middle" }, message));
}

/** rows: [{label, values: {key: n}, complete}] -> one <g class="bar"> per row, one <rect> per non-zero key. */
export function stackedBars(container, rows, keys, colours, { label = "stacked bars", emptyText = "No vehicles in this range" } = {}) {
  const f = frame(container, { label });
  const totals = rows.map((r) => keys.reduce((s, k) => s + (r.values[k] || 0), 0));
  const max = yAxis(f, niceScale(Math.max(0, ...totals)));
  if (!rows.length || !totals.some((t) => t > 0)) empty(f, emptyText);
  const slot = (f.x1 - f.x0) / Math.max(rows.length, 1);
  const w = Math.max(1, slot * 0.78);
  const every = Math.max(1, Math.ceil(rows.length / 12));
  rows.forEach((r, i) => {
    const x = f.x0 + i * slot + (slot - w) / 2;
    const g = svgEl("g", { class: r.complete === false ? "bar incomplete" : "bar", "data-total": totals[i] });
    const title = svgEl("title", {}, `${r.label}: ${totals[i]}${r.complete === false ? " (incomplete: camera down or data missing)" : ""}`);
    g.append(title);
    if (r.complete === false) g.append(svgEl("rect", { x, y: f.y1, width: w, height: f.y0 - f.y1, fill: `url(#${f.hatchId})` }));
    let y = f.y0;
    for (const k of keys) {
      const v = r.values[k] || 0;
      if (!v) continue;
      const h = ((f.y0 - f.y1) * v) / max;
      y -= h;
      g.append(svgEl("rect", { class: "seg", "data-key": k, x, y, width: w, height: h, fill: colours[k], rx: Math.min(2, w / 4) }));
    }
    f.svg.append(g);
    if (i % every === 0) f.svg.append(svgEl("text", { x: x + w / 2, y: f.y0 + 16, "text-anchor": "middle" }, r.label));
  });
  return f.svg;
}

/** series: [{name, colour, points: [[x, y], ...], band: [[x, lo, hi], ...]?}] with numeric x (e.g. epoch s);
 * gaps (null y) break the line. band: a shaded range under the line (e.g. the max of each bin over its mean).
 * xDomain: [x0, x1] to span (e.g. the whole time range), else the data's own. Each line's path carries
 * data-points (its non-null points). */
export function lines(container, series, { label = "lines", unit = "", xLabel = (x) => x, emptyText = "No data in this range", xDomain = null } = {}) {
  const f = frame(container, { label });
  const pts = series.flatMap((s) => s.points.filter((p) => p[1] !== null));
  const highs = series.flatMap((s) => (s.band || []).filter((b) => b[2] !== null).map((b) => b[2]));
  const max = yAxis(f, niceScale(Math.max(0, ...pts.map((p) => p[1]), ...highs), false), unit);
  if (!pts.length) { empty(f, emptyText); return f.svg; }
  const xs = pts.map((p) => p[0]);
  const xmin = xDomain ? xDomain[0] : Math.min(...xs), xmax = xDomain ? xDomain[1] : Math.max(...xs);
  const sx = (x) => f.x0 + ((x - xmin) / Math.max(xmax - xmin, 1e-9)) * (f.x1 - f.x0);
  const sy = (y) => f.y0 - ((f.y0 - f.y1) * y) / max;
  for (const s of series) {
    if (s.band && s.band.length) f.svg.append(bandPath(s, sx, sy));
    let d = "", pen = false, n = 0;
    for (const [x, y] of s.points) {
      if (y === null) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`;
      pen = true; n += 1;
    }
    const path = svgEl("path", { class: "series", "data-name": s.name, "data-points": n, d, fill: "none", stroke: s.colour, "stroke-width": 1.6, "stroke-linejoin": "round" });
    path.append(svgEl("title", {}, s.name));
    f.svg.append(path);
  }
  for (let i = 0; i <= 5; i++) {
    const x = xmin + ((xmax - xmin) * i) / 5;
    f.svg.append(svgEl("text", { x: sx(x), y: f.y0 + 16, "text-anchor": i === 0 ? "start" : i === 5 ? "end" : "middle" }, xLabel(x)));
  }
  return f.svg;
}

/** A shaded area from each point's lo to hi, broken at nulls: one subpath per unbroken run. */
function bandPath(s, sx, sy) {
  let d = "", run = [], n = 0;
  const flush = () => {
    if (run.length) {
      d += run.map(([x, , hi], i) => `${i ? "L" : "M"}${sx(x).toFixed(1)},${sy(hi).toFixed(1)}`).join("");
      d += run.slice().reverse().map(([x, lo]) => `L${sx(x).toFixed(1)},${sy(lo).toFixed(1)}`).join("") + "Z";
    }
    run = [];
  };
  for (const b of s.band) { if (b[1] === null || b[2] === null) flush(); else { run.push(b); n += 1; } }
  flush();
  const path = svgEl("path", { class: "band", "data-name": s.name, "data-points": n, d, fill: s.colour, "fill-opacity": 0.22, stroke: "none" });
  path.append(svgEl("title", {}, `${s.name}: longest queue in each step`));
  return path;
}

/** bins: [{lo_kmh, hi_kmh, count}] -> one <rect class="bin"> per bin; marks: [{x, label}] vertical lines. */
export function histogram(container, bins, { label = "histogram", marks = [], colour = "#0072b2", emptyText = "No speeds in this range" } = {}) {
  const f = frame(container, { label });
  const max = yAxis(f, niceScale(Math.max(0, ...bins.map((b) => b.count))));
  if (!bins.length) { empty(f, emptyText); return f.svg; }
  const lo = bins[0].lo_kmh, hi = bins[bins.length - 1].hi_kmh;
  const sx = (v) => f.x0 + ((v - lo) / Math.max(hi - lo, 1e-9)) * (f.x1 - f.x0);
  for (const b of bins) {
    const h = ((f.y0 - f.y1) * b.count) / max;
    const r = svgEl("rect", { class: "bin", x: sx(b.lo_kmh) + 0.5, y: f.y0 - h, width: Math.max(1, sx(b.hi_kmh) - sx(b.lo_kmh) - 1), height: h, fill: colour, rx: 1.5 });
    r.append(svgEl("title", {}, `${b.lo_kmh}–${b.hi_kmh} km/h: ${b.count}`));
    f.svg.append(r);
  }
  const every = Math.max(1, Math.ceil(bins.length / 10));
  bins.forEach((b, i) => { if (i % every === 0) f.svg.append(svgEl("text", { x: sx(b.lo_kmh), y: f.y0 + 16, "text-anchor": "middle" }, `${b.lo_kmh}`)); });
  for (const m of marks) {
    if (m.x === null || m.x === undefined) continue;
    const x = sx(m.x);
    f.svg.append(svgEl("line", { x1: x, x2: x, y1: f.y1, y2: f.y0, stroke: "#1b2430", "stroke-dasharray": "4 3" }));
    f.svg.append(svgEl("text", { x: x + 4, y: f.y1 + 12, fill: "#1b2430" }, m.label));
  }
  return f.svg;
}
