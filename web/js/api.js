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

export async function post(path, body) {
  return handle(await fetch(path, { method: "POST", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(body) }));
}

export function enc(s) { return encodeURIComponent(s); }

/** Exchange the key for an HttpOnly session cookie (POST /api/session), so that the live
 *  view (<img>) and server-sent events, which cannot send headers, pass a read rule that
 *  needs the key. Without a key, end any session. Never throws. */
export async function syncSession() {
  const key = apiKey();
  try {
    await fetch("/api/session", { method: key ? "POST" : "DELETE", headers: headers(), credentials: "same-origin" });
  } catch { /* offline: the page says so elsewhere */ }
}

/** Wire the page's API-key dialog (#key-dialog, #key-button, #key-input) to sessionStorage;
 *  resolves once the session cookie matches the stored key. `onChange` runs after a changed
 *  key has its session, so that the page can restart its live view and live updates. */
export async function setupKeyDialog({ onChange = null } = {}) {
  const $ = (id) => document.getElementById(id);
  const dlg = $("key-dialog");
  const label = () => { $("key-button").textContent = apiKey() ? "API key ✓" : "API key"; };
  $("key-button").addEventListener("click", () => { $("key-input").value = apiKey(); dlg.showModal(); });
  dlg.addEventListener("close", async () => {
    const before = apiKey();
    if (dlg.returnValue === "save") setApiKey($("key-input").value.trim());
    if (dlg.returnValue === "clear") setApiKey("");
    label();
    if (apiKey() !== before) { await syncSession(); if (onChange) onChange(); }
  });
  label();
  if (apiKey()) await syncSession();
}
