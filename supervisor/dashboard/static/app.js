// The alphavol dashboard: polls /api/v1/status every 2 s and /api/v1/chart every minute,
// draws every user and strategy, and posts the actions with this session's CSRF token.
// No framework, no CDN, no inline script (the Content-Security-Policy forbids them).
"use strict";

const POLL_MS = 2000;
const CHART_MS = 30000;
const SVG = "http://www.w3.org/2000/svg";
let csrf = null;

// ---------------------------------------------------------------- small helpers
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-") || k === "type" || k === "name" || k === "rows") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

// ---------------------------------------------------------------- figures as the CLI prints them
// The API's figures are exact decimal strings ("2100.34026351", "1E+3"); they are rounded
// here on their digits, half to even like Python's Decimal.quantize, with the rules of
// supervisor/render.py, so the page and `alphavol status` show the same figures.

// "-12.5E+2" -> {neg: true, digits: "1250", scale: 0}: the value is digits / 10^scale.
function parseDec(s) {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(String(s).trim());
  if (!m || (m[2] + (m[3] || "")) === "") return null;
  let digits = m[2] + (m[3] || ""), scale = (m[3] || "").length - Number(m[4] || 0);
  if (scale < 0) { digits += "0".repeat(-scale); scale = 0; }
  return { neg: m[1] === "-", digits, scale };
}

// The value rounded to `places` decimals (half to even), as "-1234.50": the sign is kept
// on a zero, as Decimal keeps it ("-0.0000").
function quantize(s, places) {
  const d = parseDec(s);
  if (!d) return null;
  let digits = d.digits, scale = d.scale;
  if (scale < places) { digits += "0".repeat(places - scale); scale = places; }
  if (scale > places) {
    const cut = scale - places;
    digits = digits.padStart(cut + 1, "0");
    const kept = digits.slice(0, digits.length - cut) || "0";
    const rest = digits.slice(digits.length - cut);
    const half = "5" + "0".repeat(cut - 1);
    const odd = Number(kept[kept.length - 1]) % 2 === 1;
    const up = rest > half || (rest === half && odd);
    digits = up ? (BigInt(kept) + 1n).toString() : kept;
    scale = places;
  }
  digits = digits.padStart(scale + 1, "0");
  const int = digits.slice(0, digits.length - scale).replace(/^0+(?=\d)/, "");
  const frac = digits.slice(digits.length - scale);
  return (d.neg ? "-" : "") + int + (frac ? "." + frac : "");
}

// "1234567.5" -> "1,234,567.5" (Python's format spec ",").
function grouped(text) {
  const [int, frac] = text.split(".");
  const g = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return frac === undefined ? g : g + "." + frac;
}

// render.money: a cost to the hundredth of a cent, "1.2329".
function money(s) {
  if (s === null || s === undefined) return "-";
  return quantize(s, 4) ?? String(s);
}

// render.volume: a volume to the cent with thousands separated, "2,100.34"; "?" when unknown.
function volume(s) {
  if (s === null || s === undefined) return "?";
  const q = quantize(s, 2);
  return q === null ? String(s) : grouped(q);
}

// render.target: a target as written, no decimals when it has none: "2,100", "700.5".
function target(s) {
  const d = parseDec(s);
  if (!d) return s === null || s === undefined ? "-" : String(s);
  const whole = /^0*$/.test(d.digits.slice(d.digits.length - d.scale));
  return grouped(quantize(s, whole ? 0 : d.scale));
}

// render.unconfirmed: "+27.3", what the trades since the exchange's last read should add;
// empty when nothing was traded since.
function unconfirmed(s) {
  const d = s === null || s === undefined ? null : parseDec(s);
  if (!d || /^0*$/.test(d.digits)) return "";
  return "+" + grouped(quantize(s, 1));
}

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m";
  return Math.floor(s / 86400) + "d " + Math.floor((s % 86400) / 3600) + "h";
}

// render.with_unconfirmed: progress counts the exchange's figure and what was traded since.
function progress(cur, extra, goal) {
  if (cur === null || cur === undefined) return 0;
  const c = Number(cur) + Number(extra || 0), t = Number(goal || 0);
  return t > 0 ? Math.min(100, (c / t) * 100) : 0;
}

function setText(root, field, text) {
  const node = root.querySelector(`[data-field="${field}"]`);
  if (node && node.textContent !== text) node.textContent = text;
}

// "+27.3 unconfirmed" beside the exchange's figure; nothing when nothing was traded since.
function setUnconfirmed(root, value) {
  const text = unconfirmed(value);
  setText(root, "unconfirmed_volume", text && text + " unconfirmed");
}

function notice(text, bad) {
  const n = document.getElementById("notice");
  n.textContent = text;
  n.className = bad ? "bad" : "good";
}

// ---------------------------------------------------------------- talking to the supervisor
async function api(path, options) {
  const resp = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  if (resp.status === 401) {
    window.location.assign("/login");
    throw new Error("logged out");
  }
  let body = null;
  try { body = await resp.json(); } catch (e) { body = { ok: false, error: await resp.text() }; }
  return { status: resp.status, body };
}

async function post(path, doc) {
  if (!csrf) csrf = (await api("/api/v1/session")).body.csrf;
  const res = await api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(doc || {}),
  });
  const text = res.body.message || res.body.error || String(res.status);
  notice(text, res.status !== 200);
  poll(true);
  return res;
}

function actionButtons(target) {
  const box = el("div", { class: "actions" });
  for (const [action, label] of [["drain", "Drain"], ["stop_now", "Stop now"], ["start", "Start"]]) {
    const b = el("button", { type: "button", "data-action": action, textContent: label });
    b.addEventListener("click", () => {
      const who = target.user_id ? `user ${target.user_id}` : `strategy ${target.strategy_id}`;
      if (action === "stop_now" && !window.confirm(`Stop ${who} now (cancel and sell at once)?`)) return;
      post(`/api/v1/actions/${action}`, target);
    });
    box.append(b);
  }
  return box;
}

// ---------------------------------------------------------------- strategies
function strategyCard(st) {
  const card = el("div", { class: "card strategy", "data-strategy": st.strategy_id },
    el("div", { class: "title" },
      el("strong", { textContent: st.strategy_id }),
      el("span", { class: "muted", "data-field": "name" })),
    el("div", { class: "figures" },
      el("span", {}, "volume ", el("b", { "data-field": "total_volume" }), " / ",
        el("span", { "data-field": "target_volume" })),
      el("span", { class: "unconf", "data-field": "unconfirmed_volume" }),
      el("span", {}, "cost ", el("b", { "data-field": "cost_today" }), " USDT")),
    el("div", { class: "bar" }, el("i", {})),
    actionButtons({ strategy_id: st.strategy_id }));
  return card;
}

function drawStrategies(strategies) {
  const box = document.getElementById("strategies");
  const seen = new Set();
  for (const st of strategies) {
    seen.add(st.strategy_id);
    let card = box.querySelector(`[data-strategy="${CSS.escape(st.strategy_id)}"]`);
    if (!card) box.append(card = strategyCard(st));
    const name = st.strategy_name === st.strategy_id ? "" : st.strategy_name;
    setText(card, "name", `${name} ${st.token}${st.enabled ? "" : " [disabled]"}${st.selected ? "" : " [not selected]"}`);
    setText(card, "total_volume", volume(st.total_volume));
    setText(card, "target_volume", target(st.target_volume));
    setUnconfirmed(card, st.unconfirmed_volume);
    setText(card, "cost_today", money(st.cost_today));
    // the API's progress counts the exchange's figure and what was traded since
    card.querySelector(".bar i").style.width = Math.min(100, Number(st.progress || 0)) + "%";
  }
  for (const card of [...box.children]) if (!seen.has(card.dataset.strategy)) card.remove();
}

// ---------------------------------------------------------------- users
function userBlock(uid) {
  const form = el("form", { class: "refresh", "data-user": uid },
    el("label", { textContent: `Paste a fresh "Copy as cURL" of user ${uid}` }),
    el("textarea", { name: "curl", rows: "4", spellcheck: false, autocomplete: "off" }),
    el("button", { type: "submit", textContent: "Store session" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const area = form.querySelector("textarea");
    const res = await post(`/api/v1/users/${encodeURIComponent(uid)}/session`, { curl: area.value });
    if (res.status === 200) area.value = "";
  });
  return el("div", { class: "card user", "data-user": uid },
    el("div", { class: "title" },
      el("strong", { textContent: `user ${uid}` }),
      el("span", { class: "muted" }, "session ", el("span", { "data-field": "session_age" }), " old")),
    el("div", { class: "figures" },
      el("span", {}, "round trips today ", el("b", { "data-field": "round_trips_today" })),
      el("span", {}, "cost today ", el("b", { "data-field": "user_cost_today" }), " USDT"),
      el("span", {}, "points today ", el("b", { "data-field": "points_today" })),
      el("span", {}, "USDT per point ", el("b", { "data-field": "cost_per_point" }))),
    el("div", { class: "rows" }),
    actionButtons({ user_id: uid }),
    el("div", { class: "chart" }),
    el("details", { class: "session" }, el("summary", { textContent: "Refresh session" }), form));
}

function rowBlock(u) {
  return el("div", { class: "row", "data-user": u.user_id, "data-strategy": u.strategy_id },
    el("div", { class: "title" },
      el("span", { textContent: u.strategy_id }),
      el("span", { class: "state", "data-field": "state" })),
    el("div", { class: "figures" },
      el("span", {}, "volume ", el("b", { "data-field": "current_volume" }), " / ",
        el("span", { "data-field": "target_volume" })),
      el("span", { class: "unconf", "data-field": "unconfirmed_volume" }),
      el("span", { class: "muted" }, "read ", el("span", { "data-field": "volume_age" }), " ago"),
      el("span", {}, "trades ", el("b", { "data-field": "trades" })),
      el("span", {}, "cost ", el("b", { "data-field": "cost_today" }), " USDT")),
    el("div", { class: "bar" }, el("i", {})),
    el("div", { class: "why", "data-field": "why" }));
}

function drawUsers(strategies) {
  const box = document.getElementById("users");
  const byUser = new Map();
  for (const st of strategies) for (const u of st.users) {
    if (!byUser.has(u.user_id)) byUser.set(u.user_id, []);
    byUser.get(u.user_id).push(u);
  }
  for (const [uid, rows] of byUser) {
    let block = box.querySelector(`.user[data-user="${CSS.escape(uid)}"]`);
    if (!block) box.append(block = userBlock(uid));
    // the user's day from the books, as `history` and `status`'s table of the day show it
    const day = rows.find((u) => u.user_round_trips !== null && u.user_round_trips !== undefined) || rows[0];
    setText(block, "session_age", ago(day.session_age_seconds));
    setText(block, "round_trips_today", day.user_round_trips == null ? "-" : String(day.user_round_trips));
    setText(block, "user_cost_today", day.user_round_trips == null ? "-" : money(day.user_cost_today || "0"));
    setText(block, "points_today", day.points_today == null ? "?" : String(day.points_today));
    setText(block, "cost_per_point", money(day.cost_per_point));
    const list = block.querySelector(".rows");
    const keep = new Set();
    for (const u of rows) {
      const key = u.strategy_id;
      keep.add(key);
      let row = list.querySelector(`.row[data-strategy="${CSS.escape(key)}"]`);
      if (!row) list.append(row = rowBlock(u));
      setText(row, "state", u.state);
      row.querySelector(".state").dataset.state = u.state;
      setText(row, "current_volume", volume(u.current_volume));
      setText(row, "target_volume", target(u.target_volume));
      setUnconfirmed(row, u.unconfirmed_volume);
      setText(row, "volume_age", ago(u.volume_age_seconds));
      setText(row, "trades", String(u.trades || 0));
      setText(row, "cost_today", money(u.cost_today || "0"));
      const why = [];
      if (u.reason && ["FATAL", "BACKOFF", "STOPPED", "STOPPING"].includes(u.state)) why.push("why: " + u.reason);
      if (u.last_error && u.last_error !== u.reason) why.push("last error: " + u.last_error);
      setText(row, "why", why.join(" | "));
      row.querySelector(".bar i").style.width = progress(u.current_volume, u.unconfirmed_volume, u.target_volume) + "%";
    }
    for (const row of [...list.children]) if (!keep.has(row.dataset.strategy)) row.remove();
  }
  for (const block of [...box.children]) if (!byUser.has(block.dataset.user)) block.remove();
}

function drawAttention(items) {
  const section = document.getElementById("attention");
  const list = document.getElementById("attention-list");
  section.hidden = items.length === 0;
  list.replaceChildren(...items.map((a) => el("li", { "data-user": a.user_id },
    el("strong", { textContent: `user ${a.user_id} (${a.state}): ` }),
    a.what + (a.reason ? ` (${a.reason})` : ""),
    el("br", {}),
    el("span", { class: "todo", textContent: "Next: " + a.todo }))));
  for (const a of items) {  // open the refresh form of an expired or old session
    if (a.event !== "session_expired" && a.event !== "session_aging") continue;
    const d = document.querySelector(`.user[data-user="${CSS.escape(a.user_id)}"] details.session`);
    if (d && !d.dataset.opened) { d.open = true; d.dataset.opened = "1"; }
  }
}

// ---------------------------------------------------------------- the 15-day chart
function drawChart(box, days) {
  const W = 300, H = 110, L = 26, R = 34, T = 8, B = 18;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart-svg" });
  const n = Math.max(days.length, 1);
  const maxPts = Math.max(1, ...days.map((d) => Math.max(d.points || 0, d.exchange_points || 0)));
  const cpps = days.map((d) => (d.cost_per_point === null ? null : Number(d.cost_per_point)));
  const maxCpp = Math.max(0, ...cpps.filter((x) => x !== null)) || 1;
  const step = (W - L - R) / n;
  const y = (v, max) => T + (H - T - B) * (1 - v / max);
  s.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" }));
  const label = (x, yy, text, cls) => { const t = svg("text", { x, y: yy, class: cls || "label" }); t.textContent = text; s.append(t); };
  label(2, T + 6, String(maxPts));
  label(W - R + 2, T + 6, maxCpp.toFixed(3), "label right");
  let line = "";
  days.forEach((d, i) => {
    const x = L + i * step;
    if (d.points) s.append(svg("rect", { x: x + step * 0.15, y: y(d.points, maxPts), width: step * 0.4, height: H - B - y(d.points, maxPts), class: "pts" }));
    if (d.exchange_points !== null && d.exchange_points !== undefined)
      s.append(svg("rect", { x: x + step * 0.55, y: y(d.exchange_points, maxPts), width: step * 0.3, height: H - B - y(d.exchange_points, maxPts), class: "exch" }));
    if (cpps[i] !== null) {
      const cx = (x + step / 2).toFixed(1), cy = y(cpps[i], maxCpp).toFixed(1);
      line += `${line ? "L" : "M"}${cx},${cy} `;
      s.append(svg("circle", { cx, cy, r: 2, class: "cpp-dot" }));
    }
  });
  if (line) s.append(svg("path", { d: line, class: "cpp" }));
  if (days.length) {
    label(L, H - 4, days[0].day.slice(5));
    label(W - R - 28, H - 4, days[days.length - 1].day.slice(5));
  }
  const legend = el("div", { class: "legend" },
    el("span", { class: "k pts" }), "our points ",
    el("span", { class: "k exch" }), "exchange's points ",
    el("span", { class: "k cpp" }), "USDT per point");
  box.replaceChildren(s, legend);
}

async function chart() {
  try {
    const res = await api("/api/v1/chart");
    const empty = (res.body.days || []).map((day) => ({ day, points: null, exchange_points: null, cost_per_point: null }));
    for (const block of document.querySelectorAll(".user[data-user]")) {  // no round trips yet: an empty chart
      drawChart(block.querySelector(".chart"), (res.body.users || {})[block.dataset.user] || empty);
    }
  } catch (e) { /* next time */ }
}

// ---------------------------------------------------------------- the loop
let timer = null;
let lastStates = null;
async function poll(once) {
  if (timer && !once) clearTimeout(timer);
  try {
    const res = await api("/api/v1/status");
    const doc = res.body;
    const sup = doc.supervisor;
    document.getElementById("headline").textContent =
      `day ${sup.day}, ${sup.phase}${sup.next_run ? ", next run " + sup.next_run : ""}; updated ${new Date().toLocaleTimeString()}`;
    drawStrategies(doc.strategies);
    drawUsers(doc.strategies);
    drawAttention(doc.attention || []);
    const states = doc.strategies.flatMap((st) => st.users.map((u) => u.user_id + u.state)).join();
    if (states !== lastStates) {  // a user started, stopped or finished: its books moved
      lastStates = states;
      chart();
    }
    document.body.dataset.generatedAt = String(doc.generated_at);
  } catch (e) {
    document.getElementById("headline").textContent = "the supervisor does not answer; retrying";
  }
  if (!once) timer = setTimeout(poll, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("reload-config").addEventListener("click", () => post("/api/v1/actions/reload"));
  document.getElementById("logout").addEventListener("click", async () => {
    await post("/logout");
    window.location.assign("/login");
  });
  poll(false);
  setInterval(chart, CHART_MS);
});
