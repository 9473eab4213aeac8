// The suggestion of `trafficprn setup suggest` on the setup page: load it (suggested.yaml
// beside the server's site.yaml, or a file the user picks), list each leg's and lane's
// support (tracks) with Accept / Edit / Reject, and the suggested calibration.
import { get, post, enc, apiKey } from "./api.js";
import { el, fmtNum } from "./format.js";

export function initSuggest(app) {
  const { state, hooks, $ } = app;
  state.suggestion = null; // {origin, meta, lens, calibration, status}
  const msg = (text, cls = "muted") => { $("suggestion-msg").textContent = text; $("suggestion-msg").className = cls; };
  const suggested = () => [...state.legs, ...state.lanes].filter((z) => z.sugg);

  function setStatus(kind, z, status) {
    app.message("");
    z.sugg.status = status;
    if (kind === "leg" && status === "rejected") {
      for (const lane of state.lanes) if (lane.leg === z.name && lane.sugg) lane.sugg.status = "rejected";
    }
    if (kind === "lane" && status === "accepted") {
      const leg = state.legs.find((l) => l.name === z.leg);
      if (!leg || (leg.sugg && leg.sugg.status === "rejected")) {
        z.sugg.status = "rejected";
        app.message(`Lane ${z.name} approaches on leg ${z.leg}, which is rejected; accept the leg first.`, "error");
      }
    }
    renderRest(); app.changed();
  }

  hooks.zoneActions = (kind, z) => {
    if (!z.sugg) return [];
    const button = (label, onclick, pressed) => el("button", { class: "secondary", type: "button", "aria-label": `${label} ${kind} ${z.name}`,
      "aria-pressed": pressed ? "true" : "false", onclick }, label);
    return [button("Accept", () => setStatus(kind, z, "accepted"), z.sugg.status === "accepted"),
      button("Edit", () => { setStatus(kind, z, "accepted"); app.selectZone(kind, z.name); }, false),
      button("Reject", () => setStatus(kind, z, "rejected"), z.sugg.status === "rejected")];
  };

  function setCalibrationStatus(status) {
    const s = state.suggestion;
    s.status = status;
    if (status === "rejected") app.calib.revert();
    else app.calib.propose({ lens: s.lens, calibration: s.calibration, source: "suggestion" });
    renderRest();
  }

  function describeFit(fit) {
    if (!fit) return "fit not described";
    const values = Object.entries(fit.values).map(([k, v]) => `${k} ${fmtNum(v, 2)}${k in fit.uncertainty ? ` ± ${fmtNum(fit.uncertainty[k], 2)}` : ""}`);
    return [`${fit.method} fit`, ...values, fit.scale_source ? `scale: ${fit.scale_source}` : null].filter(Boolean).join(" · ");
  }

  function renderRest() {
    const s = state.suggestion;
    const pending = suggested().filter((z) => z.sugg.status === "pending").length + (s && s.status === "pending" ? 1 : 0);
    $("accept-rest").hidden = !pending;
    if (!s) { $("suggestion-calibration").replaceChildren(); return; }
    const points = s.calibration.points.length;
    const what = `${points ? `${points} point pairs` : "pose"} · ${describeFit(s.meta && s.meta.calibration)}`;
    const button = (label, status) => el("button", { class: "secondary", type: "button", "aria-label": `${label} the suggested calibration`,
      "aria-pressed": s.status === status ? "true" : "false", onclick: () => setCalibrationStatus(status) }, label);
    $("suggestion-calibration").replaceChildren(el("li", { class: s.status, "data-zone": "calibration", "data-status": s.status },
      el("span", {}, `Calibration and lens (${s.lens.model}) · ${what}`), el("span", { class: "acts" }, button("Accept", "accepted"), button("Reject", "rejected"))));
  }

  function renderMeta(s) {
    const m = s.suggestion;
    const box = $("suggestion-meta");
    box.hidden = false;
    if (!m) { box.replaceChildren(el("span", {}, "A plain site.yaml: no support recorded.")); return; }
    box.replaceChildren(el("span", {}, el("b", {}, fmtNum(m.tracks)), " tracks in ", el("b", {}, fmtNum(m.minutes, 1)), ` min of ${m.source}`,
      m.naming ? ` · ${m.naming}` : "", ` · ${m.legs.length} legs, ${m.lanes.length} lanes suggested`));
  }

  function apply(s) {
    const meta = s.suggestion || { legs: [], lanes: [] };
    const tracks = (list, name) => { const z = list.find((x) => x.name === name); return z ? z.tracks : null; };
    state.legs = s.legs.map((l) => ({ name: l.name, entry: l.entry, exit: l.exit, sugg: { tracks: tracks(meta.legs, l.name), status: "pending" } }));
    state.lanes = s.lanes.map((l) => ({ name: l.name, leg: l.leg, polygon: l.polygon, stop_line: l.stop_line, sugg: { tracks: tracks(meta.lanes, l.name), status: "pending" } }));
    state.points = [];
    state.suggestion = { origin: s.origin, meta: s.suggestion, lens: s.lens, calibration: s.calibration, status: "pending" };
    renderMeta(s);
    renderRest();
    app.changed();
    app.calib.propose({ lens: s.lens, calibration: s.calibration, source: "suggestion" });
    msg(`Suggestion loaded (${s.origin === "server" ? "suggested.yaml on the server" : "the picked file"}): it replaces the zones on the page until saved. Accept, edit or reject each leg, lane and the calibration, then save.`, "ok");
  }

  $("load-suggestion").addEventListener("click", async () => {
    msg("Loading the suggestion…");
    try { apply(await get(`/api/cameras/${enc(state.camera)}/suggestion`)); } catch (err) { msg(`No suggestion: ${err.message}`, "error"); }
  });
  $("suggestion-file").addEventListener("change", async () => {
    const file = $("suggestion-file").files[0];
    if (!file) return;
    if (!apiKey()) { msg("Enter the API key first: the server checks an uploaded suggestion.", "error"); $("key-dialog").showModal(); return; }
    msg(`Checking ${file.name}…`);
    try { apply(await post(`/api/cameras/${enc(state.camera)}/suggestion`, { yaml: await file.text() })); } catch (err) { msg(`${file.name} is not usable: ${err.message}`, "error"); }
  });
  $("accept-rest").addEventListener("click", () => {
    app.message("");
    for (const z of suggested()) if (z.sugg.status === "pending") z.sugg.status = "accepted";
    for (const lane of state.lanes) {
      const leg = state.legs.find((l) => l.name === lane.leg);
      if (lane.sugg && (!leg || (leg.sugg && leg.sugg.status === "rejected"))) lane.sugg.status = "rejected";
    }
    if (state.suggestion && state.suggestion.status === "pending") state.suggestion.status = "accepted";
    renderRest(); app.changed();
  });
  hooks.cameraLoaded.push(async () => {
    state.suggestion = null;
    $("suggestion-meta").hidden = true;
    renderRest();
  });
}
