// The sipline dashboard: plain JavaScript, no libraries, nothing fetched from elsewhere.
// Data comes from the management API (/api/...), authenticated by the session cookie
// set at login. Text from the network is only ever set as textContent.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COL = 190; // px per party column in the ladder (150 on a phone)
let current = "overview";
let timer = null;

function $(sel) { return document.querySelector(sel); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  if (response.status === 401) { showLogin(); throw new Error("login needed"); }
  if (!response.ok) {
    let reason = response.statusText;
    try { reason = (await response.json()).error || reason; } catch (e) { /* not JSON */ }
    throw new Error(reason);
  }
  return response.json();
}

function when(t) {
  if (t === null || t === undefined) return "-";
  const d = new Date(t * 1000);
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return d.toDateString() === today.toDateString() ? time : d.toLocaleDateString() + " " + time;
}

function seconds(s) {
  if (s === null || s === undefined) return "-";
  if (s < 60) return s.toFixed(1) + " s";
  const m = Math.floor(s / 60);
  return m + " min " + Math.round(s % 60) + " s";
}

function fill(table, rows) {
  const body = $(table + " tbody");
  body.replaceChildren(...rows);
  if (!rows.length) {
    const cols = $(table + " thead tr").children.length;
    body.append(el("tr", {}, el("td", { colspan: cols, class: "empty" }, "none")));
  }
}

// -- login ------------------------------------------------------------------------------
function showLogin() {
  clearInterval(timer);
  $("#tabs").hidden = true; $("#logout").hidden = true;
  for (const s of document.querySelectorAll(".tab")) s.hidden = true;
  $("#login").hidden = false;
  $("#password").focus();
}

async function login(event) {
  event.preventDefault();
  const error = $("#login-error");
  error.hidden = true;
  const response = await fetch("/api/login", {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ password: $("#password").value }),
  });
  if (!response.ok) {
    error.textContent = response.status === 403 ? "Wrong password."
      : response.status === 429 ? "Too many wrong passwords: try again in a minute."
      : "Login failed (" + response.status + ").";
    error.hidden = false;
    return;
  }
  $("#password").value = "";
  start();
}

async function logout() {
  await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
  showLogin();
}

// -- tabs -------------------------------------------------------------------------------
function show(tab) {
  current = tab;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.tab === tab);
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== tab;
  refresh();
}

async function refresh() {
  try {
    if (current === "overview") await overview();
    else if (current === "registrations") await registrations();
    else if (current === "active") await active();
    else if (current === "calls") await calls();
    else if (current === "events") await events();
  } catch (e) {
    if (e.message !== "login needed") console.warn(e);
  }
}

async function start() {
  $("#login").hidden = true;
  $("#tabs").hidden = false; $("#logout").hidden = false;
  clearInterval(timer);
  timer = setInterval(() => { if (current !== "ladder") refresh(); }, 3000);
  const hash = decodeURIComponent(location.hash.slice(1));
  if (hash.startsWith("call=")) openCall(hash.slice(5)); else show(current);
}

// -- overview ---------------------------------------------------------------------------
async function overview() {
  const [status, history] = await Promise.all([api("/api/status"), api("/api/history")]);
  const cards = [
    ["Registered contacts", status.registered], ["Active calls", status.active_calls],
    ["Transactions", status.transactions], ["Requests in", status.requests_in],
    ["Connections", status.connections], ["Loop lag", status.loop_lag_ms + " ms"],
    ["Workers", status.workers], ["Overloaded", status.overloaded ? "yes" : "no"],
  ];
  $("#cards").replaceChildren(...cards.map(([k, n]) => el("div", { class: "card" }, el("div", { class: "n" }, n), el("div", { class: "k" }, k))));
  const series = [["active_calls", "Active calls"], ["registered", "Registered contacts"], ["transactions", "Transactions"]];
  $("#charts").replaceChildren(...series.map(([key, name]) => chart(name, history.map((h) => [h.at, h[key]]))));
}

function chart(name, points) {
  const box = el("div", { class: "chart" });
  const last = points.length ? points[points.length - 1][1] : 0;
  box.append(el("div", { class: "k" }, name + ": " + last));
  const s = svg("svg", { viewBox: "0 0 300 70", preserveAspectRatio: "none", role: "img", "aria-label": name });
  if (points.length > 1) {
    const t0 = points[0][0], t1 = points[points.length - 1][0];
    const top = Math.max(1, ...points.map((p) => p[1]));
    const xy = points.map(([t, v]) => [((t - t0) / Math.max(1, t1 - t0)) * 298 + 1, 68 - (v / top) * 64]);
    s.append(svg("polyline", { points: xy.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" ") }));
  } else {
    s.append(svg("text", { x: 8, y: 40 }, "collecting (one sample every 10 s)"));
  }
  box.append(s);
  return box;
}

// -- lists ------------------------------------------------------------------------------
async function registrations() {
  const regs = await api("/api/registrations");
  $("#reg-count").textContent = "(" + regs.length + ")";
  fill("#reg-table", regs.map((r) => el("tr", { "data-aor": r.aor },
    el("td", {}, r.aor), el("td", {}, r.contact), el("td", {}, seconds(r.expires_in)),
    el("td", {}, r.received || "-"), el("td", {}, r.user_agent || "-"))));
}

function callRow(c, extra) {
  const row = el("tr", { class: "link", "data-call-id": c.call_id }, ...extra);
  row.addEventListener("click", () => openCall(c.call_id));
  return row;
}

async function active() {
  const list = await api("/api/calls?active=1");
  $("#active-count").textContent = "(" + list.length + ")";
  fill("#active-table", list.map((c) => {
    const end = el("button", { class: "danger" }, "End");
    end.addEventListener("click", async (event) => {
      event.stopPropagation();
      if (!confirm("End this call? Both sides get a BYE.")) return;
      try { await api("/api/calls/" + encodeURIComponent(c.call_id), { method: "DELETE" }); } catch (e) { alert(e.message); }
      refresh();
    });
    const since = c.answered_at || c.started_at;
    return callRow(c, [el("td", {}, when(c.started_at)), el("td", {}, c.caller), el("td", {}, c.callee),
      el("td", {}, c.answered_by || "ringing"), el("td", {}, seconds(Date.now() / 1000 - since)), el("td", {}, c.answered_at ? end : "")]);
  }));
}

function result(c) {
  if (c.ended_at === null) return c.answered_at ? "in progress" : "ringing";
  return (c.status || "") + " " + (c.reason || "");
}

async function calls() {
  const list = await api("/api/calls?limit=200");
  fill("#calls-table", list.map((c) => callRow(c, [
    el("td", {}, when(c.started_at)), el("td", {}, c.caller), el("td", {}, c.callee),
    el("td", { class: c.status === 200 ? "ok" : (c.status >= 300 ? "bad" : "") }, result(c)),
    el("td", {}, seconds(c.duration_s)), el("td", {}, c.hangup_by || "-")])));
}

async function events() {
  const list = await api("/api/events?limit=200");
  fill("#events-table", list.map((e) => el("tr", {}, el("td", {}, when(e.at)), el("td", {}, e.kind),
    el("td", {}, e.user), el("td", {}, e.source), el("td", {}, e.detail))));
}

// -- the ladder -------------------------------------------------------------------------
async function openCall(callId) {
  current = "ladder";
  for (const b of document.querySelectorAll("#tabs button")) b.classList.remove("on");
  for (const s of document.querySelectorAll(".tab")) s.hidden = s.id !== "ladder";
  history.replaceState(null, "", "#call=" + encodeURIComponent(callId));
  $("#ladder-title").textContent = "Call " + callId;
  $("#pcap").href = "/api/calls/" + encodeURIComponent(callId) + "/pcap";
  const doc = await api("/api/calls/" + encodeURIComponent(callId));
  const c = doc.call || {};
  const facts = [["Caller", c.caller], ["Callee (dialled)", c.callee], ["Answered by", c.answered_by],
    ["Forwarded by", c.forwarded_by], ["From", c.source], ["Started", when(c.started_at)],
    ["Answered", when(c.answered_at)], ["Ended", when(c.ended_at)], ["Duration", seconds(c.duration_s)],
    ["Result", c.status ? c.status + " " + (c.reason || "") : "-"], ["Hung up by", c.hangup_by]];
  $("#ladder-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "-")]));
  drawLadder(doc.parties, doc.messages);
}

function drawLadder(parties, messages) {
  const col = window.innerWidth < 600 ? 150 : COL;
  const width = parties.length * col;
  const view = $("#ladder-view");
  const head = el("div", { class: "parties" }, ...parties.map((p) => el("div", { class: "party", title: p }, p)));
  for (const p of head.children) p.style.width = col + "px";
  const rows = messages.map((m, i) => {
    const a = parties.indexOf(m.from), b = parties.indexOf(m.to);
    const x1 = a * col + col / 2, x2 = b * col + col / 2;
    const response = /^\d{3} /.test(m.label);
    const code = response ? parseInt(m.label, 10) : 0;
    const s = svg("svg", { width, height: 34, viewBox: "0 0 " + width + " 34" });
    parties.forEach((_, k) => s.append(svg("line", { class: "life", x1: k * col + col / 2, x2: k * col + col / 2, y1: 0, y2: 34 })));
    const dir = x2 > x1 ? 1 : -1;
    s.append(svg("line", { class: "arrow", x1, y1: 24, x2: x2 - dir * 7, y2: 24 }));
    s.append(svg("polygon", { class: "head", points: `${x2},24 ${x2 - dir * 8},20 ${x2 - dir * 8},28` }));
    const label = m.label.length > 34 ? m.label.slice(0, 33) + "…" : m.label;
    s.append(svg("text", { x: (x1 + x2) / 2, y: 17, "text-anchor": "middle" }, label));
    const kind = "msg" + (response ? " response" : "") + (code >= 400 ? " error" : "");
    const summary = el("summary", { "data-label": m.label, "data-index": i },
      el("span", { class: "t" }, "+" + m.t.toFixed(3) + "s"), s);
    const details = el("details", { class: kind }, summary,
      el("pre", {}, m.transport + " " + (m.from === "sipline" ? "sent to " : "received from ") + m.remote + " at " + when(m.at) + "\n\n" + m.data));
    return details;
  });
  view.replaceChildren(head, ...rows);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#back").addEventListener("click", () => { history.replaceState(null, "", "#"); show("calls"); });
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.tab));
  fetch("/api/status", { credentials: "same-origin" }).then((r) => (r.status === 401 ? showLogin() : start()), showLogin);
});
