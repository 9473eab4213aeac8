// Small fetch helpers for the trafficprn REST API. The API key lives in sessionStorage only.
const KEY = "trafficprn.apiKey";

export function apiKey() { return sessionStorage.getItem(KEY) || ""; }
export function setApiKey(value) {
  if (value) sessionStorage.setItem(KEY, value); else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const key = apiKey();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function handle(res) {
  if (res.ok) return res.json();
  let msg = `${res.status} ${res.statusText}`;
  try { const body = await res.json(); if (body && body.detail) msg = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail); } catch { /* not JSON */ }
  throw new ApiError(res.status, msg);
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

export async function get(path, params = {}) {
  return handle(await fetch(path + query(params), { headers: headers() }));
}

export async function put(path, body) {
  return handle(await fetch(path, { method: "PUT", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body) }));
}

export function enc(s) { return encodeURIComponent(s); }

/** Wire the page's API-key dialog (#key-dialog, #key-button, #key-input) to sessionStorage. */
export function setupKeyDialog() {
  const $ = (id) => document.getElementById(id);
  const dlg = $("key-dialog");
  const label = () => { $("key-button").textContent = apiKey() ? "API key ✓" : "API key"; };
  $("key-button").addEventListener("click", () => { $("key-input").value = apiKey(); dlg.showModal(); });
  dlg.addEventListener("close", () => {
    if (dlg.returnValue === "save") setApiKey($("key-input").value.trim());
    if (dlg.returnValue === "clear") setApiKey("");
    label();
  });
  label();
}
