// Calibration on the setup page: the check grid of the saved or proposed calibration over
// the snapshot (ground lines every few metres, computed by the server), map pairs (a point
// on the camera image and the same point on an aerial image of known scale, fitted by the
// server), and the save of lens + calibration before the zones.
import { get, post, put, enc, apiKey } from "./api.js";
import { el, fmtNum } from "./format.js";

const GRID = "#56b4e9", AXIS = "#d55e00", PAIR = "#cc79a7";
const round = (p) => p.map((v) => Math.round(v * 10) / 10);

export function initCalib(app) {
  const { state, hooks, $ } = app;
  const canvas = $("canvas"), aerial = $("aerial"), actx = aerial.getContext("2d");
  // current: {lens, calibration, source: "saved" | "suggestion" | "map pairs"}; grid: the server's check
  const cal = { saved: null, current: null, grid: null, pairs: [], residuals: [], pending: null, picking: false, image: null, seq: 0 };
  const gridMsg = (t, c = "muted") => { $("grid-msg").textContent = t; $("grid-msg").className = c; };
  const pairsMsg = (t, c = "muted") => { $("pairs-msg").textContent = t; $("pairs-msg").className = c; };

  async function refreshGrid() {
    const seq = ++cal.seq, c = cal.current;
    cal.grid = null;
    canvas.dataset.gridLines = "0";
    $("calibration-source").textContent = c ? `${c.source} · ${c.calibration.points.length ? `${c.calibration.points.length} point pairs` : "pose"}` : "";
    app.draw();
    if (!c) return;
    if (c.source !== "saved" && !apiKey()) { gridMsg("Enter the API key: the server checks a proposed calibration.", "error"); return; }
    gridMsg("Checking the calibration…");
    try {
      const path = `/api/cameras/${enc(state.camera)}/calibration/check`;
      const res = c.source === "saved" ? await get(path) : await post(path, { lens: c.lens, calibration: c.calibration });
      if (seq !== cal.seq) return;
      cal.grid = res;
      canvas.dataset.gridLines = String(res.lines.length);
      canvas.dataset.gridSource = c.source;
      const rms = res.rms_m === null ? "no point pairs to compare" : `RMS ${fmtNum(res.rms_m, 2)} m (${fmtNum(res.rms_px, 1)} px) over its point pairs`;
      gridMsg(`Grid of the ${c.source} calibration: ${res.lines.length} ground lines every ${fmtNum(res.spacing_m)} m (orange: x = 0 and y = 0); ${rms}.`, "ok");
    } catch (err) { if (seq === cal.seq) gridMsg(`No grid: ${err.message}`, "error"); }
    app.draw();
  }

  function polyline(ctx, pts) { ctx.beginPath(); pts.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1]))); ctx.stroke(); }
  function marker(ctx, p, r, colour, text) {
    ctx.beginPath(); ctx.arc(p[0], p[1], r, 0, 2 * Math.PI); ctx.lineWidth = r / 2; ctx.strokeStyle = colour; ctx.stroke();
    if (text) { ctx.fillStyle = colour; ctx.fillText(text, p[0] + r + 2, p[1] - r - 2); }
  }

  hooks.overlays.push((ctx, lw) => {
    if (cal.grid && $("show-grid").checked) {
      for (const line of cal.grid.lines) {
        ctx.strokeStyle = line.value_m === 0 ? AXIS : GRID; ctx.lineWidth = line.value_m === 0 ? lw * 1.5 : lw;
        for (const piece of line.pieces_px) polyline(ctx, piece);
      }
      for (const p of cal.grid.points) {
        marker(ctx, p.image_px, lw * 2, p.inlier ? "#ffffff" : AXIS);
        if (p.back_px) { ctx.strokeStyle = AXIS; ctx.lineWidth = lw / 2; polyline(ctx, [p.image_px, p.back_px]); }
      }
    }
    cal.pairs.forEach((p, i) => marker(ctx, p.image_px, lw * 3, PAIR, String(i + 1)));
    if (cal.pending) marker(ctx, cal.pending, lw * 3, "#f0e442", String(cal.pairs.length + 1));
  });

  function drawAerial() {
    if (!cal.image) return;
    const lw = Math.max(2, aerial.width / 300);
    actx.drawImage(cal.image, 0, 0);
    actx.font = `${Math.round(lw * 8)}px system-ui, sans-serif`;
    cal.pairs.forEach((p, i) => marker(actx, p.aerial_px, lw * 3, PAIR, String(i + 1)));
  }

  function renderPairs() {
    $("pairs").replaceChildren(...cal.pairs.map((p, i) => {
      const r = cal.residuals[i];
      return el("li", { "data-residual-m": r ? r.residual_m : null }, `camera [${p.image_px.join(", ")}] ↔ aerial [${p.aerial_px.join(", ")}]`,
        r ? ` · ${fmtNum(r.residual_m, 2)} m off${r.inlier ? "" : " (outlier)"}` : "");
    }));
  }

  function setPicking(on) {
    cal.picking = on;
    cal.pending = on ? cal.pending : null;
    $("pick-pairs").setAttribute("aria-pressed", on ? "true" : "false");
    $("pick-pairs").textContent = on ? "Stop picking" : "Pick pairs";
    if (on) pairsMsg(`Pair ${cal.pairs.length + 1}: click a point on the camera image.`);
    app.draw();
  }

  hooks.busy = () => cal.picking;
  hooks.click = (pt) => {
    if (!cal.picking) return false;
    cal.pending = round(pt);
    pairsMsg(`Pair ${cal.pairs.length + 1}: now click the same point on the aerial image.`);
    app.draw();
    return true;
  };

  aerial.addEventListener("click", (ev) => {
    if (!cal.picking) { pairsMsg("Press Pick pairs first."); return; }
    if (!cal.pending) { pairsMsg(`Pair ${cal.pairs.length + 1}: click the camera image first, then the aerial image.`); return; }
    const r = aerial.getBoundingClientRect();
    const pt = [((ev.clientX - r.left) / r.width) * aerial.width, ((ev.clientY - r.top) / r.height) * aerial.height];
    cal.pairs.push({ image_px: cal.pending, aerial_px: round(pt) });
    cal.pending = null; cal.residuals = [];
    renderPairs(); drawAerial(); app.draw();
    pairsMsg(`${cal.pairs.length} pair${cal.pairs.length === 1 ? "" : "s"}${cal.pairs.length < 4 ? ` (at least 4 to fit)` : "; Fit when they are spread over the road"}. Pair ${cal.pairs.length + 1}: click the camera image.`);
  });

  $("aerial-file").addEventListener("change", () => {
    const file = $("aerial-file").files[0];
    if (!file) return;
    const img = new Image();
    img.onload = () => {
      cal.image = img; aerial.width = img.naturalWidth; aerial.height = img.naturalHeight;
      aerial.parentElement.hidden = false; drawAerial();
      pairsMsg(`Aerial image ${file.name} (${img.naturalWidth} × ${img.naturalHeight} px). Give its scale, then Pick pairs.`);
    };
    img.onerror = () => pairsMsg(`${file.name} is not an image this browser can show.`, "error");
    img.src = URL.createObjectURL(file);
  });
  $("pick-pairs").addEventListener("click", () => setPicking(!cal.picking));
  $("undo-pair").addEventListener("click", () => {
    if (cal.pending) cal.pending = null; else cal.pairs.pop();
    cal.residuals = []; renderPairs(); drawAerial(); app.draw();
  });
  $("show-grid").addEventListener("change", () => app.draw());
  $("fit-map").addEventListener("click", async () => {
    const mpp = Number($("aerial-mpp").value);
    const lens = (cal.current || cal.saved || {}).lens;
    if (cal.pairs.length < 4) { pairsMsg(`Fitting needs at least 4 pairs, there are ${cal.pairs.length}.`, "error"); return; }
    if (!(mpp > 0)) { pairsMsg("Give the aerial image's scale (metres per aerial px) first.", "error"); return; }
    if (!lens) { pairsMsg("The camera has no lens to fit with.", "error"); return; }
    if (!apiKey()) { pairsMsg("Enter the API key first: the server fits the pairs.", "error"); $("key-dialog").showModal(); return; }
    pairsMsg("Fitting…");
    try {
      const res = await post(`/api/cameras/${enc(state.camera)}/calibration/fit-map`, { lens, metres_per_px: mpp, pairs: cal.pairs });
      cal.residuals = res.points; renderPairs(); setPicking(false);
      pairsMsg(`Fitted from ${cal.pairs.length} pairs: RMS ${fmtNum(res.rms_m, 2)} m. The grid shows the fit; Save keeps it (ground: x east, y north of pair 1).`, "ok");
      propose({ lens, calibration: res.calibration, source: "map pairs" });
    } catch (err) { pairsMsg(`Not fitted: ${err.message}`, "error"); }
  });

  function propose(c) { cal.current = { ...c }; refreshGrid(); }
  function revert() { cal.current = cal.saved ? { ...cal.saved } : null; refreshGrid(); }
  app.calib = { propose, revert };

  hooks.cameraLoaded.push(async (name) => {
    cal.saved = cal.current = null; cal.pairs = []; cal.residuals = []; cal.pending = null;
    renderPairs(); setPicking(false);
    try {
      const res = await get(`/api/cameras/${enc(name)}/calibration`);
      cal.saved = { lens: res.lens, calibration: res.calibration, source: "saved" };
      if (res.problem) { cal.current = null; gridMsg(`The saved calibration does not fit: ${res.problem}`, "error"); return; }
      cal.current = { ...cal.saved };
    } catch (err) { gridMsg(`No calibration: ${err.message}`, "error"); return; }
    refreshGrid();
  });

  hooks.beforeSave.push(async () => {
    const c = cal.current, s = state.suggestion;
    if (s && s.status === "pending") throw new Error("accept or reject the suggested calibration first");
    if (!c || c.source === "saved") return null;
    if (c.source === "suggestion" && (!s || s.status !== "accepted")) return null;
    const res = await put(`/api/cameras/${enc(state.camera)}/calibration`, { lens: c.lens, calibration: c.calibration });
    cal.saved = { lens: res.lens, calibration: res.calibration, source: "saved" };
    cal.current = { ...cal.saved };
    refreshGrid();
    return `the ${c.source} calibration (${res.calibration.points.length ? `${res.calibration.points.length} point pairs` : "pose"}, RMS ${fmtNum(res.rms_m, 2)} m)`;
  });
}
