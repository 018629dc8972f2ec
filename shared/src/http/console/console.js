// Cairn's console: one page over the public API, with the key the user enters (kept in
// sessionStorage, sent as a bearer token). No third-party code; every value shown goes
// through textContent, never parsed as markup.
"use strict";

const KEY = "cairnKey";
const REFRESH_MS = 2000;
const $ = (id) => document.getElementById(id);
let timer = null;
let openLogs = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// One API call; answers {status, body}. A network failure is status 0.
async function api(method, path) {
  try {
    const r = await fetch(path, { method, headers: { Authorization: "Bearer " + sessionStorage.getItem(KEY) } });
    let body = {};
    try { body = await r.json(); } catch (_) { /* not JSON */ }
    return { status: r.status, body };
  } catch (e) {
    return { status: 0, body: { error: "The server could not be reached: " + e.message } };
  }
}

// What a refused call means for this part of the page, in words a person can act on.
function refusal(res, permission, what) {
  if (res.status === 403) {
    return `This key has no ${permission} permission: ${what} needs it. ` +
      `Ask for a key with ${permission} (cairn keys create --permissions ${permission},...).`;
  }
  return (res.body && res.body.error) || `The server answered ${res.status}.`;
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  const span = (n) => n < 60 ? `${n} s` : n < 3600 ? `${Math.floor(n / 60)} min` : n < 86400 ? `${Math.floor(n / 3600)} h` : `${Math.floor(n / 86400)} days`;
  if (Math.abs(s) < 5) return "just now";
  return s > 0 ? `${span(s)} ago` : `in ${span(-s)}`;
}

function when(iso) {
  return iso ? el("span", { title: new Date(iso).toLocaleString(), text: ago(iso) }) : "";
}

function bytes(n) {
  if (n == null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

function millis(ms) {
  if (ms == null) return "";
  return ms < 1000 ? `${ms} ms` : ms < 60000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60000)} min ${Math.floor(ms / 1000) % 60} s`;
}

function badge(status) {
  return el("span", { class: "badge " + status, text: status });
}

function progress(e) {
  const fill = el("div", { class: "fill " + e.status });
  fill.style.width = e.progress + "%";
  return el("div", { class: "bar", "data-execution": e.id },
    el("div", { class: "track" }, fill),
    el("span", { class: "pct", text: e.progress + "%" }),
    el("span", { class: "stage", text: e.stage }));
}

function showNotice(id, text) {
  const n = $(id);
  n.textContent = text || "";
  n.hidden = !text;
}

// Fills a table from one API list and answers {status, items}. A refusal hides the table
// and says in its notice what the missing permission is needed for.
async function loadList({ path, table, notice, permission, what, empty, columns, row }) {
  const res = await api("GET", path);
  const body = $(table).tBodies[0];
  if (res.status !== 200) {
    body.replaceChildren();
    $(table).hidden = true;
    showNotice(notice, refusal(res, permission, what));
    return { status: res.status, items: [] };
  }
  showNotice(notice, "");
  $(table).hidden = false;
  const items = res.body.data || [];
  const rows = items.length ? items.map(row) : [el("tr", {}, el("td", { class: "empty", colspan: String(columns), text: empty }))];
  body.replaceChildren(...rows);
  return { status: 200, items };
}

async function loadJobs() {
  const { status, items } = await loadList({
    path: "/api/jobs", table: "jobs", notice: "jobs-error", permission: "jobs:read", what: "the list of jobs",
    empty: "No jobs yet: create one with cairn jobs create or POST /api/jobs.", columns: 4, row: jobRow,
  });
  if (status === 200) $("jobs-note").textContent = `${items.length} job${items.length === 1 ? "" : "s"}`;
  return status;
}

function jobRow(j) {
  const last = j.lastExecution;
  const run = el("button", { "data-run": j.id, text: "Run" });
  run.addEventListener("click", () => runJob(j, run));
  const trigger = el("button", { class: "ghost", text: "API trigger" });
  trigger.addEventListener("click", () => showTrigger(j));
  return el("tr", {},
    el("td", {}, el("div", { text: j.name }), el("div", { class: "id", text: j.id })),
    el("td", {}, last ? badge(last.status) : el("span", { class: "muted", text: "never run" }), " ", last ? when(last.endedAt || last.queuedAt) : ""),
    el("td", {}, j.nextRunAt ? when(j.nextRunAt) : el("span", { class: "muted", text: j.enabled ? "no schedule" : "disabled" })),
    el("td", { class: "actions" }, trigger, run));
}

async function runJob(job, button) {
  button.disabled = true;
  const res = await api("POST", `/api/jobs/${encodeURIComponent(job.id)}/run`);
  button.disabled = false;
  if (res.status !== 200) {
    showNotice("jobs-error", refusal(res, "jobs:execute", `running ${job.name}`));
    return;
  }
  showNotice("jobs-error", "");
  await refresh();
}

function showTrigger(job) {
  const origin = window.location.origin;
  $("api-job").textContent = job.name;
  $("curl-run").textContent = `curl -X POST "${origin}/api/jobs/${job.id}/run" \\\n  -H "Authorization: Bearer $CAIRN_KEY"`;
  $("curl-poll").textContent = `curl "${origin}/api/executions/EXECUTION_ID" \\\n  -H "Authorization: Bearer $CAIRN_KEY"`;
  $("api-trigger").hidden = false;
}

async function loadExecutions() {
  const { status } = await loadList({
    path: "/api/executions?limit=15", table: "executions", notice: "executions-error", permission: "history:read",
    what: "the list of executions and their progress", empty: "No executions yet.", columns: 7, row: executionRow,
  });
  return status;
}

function executionRow(e) {
  const row = el("tr", { class: "clickable", "data-status": e.status, "data-id": e.id },
    el("td", {}, el("div", { text: e.jobName }), el("div", { class: "id", text: e.id })),
    el("td", { text: e.type }),
    el("td", {}, badge(e.status)),
    el("td", {}, progress(e)),
    el("td", {}, when(e.startedAt)),
    el("td", { text: millis(e.duration) }),
    el("td", { text: bytes(e.size) }));
  row.addEventListener("click", () => { openLogs = e.id; loadLogs(); });
  return row;
}

async function loadLogs() {
  if (!openLogs) return;
  const res = await api("GET", `/api/executions/${encodeURIComponent(openLogs)}?includeLogs=true`);
  $("logs").hidden = false;
  $("logs-of").textContent = openLogs;
  if (res.status !== 200) {
    $("log-lines").textContent = refusal(res, "history:read", "reading logs");
    return;
  }
  const d = res.body.data;
  const lines = (d.logs || []).map((l) => `${l.timestamp}  ${l.level.padEnd(7)}  ${l.stage.padEnd(18)}  ${l.message}`);
  if (d.error) lines.push("", "error: " + d.error);
  $("log-lines").textContent = lines.join("\n") || "(no log entries yet)";
}

async function refresh() {
  const [jobs, executions] = await Promise.all([loadJobs(), loadExecutions()]);
  if (jobs === 401 || executions === 401) {
    signOut($("jobs-error").textContent || $("executions-error").textContent);
    return;
  }
  await loadLogs();
}

function signIn(key) {
  sessionStorage.setItem(KEY, key);
  $("sign-in").hidden = true;
  $("session").hidden = false;
  // No part of the key is shown: a screenshot of the page must not carry any of it.
  $("key-name").textContent = "signed in with an API key";
  $("jobs-card").hidden = false;
  $("executions-card").hidden = false;
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

function signOut(message) {
  clearInterval(timer);
  sessionStorage.removeItem(KEY);
  openLogs = null;
  for (const id of ["jobs-card", "executions-card", "session", "logs", "api-trigger"]) $(id).hidden = true;
  $("sign-in").hidden = false;
  const err = $("sign-in-error");
  err.textContent = message ? "The key was not accepted (401): " + message : "";
  err.hidden = !message;
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("key").value.trim();
    $("key").value = "";
    if (key) signIn(key);
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("api-close").addEventListener("click", () => { $("api-trigger").hidden = true; });
  $("logs-close").addEventListener("click", () => { openLogs = null; $("logs").hidden = true; });
  for (const b of document.querySelectorAll("button.copy")) {
    b.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($(b.dataset.copy).textContent));
  }
  const saved = sessionStorage.getItem(KEY);
  if (saved) signIn(saved);
});
