// Setup: draw legs (entry/exit zones), lanes and stop lines over a camera snapshot,
// export the site.yaml section, save it with the API key. A suggestion (setup_suggest.js)
// fills the lists with zones to accept, edit or reject; the calibration (setup_calib.js)
// draws its check grid here and is saved with the zones.
import { get, put, enc, apiKey, setupKeyDialog } from "./api.js";
import { SERIES, el } from "./format.js";
import { initSuggest } from "./setup_suggest.js";
import { initCalib } from "./setup_calib.js";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d");
// A zone from a suggestion carries sugg: {tracks, status: "pending" | "accepted" | "rejected"}.
const state = { camera: null, legs: [], lanes: [], points: [], image: null, dirty: false };
// What the suggestion and calibration modules hang on the page.
const hooks = { overlays: [], click: null, busy: null, zoneActions: null, cameraLoaded: [], beforeSave: [] };
const usable = (z) => !z.sugg || z.sugg.status === "accepted";

const round = (v) => Math.round(v * 10) / 10;
const pt = (p) => `[${round(p[0])}, ${round(p[1])}]`;

export function toYaml(legs, lanes) {
  const out = ["legs:"];
  if (!legs.length) out[0] = "legs: []";
  for (const l of legs) {
    out.push(`- name: ${JSON.stringify(l.name)}`, "  entry:", ...l.entry.map((p) => `  - ${pt(p)}`), "  exit:", ...l.exit.map((p) => `  - ${pt(p)}`));
  }
  out.push(lanes.length ? "lanes:" : "lanes: []");
  for (const l of lanes) {
    out.push(`- name: ${JSON.stringify(l.name)}`, `  leg: ${JSON.stringify(l.leg)}`, "  polygon:", ...l.polygon.map((p) => `  - ${pt(p)}`), "  stop_line:", ...l.stop_line.map((p) => `  - ${pt(p)}`));
  }
  return out.join("\n") + "\n";
}

function complete() {
  const legs = state.legs.filter((l) => usable(l) && l.entry.length >= 3 && l.exit.length >= 3);
  const names = new Set(legs.map((l) => l.name));
  const lanes = state.lanes.filter((l) => usable(l) && l.polygon.length >= 3 && l.stop_line.length === 2 && names.has(l.leg));
  return { legs: legs.map((l) => ({ name: l.name, entry: l.entry.map((p) => p.map(round)), exit: l.exit.map((p) => p.map(round)) })),
    lanes: lanes.map((l) => ({ name: l.name, leg: l.leg, polygon: l.polygon.map((p) => p.map(round)), stop_line: l.stop_line.map((p) => p.map(round)) })) };
}

function colourOf(legName) {
  const i = state.legs.findIndex((l) => l.name === legName);
  return SERIES[(i < 0 ? 7 : i) % SERIES.length];
}

function path(points, close) {
  ctx.beginPath();
  points.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
  if (close) ctx.closePath();
}

function draw() {
  const lw = Math.max(2, canvas.width / 500);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (state.image) ctx.drawImage(state.image, 0, 0, canvas.width, canvas.height);
  else {
    ctx.fillStyle = "#1d2733"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#2c3846"; ctx.lineWidth = 1;
    for (let x = 0; x < canvas.width; x += 80) { ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, canvas.height); ctx.stroke(); }
    for (let y = 0; y < canvas.height; y += 80) { ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(canvas.width, y); ctx.stroke(); }
  }
  ctx.font = `${Math.round(lw * 9)}px system-ui, sans-serif`;
  const label = (z, p) => { const t = z.sugg && z.sugg.tracks !== null ? `${z.name} · ${z.sugg.tracks}` : z.name; ctx.fillStyle = "#fff"; ctx.strokeStyle = "#000"; ctx.lineWidth = lw; ctx.strokeText(t, p[0] + 6, p[1] - 6); ctx.fillText(t, p[0] + 6, p[1] - 6); };
  for (const leg of state.legs) {
    if (leg.sugg && leg.sugg.status === "rejected") continue;
    ctx.globalAlpha = leg.sugg && leg.sugg.status === "pending" ? 0.6 : 1;
    const c = colourOf(leg.name);
    if (leg.entry.length) { path(leg.entry, true); ctx.fillStyle = c + "55"; ctx.fill(); ctx.strokeStyle = c; ctx.lineWidth = lw; ctx.setLineDash([]); ctx.stroke(); }
    if (leg.exit.length) { path(leg.exit, true); ctx.strokeStyle = c; ctx.lineWidth = lw; ctx.setLineDash([lw * 4, lw * 3]); ctx.stroke(); ctx.setLineDash([]); }
    const anchor = leg.entry[0] || leg.exit[0];
    if (anchor) label(leg, anchor);
  }
  for (const lane of state.lanes) {
    if (lane.sugg && lane.sugg.status === "rejected") continue;
    ctx.globalAlpha = lane.sugg && lane.sugg.status === "pending" ? 0.6 : 1;
    if (lane.polygon.length) { path(lane.polygon, true); ctx.strokeStyle = "#e8edf2"; ctx.lineWidth = lw / 1.5; ctx.stroke(); }
    if (lane.stop_line.length === 2) { path(lane.stop_line, false); ctx.strokeStyle = "#fff"; ctx.lineWidth = lw * 2; ctx.stroke(); }
    if (lane.sugg && lane.polygon.length) label(lane, lane.polygon[lane.polygon.length - 1]);
  }
  ctx.globalAlpha = 1;
  for (const overlay of hooks.overlays) overlay(ctx, lw);
  if (state.points.length) {
    path(state.points, false); ctx.strokeStyle = "#f0e442"; ctx.lineWidth = lw; ctx.stroke();
    for (const p of state.points) { ctx.beginPath(); ctx.arc(p[0], p[1], lw * 2, 0, 2 * Math.PI); ctx.fillStyle = "#f0e442"; ctx.fill(); }
  }
  $("yaml").value = toYaml(...Object.values(complete()));
}

function zoneItem(kind, z, i, text, list) {
  const s = z.sugg;
  const support = s ? el("span", { class: "tracks" }, s.tracks === null ? " · no support given" : ` · ${s.tracks} tracks`) : null;
  const acts = hooks.zoneActions ? hooks.zoneActions(kind, z) : [];
  return el("li", { class: s ? s.status : "", "data-zone": `${kind}:${z.name}`, "data-status": s ? s.status : "drawn", "data-tracks": s && s.tracks !== null ? s.tracks : null },
    el("span", {}, ...text, support), el("span", { class: "acts" }, ...acts,
      el("button", { class: "secondary", type: "button", "aria-label": `Delete ${kind} ${z.name}`, onclick: () => { list.splice(i, 1); changed(); } }, "Delete")));
}

function renderLists() {
  $("legs").replaceChildren(...state.legs.map((l, i) => zoneItem("leg", l, i, [el("span", { class: "swatch", style: `background:${colourOf(l.name)}` }), `${l.name} · entry ${l.entry.length ? "✓" : "–"} · exit ${l.exit.length ? "✓" : "–"}`], state.legs)));
  $("lanes").replaceChildren(...state.lanes.map((l, i) => zoneItem("lane", l, i, [`${l.name} (${l.leg}) · polygon ${l.polygon.length ? "✓" : "–"} · stop line ${l.stop_line.length ? "✓" : "–"}`], state.lanes)));
  const legSel = $("leg"), laneSel = $("lane");
  const keepLeg = legSel.value, keepLane = laneSel.value;
  legSel.replaceChildren(...state.legs.map((l) => el("option", { value: l.name }, l.name)));
  laneSel.replaceChildren(...state.lanes.map((l) => el("option", { value: l.name }, `${l.name} (${l.leg})`)));
  if (state.legs.some((l) => l.name === keepLeg)) legSel.value = keepLeg;
  if (state.lanes.some((l) => l.name === keepLane)) laneSel.value = keepLane;
}

function changed() { state.dirty = true; renderLists(); draw(); }

function commit() {
  const tool = $("tool").value, pts = state.points;
  const need = tool === "stop" ? 2 : 3;
  if (pts.length < need) { $("save-msg").textContent = `A ${tool === "stop" ? "stop line" : "polygon"} needs ${need} points.`; $("save-msg").className = "error"; return; }
  if (tool === "entry" || tool === "exit") {
    const leg = state.legs.find((l) => l.name === $("leg").value);
    if (!leg) { $("save-msg").textContent = "Add a leg first."; $("save-msg").className = "error"; return; }
    leg[tool] = pts.slice();
  } else {
    const lane = state.lanes.find((l) => l.name === $("lane").value);
    if (!lane) { $("save-msg").textContent = "Add a lane first."; $("save-msg").className = "error"; return; }
    if (tool === "lane") lane.polygon = pts.slice(); else lane.stop_line = pts.slice(0, 2);
  }
  state.points = [];
  $("save-msg").textContent = "";
  changed();
}

function message(text, cls = "muted") { $("save-msg").textContent = text; $("save-msg").className = cls; }

/** Put the drawing tools on one zone (Edit of a suggested zone): its next shape replaces it. */
function selectZone(kind, name) {
  $("tool").value = kind === "leg" ? "entry" : "lane";
  $("tool").dispatchEvent(new Event("change"));
  $(kind === "leg" ? "leg" : "lane").value = name;
  message(`Editing ${kind} ${name}: draw its ${kind === "leg" ? "entry zone (then pick Leg exit zone for its exit)" : "polygon (then Lane stop line)"}; the new shape replaces the suggested one.`);
  canvas.scrollIntoView({ block: "nearest" });
}

function canvasPoint(ev) {
  const r = canvas.getBoundingClientRect();
  return [((ev.clientX - r.left) / r.width) * canvas.width, ((ev.clientY - r.top) / r.height) * canvas.height];
}

async function loadCamera(name) {
  state.camera = name;
  state.points = [];
  const zones = await get(`/api/cameras/${enc(name)}/zones`);
  const [w, h] = zones.image_size || [1280, 720];
  canvas.width = w; canvas.height = h;
  $("image-size").textContent = `${w} × ${h} px`;
  state.legs = zones.legs.map((l) => ({ name: l.name, entry: l.entry, exit: l.exit }));
  state.lanes = zones.lanes.map((l) => ({ name: l.name, leg: l.leg, polygon: l.polygon, stop_line: l.stop_line }));
  state.image = null;
  renderLists(); draw();
  for (const f of hooks.cameraLoaded) await f(name);
  const worker = await get(`/api/cameras/${enc(name)}/worker`);
  if (!worker.reachable) { $("snapshot-msg").textContent = `No snapshot (${worker.detail}): drawing on a grid.`; return; }
  $("snapshot-msg").textContent = "Loading snapshot…";
  const img = new Image();
  img.onload = () => { state.image = img; $("snapshot-msg").textContent = "Snapshot loaded (plates blurred)."; draw(); };
  img.onerror = () => { $("snapshot-msg").textContent = "No snapshot: the worker does not answer. Drawing on a grid."; };
  img.src = `/api/cameras/${enc(name)}/snapshot.jpg?t=${Date.now()}`;
}

async function save() {
  const msg = $("save-msg");
  if (!apiKey()) { msg.textContent = "Enter the API key first."; msg.className = "error"; $("key-dialog").showModal(); return; }
  const pending = [...state.legs, ...state.lanes].filter((z) => z.sugg && z.sugg.status === "pending");
  if (pending.length) { msg.textContent = `Accept or reject each suggested leg and lane first (${pending.length} pending: ${pending.map((z) => z.name).join(", ")}).`; msg.className = "error"; return; }
  msg.textContent = "Saving…"; msg.className = "muted";
  const done = [];
  try {
    for (const f of hooks.beforeSave) { const what = await f(); if (what) done.push(what); }
    const res = await put(`/api/cameras/${enc(state.camera)}/zones`, complete());
    done.unshift(`${res.legs.length} legs and ${res.lanes.length} lanes`);
    msg.textContent = `Saved ${done.join(" and ")} to site.yaml; restart the camera's worker to use them.`; msg.className = "ok";
    state.dirty = false;
  } catch (err) {
    msg.textContent = done.length ? `Saved ${done.join(" and ")}, but not the legs and lanes: ${err.message}` : `Not saved: ${err.message}`;
    msg.className = "error";
  }
}

async function main() {
  await setupKeyDialog();
  const app = { state, hooks, $, draw, changed, selectZone, message };
  initSuggest(app);
  initCalib(app);
  canvas.addEventListener("click", (ev) => {
    if (hooks.click && hooks.click(canvasPoint(ev))) return;
    state.points.push(canvasPoint(ev));
    if ($("tool").value === "stop" && state.points.length === 2) commit(); else draw();
  });
  canvas.addEventListener("dblclick", (ev) => { ev.preventDefault(); if (hooks.busy && hooks.busy()) return; state.points.pop(); commit(); });
  document.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement) return;
    if (ev.key === "Enter") commit();
    if (ev.key === "Escape") { state.points.pop(); draw(); }
  });
  $("finish").addEventListener("click", commit);
  $("undo").addEventListener("click", () => { state.points.pop(); draw(); });
  $("cancel").addEventListener("click", () => { state.points = []; draw(); });
  $("tool").addEventListener("change", () => {
    const lane = ["lane", "stop"].includes($("tool").value);
    $("leg-l").hidden = lane; $("lane-l").hidden = !lane; state.points = []; draw();
  });
  $("add-leg").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("new-leg").value.trim();
    if (name && !state.legs.some((l) => l.name === name)) { state.legs.push({ name, entry: [], exit: [] }); $("new-leg").value = ""; changed(); $("leg").value = name; }
  });
  $("add-lane").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const name = $("new-lane").value.trim(), leg = $("leg").value || (state.legs[0] && state.legs[0].name);
    if (!leg) { $("save-msg").textContent = "Add a leg before its lanes."; $("save-msg").className = "error"; return; }
    if (name && !state.lanes.some((l) => l.name === name)) { state.lanes.push({ name, leg, polygon: [], stop_line: [] }); $("new-lane").value = ""; changed(); $("lane").value = name; }
  });
  $("copy").addEventListener("click", async () => { try { await navigator.clipboard.writeText($("yaml").value); $("save-msg").textContent = "Copied."; } catch { $("yaml").select(); } });
  $("save").addEventListener("click", save);
  $("image-file").addEventListener("change", () => {
    const file = $("image-file").files[0];
    if (!file) return;
    const img = new Image();
    img.onload = () => { state.image = img; $("snapshot-msg").textContent = `Drawing over ${file.name}.`; draw(); };
    img.src = URL.createObjectURL(file);
  });
  window.addEventListener("beforeunload", (ev) => { if (state.dirty) ev.preventDefault(); });
  const site = await get("/api/site");
  $("site-name").textContent = `${site.name} · setup`;
  $("camera").replaceChildren(...site.cameras.map((c) => el("option", { value: c }, c)));
  $("camera").addEventListener("change", () => loadCamera($("camera").value));
  const wanted = new URLSearchParams(location.search).get("camera");
  if (wanted && site.cameras.includes(wanted)) $("camera").value = wanted;
  if (site.cameras.length) await loadCamera($("camera").value);
  else $("snapshot-msg").textContent = "The API was started without a site config (--site).";
}

main();
