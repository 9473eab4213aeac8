// Formatting helpers: times in the site's time zone, numbers, colours.
export const MOVEMENTS = ["L", "T", "R", "U"];
export const MOVEMENT_NAMES = { L: "Left", T: "Through", R: "Right", U: "U-turn" };
export const MOVEMENT_COLOURS = { L: "#0072b2", T: "#009e73", R: "#e69f00", U: "#cc79a7" };
// Okabe-Ito, for lanes and series
export const SERIES = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000"];
export const VEHICLE_COLOURS = {
  white: "#f5f5f5", black: "#111", grey: "#8a8f96", gray: "#8a8f96", silver: "#c4c8cc", red: "#c62828", blue: "#1e56b3",
  green: "#2e7d32", yellow: "#f2c200", orange: "#ef7d00", brown: "#7a4b2a", beige: "#d9c7a3", purple: "#6a3d9a",
};

let zone = undefined;
export function setTimeZone(tz) { zone = tz; }

export function fmtTime(ts, withDate = false) {
  const d = new Date(ts * 1000);
  const opts = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone };
  if (withDate) Object.assign(opts, { month: "short", day: "numeric" });
  return new Intl.DateTimeFormat(undefined, opts).format(d);
}

export function fmtDateTime(ts) {
  return new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZone: zone }).format(new Date(ts * 1000));
}

export function fmtNum(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  return Number(v).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function fmtPct(v) { return v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)} %`; }

export function fmtDuration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}
