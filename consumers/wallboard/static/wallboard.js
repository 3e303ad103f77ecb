// The deskpulse wallboard. State arrives by server-sent events (EventSource reconnects by
// itself; nothing here polls the server). Text from events is only ever set with textContent.
"use strict";

const CONFIG = JSON.parse(document.getElementById("config").textContent);
const LANG = CONFIG.lang === "zh" ? "zh" : "en";

const T = {
  en: {
    title: "Service desk — live", desk: "Whole desk", team: "Team", teamLabel: "Team",
    created: "Created today", resolved: "Resolved today", backlog: "Backlog",
    sla: "SLA met today", frt: "First reply p50 · 1 h", ttr: "Resolution p50 · 1 h",
    csat: "CSAT today", nps: "NPS today", negative: "Negative share today",
    themes: "Negative feedback themes today", breaches: "Breached, open",
    atRiskNow: "at risk", breachesToday: "breaches today",
    p90: "p90", last_1h: "1h", last_15m: "15m",
    today: "today", slaList: "At risk and breached", alerts: "Latest alerts",
    noSla: "Nothing at risk", noAlerts: "No alerts", atRisk: "at risk", breached: "breached",
    first_response: "reply", resolution: "resolve",
    live: "live", stale: "stale", connecting: "connecting…", asOf: "as of",
    noThemes: "not enough negative comments", ago: "ago", cause: "cause",
    responses: "responses", comments: "comments", outcomes: "outcomes",
  },
  zh: {
    title: "服务台实时看板", desk: "全部团队", team: "团队", teamLabel: "团队",
    created: "今日新建", resolved: "今日解决", backlog: "当前积压",
    sla: "今日 SLA 达成率", frt: "首次响应中位数·1小时", ttr: "解决时长中位数·1小时",
    csat: "今日满意度 CSAT", nps: "今日 NPS", negative: "今日负面反馈占比",
    themes: "今日负面反馈主题", breaches: "已超时未处理",
    atRiskNow: "即将超时", breachesToday: "今日超时",
    p90: "p90", last_1h: "1小时", last_15m: "15分钟",
    today: "今日", slaList: "即将超时与已超时", alerts: "最新告警",
    noSla: "暂无即将超时的工单", noAlerts: "暂无告警", atRisk: "即将超时", breached: "已超时",
    first_response: "响应", resolution: "解决",
    live: "实时", stale: "数据过期", connecting: "连接中…", asOf: "数据时间",
    noThemes: "负面评论不足", ago: "前", cause: "原因",
    responses: "份回复", comments: "条评论", outcomes: "个结果",
  },
}[LANG];

const TILES = [
  { id: "created", kpi: "created", view: "today", fmt: "count", spark: "created", others: true },
  { id: "resolved", kpi: "resolved", view: "today", fmt: "count", spark: "resolved", others: true },
  { id: "backlog", kpi: "backlog", view: "today", fmt: "count", spark: "backlog" },
  { id: "sla", kpi: "sla_compliance", view: "today", fmt: "ratio", spark: "sla_compliance",
    others: true, colour: "sla", count: "outcomes" },
  { id: "frt", kpi: "frt", field: "p50", view: "last_1h", fmt: "duration", spark: "frt_p50",
    p90: true },
  { id: "ttr", kpi: "ttr", field: "p50", view: "last_1h", fmt: "duration", spark: "ttr_p50",
    p90: true },
  { id: "csat", kpi: "csat", view: "today", fmt: "percent", spark: "csat", others: true,
    colour: "csat", count: "responses" },
  { id: "nps", kpi: "nps", view: "today", fmt: "signed", spark: "nps", others: true,
    count: "responses" },
  { id: "negative", kpi: "negative_share", view: "today", fmt: "ratio", spark: "negative_share",
    others: true, count: "comments" },
  { id: "breaches", breaches: true, view: "today" },
  { id: "themes", themes: true, view: "today" },
];

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const tiles = {};
let state = null;
let skew = 0; // server clock − this clock, seconds
window.deskpulse = { updates: [], state: null }; // for tests and curious people

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function fmtCount(v) {
  return v === null || v === undefined ? "—" : Number(v).toLocaleString(LANG === "zh" ? "zh-CN" : "en-US");
}

function fmtDuration(s) {
  // big numbers for a TV: two units at most, seconds only under ten minutes
  if (s === null || s === undefined || !isFinite(s)) return "—";
  const neg = s < 0;
  s = Math.round(Math.abs(s));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60), sec = s % 60;
  const zh = LANG === "zh";
  let out;
  if (d) out = zh ? `${d}天${h}小时` : `${d}d ${h}h`;
  else if (h) out = zh ? `${h}小时${m}分` : `${h}h ${String(m).padStart(2, "0")}m`;
  else if (m >= 10) out = zh ? `${m}分` : `${m}m`;
  else if (m) out = zh ? `${m}分${sec}秒` : `${m}m ${String(sec).padStart(2, "0")}s`;
  else out = zh ? `${sec}秒` : `${sec}s`;
  return neg ? "−" + out : out;
}

function fmt(kind, v) {
  if (v === null || v === undefined) return "—";
  switch (kind) {
    case "count": return fmtCount(v);
    case "ratio": return (100 * v).toFixed(v > 0 && 100 * v < 10 ? 1 : 0) + "%";
    case "percent": return v.toFixed(v > 0 && v < 10 ? 1 : 0) + "%";
    case "signed": return (v > 0 ? "+" : "") + Math.round(v);
    case "duration": return fmtDuration(v);
  }
  return String(v);
}

function rowValue(rows, tile) {
  const row = rows && rows[tile.kpi];
  if (!row) return tile.fmt === "count" ? 0 : null;
  return tile.field ? row[tile.field] : row.value;
}

function buildTiles() {
  const root = $("tiles");
  for (const tile of TILES) {
    const box = el("div", "tile" + (tile.themes ? " themes" : ""));
    box.id = "tile-" + tile.id;
    box.dataset.kpi = tile.kpi || "themes";
    box.appendChild(el("div", "label", T[tile.id]));
    if (tile.themes) {
      box.appendChild(el("ol"));
      box.appendChild(el("div", "sub"));
    } else if (tile.breaches) {
      box.appendChild(el("div", "value", "—"));
      box.appendChild(el("div", "sub", ""));
    } else {
      box.appendChild(el("div", "value", "—"));
      box.appendChild(el("div", "sub", ""));
      const svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("viewBox", "0 0 100 30");
      svg.setAttribute("preserveAspectRatio", "none");
      const area = document.createElementNS(SVG, "path");
      area.setAttribute("class", "area");
      const line = document.createElementNS(SVG, "path");
      svg.appendChild(area);
      svg.appendChild(line);
      box.appendChild(svg);
    }
    root.appendChild(box);
    tiles[tile.id] = box;
  }
}

function sparkline(box, values) {
  const paths = box.querySelectorAll("svg path");
  if (!paths.length) return;
  const pts = [];
  (values || []).forEach((v, i) => { if (v !== null && v !== undefined && isFinite(v)) pts.push([i, v]); });
  if (!pts.length) { paths[0].setAttribute("d", ""); paths[1].setAttribute("d", ""); return; }
  const n = Math.max(values.length - 1, 1);
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  if (hi === lo) { hi += 1; lo -= lo > 0 ? Math.min(1, lo) : 0; }
  const xy = pts.map(([i, v]) => [(100 * i / n).toFixed(2), (28 - 26 * (v - lo) / (hi - lo)).toFixed(2)]);
  const line = "M" + xy.map((p) => p.join(",")).join("L");
  paths[1].setAttribute("d", line);
  paths[0].setAttribute("d", `${line}L${xy[xy.length - 1][0]},30L${xy[0][0]},30Z`);
}

function colour(tile, v) {
  if (v === null || v === undefined) return "";
  if (tile.colour === "sla") {
    if (v < CONFIG.sla_critical) return "bad";
    if (v < CONFIG.sla_warning) return "warn";
    return "ok";
  }
  if (tile.colour === "csat") return v < 70 ? "warn" : "ok";
  return "";
}

function countOf(tile, rows) {
  const row = rows && rows[tile.kpi];
  if (!row) return null;
  return row.den !== undefined ? row.den : row.count;
}

function renderTiles(s) {
  const views = s.views || {};
  const spark = s.spark || {};
  for (const tile of TILES) {
    const box = tiles[tile.id];
    const rows = views[tile.view] || {};
    if (tile.themes) {
      const list = box.querySelector("ol");
      list.replaceChildren();
      const themes = [1, 2, 3, 4, 5].map((i) => rows["theme_" + i]).filter(Boolean);
      for (const t of themes) {
        const li = el("li", null, t.term);
        li.appendChild(el("span", "lift", `×${Number(t.value).toFixed(1)} · ${t.count}`));
        list.appendChild(li);
      }
      box.querySelector(".sub").textContent = themes.length ? "" : T.noThemes;
      continue;
    }
    if (tile.breaches) {
      const counts = s.sla_counts || { at_risk: 0, breached: 0 };
      box.querySelector(".value").textContent = fmtCount(counts.breached);
      box.classList.remove("ok", "warn", "bad");
      box.classList.add(counts.breached ? "bad" : counts.at_risk ? "warn" : "ok");
      const sla = rows.sla_compliance;
      const today = sla ? sla.den - sla.num : 0;
      box.querySelector(".sub").textContent =
        `${T.atRiskNow} ${fmtCount(counts.at_risk)} · ${T.breachesToday} ${fmtCount(today)}`;
      continue;
    }
    const v = rowValue(rows, tile);
    box.querySelector(".value").textContent = fmt(tile.fmt, v);
    box.classList.remove("ok", "warn", "bad");
    const c = colour(tile, v);
    if (c) box.classList.add(c);
    const sub = [];
    if (tile.p90) {
      const row = rows[tile.kpi];
      sub.push(`${T.p90} ${fmt("duration", row ? row.p90 : null)}`);
      if (row) sub.push(`n=${fmtCount(row.count)}`);
    }
    if (tile.others) {
      for (const w of ["last_1h", "last_15m"]) sub.push(`${T[w]} ${fmt(tile.fmt, rowValue(views[w] || {}, tile))}`);
    }
    if (tile.count) {
      const n = countOf(tile, rows);
      if (n !== null) sub.push(`${fmtCount(n)} ${T[tile.count]}`);
    }
    box.querySelector(".sub").textContent = sub.join(" · ");
    sparkline(box, spark[tile.spark]);
  }
}

function timeLeft(deadline) {
  return deadline - (Date.now() / 1000 + skew);
}

function renderSla(s) {
  const body = $("sla-list").tBodies[0];
  body.replaceChildren();
  for (const it of s.sla || []) {
    const tr = el("tr", it.state);
    tr.dataset.deadline = String(it.deadline);
    const state = el("td", "state");
    state.appendChild(el("span"));
    state.title = it.state === "breached" ? T.breached : T.atRisk;
    tr.appendChild(state);
    tr.appendChild(el("td", "ticket", it.ticket_id));
    tr.appendChild(el("td", "prio-" + it.priority, it.priority));
    tr.appendChild(el("td", "team", it.team || ""));
    tr.appendChild(el("td", "target", T[it.target] || it.target));
    tr.appendChild(el("td", "left", ""));
    body.appendChild(tr);
  }
  $("sla-count").textContent = s.sla_total ? `(${fmtCount(s.sla_total)})` : "";
  $("sla-empty").textContent = (s.sla || []).length ? "" : T.noSla;
  tick();
}

function ago(t) {
  const s = Date.now() / 1000 + skew - t;
  return LANG === "zh" ? `${fmtDuration(s)}${T.ago}` : `${fmtDuration(s)} ${T.ago}`;
}

function renderAlerts(s) {
  const list = $("alerts-list");
  list.replaceChildren();
  for (const a of s.alerts || []) {
    const li = el("li", `${a.severity} ${a.status}`);
    li.appendChild(el("span", "when", ago(a.since)));
    li.appendChild(el("div", "summary", a.summary));
    if (a.cause_text) li.appendChild(el("div", "cause", `${T.cause}: ${a.cause_text}`));
    list.appendChild(li);
  }
  $("alerts-empty").textContent = (s.alerts || []).length ? "" : T.noAlerts;
}

function renderTeams(s) {
  const select = $("team-select");
  const want = [""].concat(s.teams || []);
  if (CONFIG.team && !want.includes(CONFIG.team)) want.push(CONFIG.team);
  const have = Array.from(select.options).map((o) => o.value);
  if (have.join("\u0000") === want.join("\u0000")) return;
  select.replaceChildren();
  for (const team of want) {
    const opt = el("option", null, team || T.desk);
    opt.value = team;
    if ((CONFIG.team || "") === team) opt.selected = true;
    select.appendChild(opt);
  }
}

function tick() {
  const now = Date.now() / 1000 + skew;
  $("clock").textContent = new Date(now * 1000).toLocaleTimeString(LANG === "zh" ? "zh-CN" : "en-GB");
  for (const tr of $("sla-list").tBodies[0].rows) {
    const left = Number(tr.dataset.deadline) - now;
    tr.cells[tr.cells.length - 1].textContent = fmtDuration(left); // negative: overdue
  }
  const status = $("status");
  if (state && state.heartbeat) {
    const fresh = now - state.heartbeat < 15;
    status.className = "status " + (fresh ? "live" : "stale");
    status.textContent = fresh ? T.live : T.stale;
  }
}

function render(s) {
  state = s;
  window.deskpulse.state = s;
  if (s.server_time) skew = s.server_time - Date.now() / 1000;
  renderTiles(s);
  renderSla(s);
  renderAlerts(s);
  renderTeams(s);
  $("asof").textContent = s.as_of
    ? `${T.asOf} ${new Date(s.as_of * 1000).toLocaleString(LANG === "zh" ? "zh-CN" : "en-GB")}`
    : "";
  const created = rowValue((s.views || {}).today, TILES[0]);
  const ups = window.deskpulse.updates;
  ups.push({ version: s.version, at: Date.now(), created: created });
  if (ups.length > 100) ups.shift();
  document.body.dataset.version = String(s.version);
}

function connect() {
  const params = new URLSearchParams();
  if (CONFIG.team) params.set("team", CONFIG.team);
  const source = new EventSource("/events?" + params.toString());
  source.addEventListener("state", (ev) => render(JSON.parse(ev.data)));
  source.onerror = () => {
    const status = $("status");
    status.className = "status connecting";
    status.textContent = T.connecting;
  };
}

function start() {
  document.title = `deskpulse — ${CONFIG.team || T.desk}`;
  $("title").textContent = CONFIG.team ? `${T.title} · ${T.team} ${CONFIG.team}` : T.title;
  $("team-label").textContent = T.teamLabel;
  $("sla-title").textContent = T.slaList;
  $("alerts-title").textContent = T.alerts;
  $("status").textContent = T.connecting;
  $("team-select").addEventListener("change", (ev) => {
    const params = new URLSearchParams(location.search);
    if (ev.target.value) params.set("team", ev.target.value); else params.delete("team");
    location.search = params.toString();
  });
  buildTiles();
  setInterval(tick, 1000); // the clock and the countdowns; no requests
  tick();
  connect();
}

start();
