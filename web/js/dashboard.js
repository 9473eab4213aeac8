// The per-camera dashboard: live view, counts, O->D, queues, speeds, passages, plates.
import { get, enc, apiKey, query, ApiError, setupKeyDialog } from "./api.js";
import { stackedBars, lines, histogram } from "./charts.js";
import {
  MOVEMENTS, MOVEMENT_NAMES, MOVEMENT_COLOURS, SERIES, VEHICLE_COLOURS,
  el, fmtTime, fmtDateTime, fmtNum, fmtPct, fmtDuration, setTimeZone,
} from "./format.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { site: null, sites: [], pick: params.get("site"), cameras: [], camera: params.get("camera"), cursor: null, busy: false, again: false, lastEvent: null, workerTimer: null, events: null, dataEnd: 0 };
const CLASS_KEYS = ["car", "bus", "truck", "motorcycle", "bicycle"];
const CLASS_COLOURS = { car: "#0072b2", bus: "#d55e00", truck: "#e69f00", motorcycle: "#cc79a7", bicycle: "#009e73", person: "#56b4e9" };

function localInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function range() {
  // live=1 (the demo): from `from` to now, or to the newest event where the footage clock runs ahead (--speed)
  if (params.get("from") && params.get("live")) {
    const end = Math.max(Date.now(), (state.dataEnd + 60) * 1000);
    return { from: params.get("from"), to: new Date(end).toISOString(), label: "live" };
  }
  if (params.get("from") && params.get("to")) return { from: params.get("from"), to: params.get("to"), label: "custom range" };
  const now = new Date();
  const midnight = new Date(now); midnight.setHours(0, 0, 0, 0);
  const iso = (d) => d.toISOString();
  switch ($("range").value) {
    case "today": return { from: iso(midnight), to: iso(now), label: "today" };
    case "yesterday": return { from: iso(new Date(midnight - 86400e3)), to: iso(midnight), label: "yesterday" };
    case "7d": return { from: iso(new Date(now - 7 * 86400e3)), to: iso(now), label: "last 7 days" };
    case "custom": {
      const a = $("custom-from").value, b = $("custom-to").value;
      if (a && b) return { from: new Date(a).toISOString(), to: new Date(b).toISOString(), label: "custom range" };
      return { from: iso(new Date(now - 86400e3)), to: iso(now), label: "last 24 hours" };
    }
    default: return { from: iso(new Date(now - 86400e3)), to: iso(now), label: "last 24 hours" };
  }
}

function showError(container, err) {
  container.replaceChildren(el("p", { class: "error", role: "alert" }, err instanceof ApiError ? err.message : `Could not load: ${err}`));
}

function renderTabs() {
  const tabs = $("camera-tabs");
  tabs.replaceChildren(...state.cameras.map((c) => el("button", {
    type: "button", role: "tab", "aria-selected": String(c.name === state.camera), "data-camera": c.name,
    onclick: () => { state.camera = c.name; renderTabs(); refresh(true); },
  }, el("span", { class: `dot ${c.status}`, title: c.status }), c.name)));
}

function renderLive(cam) {
  const live = $("live");
  $("camera-status").textContent = cam.status === "up" ? `up for ${fmtDuration(cam.uptime_s)}`
    : cam.status === "down" ? `down since ${cam.since_ts ? fmtDateTime(cam.since_ts) : "?"}${cam.reason ? ` (${cam.reason})` : ""}`
    : cam.status === "stale" ? `no heartbeat since ${cam.since_ts ? fmtDateTime(cam.since_ts) : "?"}: worker gone, counts missing` : "status unknown";
  const facts = [["Uptime 24 h", cam.uptime_ratio_24h === null ? "–" : fmtPct(cam.uptime_ratio_24h)],
    ["Last vehicle", cam.last_passage_ts ? fmtDateTime(cam.last_passage_ts) : "–"], ["Legs", cam.legs.join(" · ") || "–"],
    ["Lanes", cam.lanes.join(" · ") || "–"]];
  $("camera-facts").replaceChildren(...facts.map(([k, v]) => el("span", {}, `${k} `, el("b", {}, v))));
  if (live.dataset.camera === cam.name) return;
  live.dataset.camera = cam.name;
  live.replaceChildren(el("div", { class: "msg" }, "Connecting to the camera…"));
  if (!cam.live) { live.replaceChildren(el("div", { class: "msg" }, "No live view configured for this camera (live_url).")); return; }
  live.style.aspectRatio = "";
  checkWorker(cam);
}

async function checkWorker(cam) {
  // Ask the API whether the worker answers before opening the stream (no broken image).
  const live = $("live");
  clearTimeout(state.workerTimer);
  let status;
  try { status = await get(`/api/cameras/${enc(cam.name)}/worker`); } catch (err) { status = { reachable: false, detail: err.message }; }
  if (state.camera !== cam.name) return;
  if (!status.reachable) {
    live.replaceChildren(el("div", { class: "msg" }, `Live view unavailable: ${status.detail || "the worker does not answer"}.`, el("br"),
      el("button", { class: "secondary", type: "button", style: "margin-top:10px", onclick: () => checkWorker(cam) }, "Retry")));
    state.workerTimer = setTimeout(() => checkWorker(cam), 15000);
    return;
  }
  const facts = [];
  if (status.fps !== null) facts.push(`${fmtNum(status.fps, 1)} fps`);
  if (status.spool_pending !== null) facts.push(status.spool_pending ? `${fmtNum(status.spool_pending)} events waiting for the database` : "database up to date");
  $("worker-facts").textContent = facts.length ? `· ${facts.join(" · ")}` : "";
  if (live.querySelector("img")) return;
  const img = el("img", { alt: `Live view of ${cam.name} with tracks, legs and lanes`, src: `/api/cameras/${enc(cam.name)}/live.mjpg` });
  img.addEventListener("error", () => { live.replaceChildren(); state.workerTimer = setTimeout(() => checkWorker(cam), 3000); });
  // the frame's own shape (a fisheye is square), no taller than wide
  img.addEventListener("load", () => { if (img.naturalWidth) live.style.aspectRatio = `${img.naturalWidth} / ${Math.min(img.naturalHeight, img.naturalWidth)}`; }, { once: true });
  live.replaceChildren(img);
}

function kpi(label, value, sub) {
  return el("div", { class: "kpi" }, el("div", { class: "l" }, label), el("div", { class: "v" }, value), sub ? el("div", { class: "s" }, sub) : null);
}

function renderCounts(tmc, speeds) {
  const peak = tmc.peak_hour;
  $("kpis").replaceChildren(
    kpi("Vehicles", fmtNum(tmc.total), `${fmtNum(tmc.unassigned)} without a full movement`),
    kpi("Peak hour", peak ? `${fmtTime(peak.start_ts)}–${fmtTime(peak.end_ts)}` : "–", peak ? `${fmtNum(peak.volume)} veh/h · PHF ${peak.phf === null ? "–" : peak.phf.toFixed(2)}` : "needs a full hour of complete intervals"),
    kpi("Heavy vehicles", fmtPct(tmc.heavy_share), "bus + truck share"),
    kpi("Approach speed p85", speeds && speeds.percentiles.p85 !== null ? `${fmtNum(speeds.percentiles.p85)} km/h` : "–", speeds ? `median ${fmtNum(speeds.percentiles.p50)} km/h · ${fmtNum(speeds.count)} measured` : ""),
    kpi("Incomplete intervals", fmtNum(tmc.incomplete_intervals), tmc.incomplete_intervals ? "camera down, worker gone, or not over yet" : "all complete"),
    kpi("Interval", `${tmc.interval_minutes} min`, tmc.timezone),
  );
  renderShares(tmc);
  const multiDay = tmc.rows.length && tmc.rows[tmc.rows.length - 1].start_ts - tmc.rows[0].start_ts > 86400;
  const byClass = $("split").value === "class";
  const keys = byClass ? classKeys(tmc) : MOVEMENTS;
  const colours = byClass ? CLASS_COLOURS : MOVEMENT_COLOURS;
  const rows = tmc.rows.map((r) => ({ label: fmtTime(r.start_ts, multiDay), values: byClass ? r.by_class : r.by_movement, complete: r.complete }));
  stackedBars($("counts-chart"), rows, keys, colours, { label: `Vehicles per interval by ${byClass ? "class" : "movement"}` });
  $("counts-legend").replaceChildren(...keys.map((k) => el("span", { style: `--c:${colours[k] || "#555"}` }, byClass ? k : MOVEMENT_NAMES[k])));
  renderOd(tmc);
}

/** Columns are leg_movement_class: counts per class (of the totals; rows carry by_class). */
function classCounts(counts) {
  const out = {};
  for (const [col, n] of Object.entries(counts)) { const cls = col.split("_").slice(2).join("_"); out[cls] = (out[cls] || 0) + n; }
  return out;
}

function classKeys(tmc) {
  const seen = Object.keys(classCounts(tmc.totals));
  return [...CLASS_KEYS.filter((k) => seen.includes(k)), ...seen.filter((k) => !CLASS_KEYS.includes(k))];
}

function shareBar(title, parts) {
  const total = parts.reduce((s, p) => s + p.value, 0);
  const bar = el("div", { class: "sharebar", role: "img", "aria-label": `${title}: ${parts.map((p) => `${p.label} ${p.value}`).join(", ")}` },
    ...parts.filter((p) => p.value > 0).map((p) => {
      const pct = (100 * p.value) / total;
      return el("span", { style: `width:${pct}%; background:${p.colour}`, title: `${p.label}: ${fmtNum(p.value)} (${pct.toFixed(1)} %)` }, pct >= 8 ? `${p.label} ${pct.toFixed(0)}%` : "");
    }));
  return el("div", {}, el("div", { class: "share-title" }, title), total ? bar : el("div", { class: "muted" }, "No vehicles"));
}

function renderShares(tmc) {
  const byMovement = Object.fromEntries(MOVEMENTS.map((m) => [m, 0]));
  const byClass = {};
  for (const [col, n] of Object.entries(tmc.totals)) {
    const [, m, cls] = col.split("_");
    byMovement[m] = (byMovement[m] || 0) + n;
    byClass[cls] = (byClass[cls] || 0) + n;
  }
  $("shares").replaceChildren(
    shareBar("Movements", MOVEMENTS.map((m) => ({ label: MOVEMENT_NAMES[m], value: byMovement[m], colour: MOVEMENT_COLOURS[m] }))),
    shareBar("Vehicle classes", Object.entries(byClass).sort((a, b) => b[1] - a[1]).map(([c, v]) => ({ label: c, value: v, colour: CLASS_COLOURS[c] || "#555" }))),
  );
}

function renderOd(tmc) {
  const legs = tmc.legs;
  if (!legs.length) { $("od").replaceChildren(el("p", { class: "muted" }, "No legs configured.")); return; }
  const max = Math.max(1, ...tmc.od_matrix.flat());
  const head = el("tr", {}, el("th", {}, "from \\ to"), ...legs.map((l) => el("th", {}, l)), el("th", { class: "num" }, "Σ"));
  const body = tmc.od_matrix.map((row, i) => el("tr", {}, el("th", {}, legs[i]), ...row.map((v) => {
    const a = v / max;
    return el("td", { style: `background: rgba(0,114,178,${(0.08 + 0.82 * a).toFixed(2)}); color:${a > 0.55 ? "#fff" : "inherit"}` }, fmtNum(v));
  }), el("td", { class: "num" }, fmtNum(row.reduce((s, v) => s + v, 0)))));
  $("od").replaceChildren(el("div", { class: "scroll" }, el("table", { class: "od", "aria-label": "origin destination matrix" }, el("thead", {}, head), el("tbody", {}, ...body))));
}

function renderQueues(q, r) {
  // per second where the range allows (step 1 s), else the mean per step with its max shaded above
  const binned = q.step_s > 1;
  const series = q.lanes.map((l, i) => ({
    name: l.lane, colour: SERIES[i % SERIES.length], points: l.ts.map((t, j) => [t, l.length_m[j]]),
    band: binned ? l.ts.map((t, j) => [t, l.length_m[j], (l.length_m_max || [])[j] ?? null]) : null,
  }));
  const domain = [Date.parse(r.from) / 1000, Date.parse(r.to) / 1000];
  lines($("queue-chart"), series, { label: "Queue length per lane", unit: " m", xLabel: (x) => fmtTime(x), emptyText: "No queue samples in this range", xDomain: domain });
  const chart = $("queue-chart");
  chart.dataset.step = q.step_s;
  $("queue-note").textContent = binned ? `mean per ${fmtStep(q.step_s)}, shaded to the longest` : "per second";
  $("queue-legend").replaceChildren(...series.map((s) => el("span", { style: `--c:${s.colour}` }, s.name)));
}

function fmtStep(s) { return s % 3600 === 0 ? `${s / 3600} h` : s % 60 === 0 ? `${s / 60} min` : `${s} s`; }

function renderSpeeds(s) {
  const p = s.percentiles;
  $("speed-note").textContent = s.count ? `${fmtNum(s.count)} vehicles · p50 ${fmtNum(p.p50)} · p85 ${fmtNum(p.p85)} km/h` : "";
  histogram($("speed-chart"), s.histogram, { label: "Speed distribution", marks: [{ x: p.p85, label: "p85" }] });
}

function passageRow(p) {
  const colour = p.colour ? el("span", {}, el("span", { class: "swatch", style: `background:${VEHICLE_COLOURS[p.colour] || "#ccc"}` }), p.colour) : "–";
  return el("tr", {},
    el("td", {}, fmtDateTime(p.passage_ts)), el("td", {}, p.vehicle_class),
    el("td", {}, p.movement ? el("span", { class: `pill m-${p.movement}` }, MOVEMENT_NAMES[p.movement] || p.movement) : "–"),
    el("td", {}, `${p.entry_leg || "?"} → ${p.exit_leg || "?"}`), el("td", {}, colour),
    el("td", { class: "num" }, fmtNum(p.speed_median_kmh)), el("td", { class: "num" }, fmtNum(p.speed_max_kmh)),
    el("td", { class: "num" }, fmtNum(p.approach_speed_kmh)), el("td", { class: "num" }, fmtNum(p.through_speed_kmh)),
    el("td", { class: "num" }, p.stops == null ? "–" : `${p.stops} · ${fmtNum(p.stopped_s)} s`), el("td", { class: "num" }, p.track_id));
}

function passageFilters() {
  const data = Object.fromEntries(new FormData($("passage-filters")).entries());
  const r = range();
  return { site: state.pick, camera: state.camera, from: r.from, to: r.to, limit: 50, ...data };
}

async function loadPassages(append = false) {
  const tbody = $("passages").querySelector("tbody");
  try {
    const page = await get("/api/passages", { ...passageFilters(), cursor: append ? state.cursor : undefined });
    if (!append) tbody.replaceChildren();
    tbody.append(...page.items.map(passageRow));
    state.cursor = page.next_cursor;
    $("more").hidden = !page.next_cursor;
    $("passage-count").textContent = tbody.children.length ? `${tbody.children.length} shown` : "No passages match these filters.";
  } catch (err) { $("passage-count").textContent = ""; tbody.replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "error" }, err.message))); }
}

async function refresh(cameraChanged = false) {
  if (!state.camera) return;
  if (state.busy) { state.again = true; return; }  // run once more when the current one ends
  state.busy = true;
  const cam = state.cameras.find((c) => c.name === state.camera);
  const r = range();
  const base = { site: state.pick, camera: state.camera, from: r.from, to: r.to };
  $("range-label").textContent = r.label;
  $("csv-link").href = `/api/counts/movements${query({ ...base, interval: $("interval").value, format: "csv" })}`;
  $("report-link").href = `/api/reports/tmc${query({ ...base, interval: $("interval").value, format: "pdf" })}`;
  if (cam) renderLive(cam);
  if (cameraChanged && cam) {
    $("entry-leg-filter").replaceChildren(el("option", { value: "" }, "All"), ...cam.legs.map((l) => el("option", { value: l }, l)));
  }
  const [tmc, speeds, queues] = await Promise.allSettled([
    get("/api/counts/movements", { ...base, interval: $("interval").value, row_counts: false }),
    get("/api/speeds", base),
    get("/api/queues", { ...base, step_s: 1, max_points: 1500 }),
  ]);
  if (tmc.status === "fulfilled") renderCounts(tmc.value, speeds.status === "fulfilled" ? speeds.value : null);
  else { showError($("counts-chart"), tmc.reason); showError($("kpis"), tmc.reason); showError($("od"), tmc.reason); }
  if (speeds.status === "fulfilled") renderSpeeds(speeds.value); else showError($("speed-chart"), speeds.reason);
  if (queues.status === "fulfilled") renderQueues(queues.value, r); else showError($("queue-chart"), queues.reason);
  await loadPassages(false);
  $("updated").textContent = `Updated ${new Date().toLocaleTimeString(undefined, { hourCycle: "h23" })}`;
  state.busy = false;
  if (state.again) { state.again = false; refresh(); }
}

async function refreshCameras() {
  try {
    const all = await get("/api/cameras");
    state.cameras = all.filter((c) => !state.pick || c.site === state.pick);
    renderTabs();
    const cam = state.cameras.find((c) => c.name === state.camera);
    if (cam) renderLive(cam);
  } catch { /* keep the old list */ }
}

function listen() {
  // Server-sent events tell us when new passages arrive; polling is the fallback.
  let timer = null;
  const poll = () => { if (!timer) timer = setInterval(() => { refreshCameras(); refresh(); }, 15000); };
  if (!("EventSource" in window)) { poll(); return; }
  if (state.events) state.events.close();
  const src = new EventSource("/api/events");
  state.events = src;
  src.addEventListener("update", (e) => {
    // The stream sends the current state first, then each change: refresh on all of them
    // (the first may already carry a change made while the page loaded).
    try { state.dataEnd = Math.max(state.dataEnd, JSON.parse(e.data).latest_passage_ts || 0); } catch { /* keep */ }
    if (e.data !== state.lastEvent) { refreshCameras(); refresh(); }
    state.lastEvent = e.data;
  });
  src.addEventListener("error", () => { if (src.readyState === EventSource.CLOSED) poll(); });
}

async function searchPlates(ev) {
  ev.preventDefault();
  const msg = $("plate-msg"), tbody = $("plates").querySelector("tbody");
  if (!apiKey()) { msg.textContent = "Enter the API key first (top right)."; $("key-dialog").showModal(); return; }
  msg.textContent = "Searching…";
  try {
    const r = range();
    const rows = await get("/api/plates", { text: $("plate-text").value.trim(), site: state.pick, camera: state.camera, from: r.from, to: r.to });
    tbody.replaceChildren(...rows.map((p) => el("tr", {}, el("td", {}, fmtDateTime(p.passage_ts)), el("td", {}, p.plate_text || (p.plate_hash ? `#${p.plate_hash.slice(0, 10)}…` : "–")),
      el("td", { class: "num" }, fmtPct(p.plate_confidence)), el("td", {}, p.vehicle_class), el("td", {}, p.colour || "–"), el("td", {}, p.movement || "–"))));
    msg.textContent = rows.length ? `${rows.length} found` : "No matching plates.";
  } catch (err) { msg.textContent = err.message; tbody.replaceChildren(); }
}

// Many sites in one store (a central API): a picker; each site's counts on its own clock.
async function loadSites() {
  try { state.sites = await get("/api/sites"); } catch { state.sites = []; }
  const picker = $("site-picker");
  if (state.sites.length < 2) { $("site-picker-l").hidden = true; return; }
  if (!state.sites.some((s) => s.name === state.pick)) state.pick = (state.sites.find((s) => s.local) || state.sites[0]).name;
  picker.replaceChildren(...state.sites.map((s) => el("option", { value: s.name }, `${s.name} (${s.cameras.length} cam.)`)));
  picker.value = state.pick;
  $("site-picker-l").hidden = false;
  const show = () => {
    const s = state.sites.find((x) => x.name === state.pick);
    setTimeZone(s.timezone);
    $("site-name").textContent = `${s.name} · ${s.timezone}`;
  };
  show();
  picker.onchange = async () => {
    state.pick = picker.value; state.camera = null; show();
    $("live").replaceChildren();
    await refreshCameras();
    state.camera = state.cameras.length ? state.cameras[0].name : null;
    renderTabs();
    refresh(true);
  };
}

async function main() {
  await setupKeyDialog({ onChange: () => {
    // a new key (and session cookie): open the live view and the live updates again with it
    $("live").replaceChildren();
    listen();
    refreshCameras().then(() => refresh());
  } });
  if (params.get("interval")) $("interval").value = params.get("interval");
  if (params.get("from") && params.get("live")) {
    $("range").prepend(el("option", { value: "live" }, "Live (since the start)"));
    $("range").value = "live";
  }
  if (params.get("from") && params.get("to") && !params.get("live")) {
    $("range").value = "custom";
    $("custom-from").value = localInput(params.get("from"));
    $("custom-to").value = localInput(params.get("to"));
    $("custom-from-l").hidden = false; $("custom-to-l").hidden = false;
  }
  $("range").addEventListener("change", () => {
    const custom = $("range").value === "custom";
    $("custom-from-l").hidden = !custom; $("custom-to-l").hidden = !custom;
    params.delete("from"); params.delete("to"); params.delete("live");
    refresh();
  });
  for (const id of ["custom-from", "custom-to"]) $(id).addEventListener("change", () => { params.delete("from"); params.delete("to"); refresh(); });
  $("interval").addEventListener("change", () => refresh());
  $("split").addEventListener("change", () => refresh());
  $("passage-filters").addEventListener("input", () => loadPassages(false));
  $("passage-filters").addEventListener("reset", () => setTimeout(() => loadPassages(false), 0));
  $("more").addEventListener("click", () => loadPassages(true));
  $("plate-form").addEventListener("submit", searchPlates);
  try {
    state.site = await get("/api/site");
    setTimeZone(state.site.timezone);
    if (state.site.banner) { $("banner").textContent = state.site.banner; $("banner").hidden = false; }
    $("site-name").textContent = `${state.site.name} · ${state.site.timezone}`;
  } catch { $("site-name").textContent = ""; }
  await loadSites();
  await refreshCameras();
  if (!state.camera && state.cameras.length) state.camera = state.cameras[0].name;
  if (!state.cameras.length) { $("live").replaceChildren(el("div", { class: "msg" }, "No cameras yet: start a worker or configure site.yaml.")); return; }
  renderTabs();
  await refresh(true);
  listen();
}

main();
