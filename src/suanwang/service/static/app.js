/* Suanwang live dashboard: sign-in, China map of sites and flows, job table, placement explanation, KPIs, submit form.
   Plain JS, no build step. Talks to the service's REST API (same origin, /api/v1) with a bearer token. */
"use strict";

const STATES = ["queued", "placed", "running", "done", "failed", "cancelled", "rejected"];
const STATE_COLOURS = {
  queued: "#8a94a6", placed: "#3b82f6", running: "#0d9488", done: "#2e9d57",
  failed: "#d64545", cancelled: "#a3a3a3", rejected: "#e8590c",
};
const FLOW_STATES = ["placed", "running"];
const REFRESH_MS = 2000;
const PAGE_SIZE = 50;
const TOKEN_KEY = "suanwang.token";
const LANG_KEY = "suanwang.lang";
const API = location.pathname.replace(/dashboard(\/.*)?$/, "") + "api/v1";
const CALM = window.matchMedia("(prefers-reduced-motion: reduce)").matches; // no map animations when asked
const FONT = getComputedStyle(document.documentElement).getPropertyValue("--font").trim() || "sans-serif";

const S = {
  lang: localStorage.getItem(LANG_KEY) || ((navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh" : "en"),
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  me: null,
  sites: [],
  siteById: {},
  siteJobs: {},
  jobs: { items: [], total: 0 },
  counts: {},
  flows: [],
  totals: { cost_cny: 0, energy_kwh: 0, carbon_kg: 0 },
  filter: "",
  offset: 0,
  selected: null, // job id
  selectedJob: null,
  placement: null,
  usage: null, // GET /usage: every tenant for staff, only its own for a tenant
  placementKey: "",
  timer: null,
  busy: false,
  chart: null,
  mapKey: "",
  epoch: 0, // bumped at each sign-in / sign-out
  leaving: false, // the page is unloading: aborted requests are not errors
};

const $ = (sel) => document.querySelector(sel);

/* ---------- i18n ---------- */

function t(key, vars) {
  let s = (window.I18N[S.lang] || {})[key];
  if (s === undefined) s = window.I18N.en[key] !== undefined ? window.I18N.en[key] : key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(v);
  return s;
}

function applyI18n() {
  document.documentElement.lang = S.lang === "zh" ? "zh-CN" : "en";
  document.title = t("app.title");
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  $("#lang").textContent = t("lang.switch");
}

function fmt(x, digits = 0) {
  if (x === null || x === undefined || Number.isNaN(Number(x))) return "–";
  return new Intl.NumberFormat(S.lang === "zh" ? "zh-CN" : "en-US", {
    maximumFractionDigits: digits, minimumFractionDigits: digits,
  }).format(Number(x));
}

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function siteName(id) {
  const s = S.siteById[id];
  if (!s) return id || "–";
  return S.lang === "zh" ? s.name_zh : s.name_en;
}

function siteNameBoth(s) {
  return S.lang === "zh" ? `${s.name_zh} · ${s.name_en}` : `${s.name_en} · ${s.name_zh}`;
}

function timeOf(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleTimeString(S.lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
}

/* ---------- API ---------- */

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function detailText(body, status) {
  const d = body && body.detail !== undefined ? body.detail : body;
  if (Array.isArray(d)) {
    return d.map((e) => `${(e.loc || []).filter((x) => x !== "body").join(".")}: ${e.msg}`).join("; ");
  }
  if (d && typeof d === "object") return d.message || JSON.stringify(d);
  return d ? String(d) : t("err.http", { status });
}

async function api(path, options = {}) {
  let res;
  try {
    res = await fetch(API + path, {
      ...options,
      headers: { Authorization: `Bearer ${S.token}`, "Content-Type": "application/json", ...(options.headers || {}) },
    });
  } catch (e) {
    throw new ApiError(0, `${t("err.network")}: ${e.message}`);
  }
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
  if (!res.ok) throw new ApiError(res.status, detailText(body, res.status));
  return body;
}

/* ---------- sign-in ---------- */

async function signIn(token) {
  S.token = token;
  const me = await api("/me");
  S.me = me;
  S.epoch += 1;
  sessionStorage.setItem(TOKEN_KEY, token);
  await setupSubmitForm();
  $("#signin").hidden = true;
  $("#app").hidden = false;
  $("#signout").hidden = false;
  $("#live").hidden = false;
  renderWho();
  await MAP_READY;
  initChart();
  await refresh();
  clearInterval(S.timer);
  S.timer = setInterval(refresh, REFRESH_MS);
}

function signOut(message) {
  S.epoch += 1; // answers still in flight for the old session are dropped
  clearInterval(S.timer);
  S.timer = null;
  S.token = "";
  S.me = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $("#app").hidden = true;
  $("#signout").hidden = true;
  $("#live").hidden = true;
  $("#who").hidden = true;
  $("#signin").hidden = false;
  $("#signin-error").textContent = message || "";
  $("#token").value = "";
  $("#token").focus();
}

function renderWho() {
  if (!S.me) return;
  const role = t(`role.${S.me.role}`);
  $("#who").textContent = `${role} · ${S.me.tenant || t("who.all")}`;
  $("#who").dataset.role = S.me.role;
  $("#who").hidden = false;
}

/* ---------- refresh loop ---------- */

async function refresh() {
  if (S.busy || !S.token) return;
  S.busy = true;
  const epoch = S.epoch;
  try {
    const q = new URLSearchParams({ limit: PAGE_SIZE, offset: S.offset });
    if (S.filter) q.set("state", S.filter);
    const [sites, jobs, summary, usage, ...perState] = await Promise.all([
      api("/sites"),
      api(`/jobs?${q}`),
      api("/metrics/summary?by=site"),
      api("/usage"),
      ...STATES.map((s) => api(`/jobs?state=${s}&limit=${FLOW_STATES.includes(s) ? PAGE_SIZE : 1}&offset=0`)),
    ]);
    if (epoch !== S.epoch) return;
    S.sites = sites;
    S.siteById = Object.fromEntries(sites.map((s) => [s.id, s]));
    S.jobs = jobs;
    S.usage = usage;
    S.counts = Object.fromEntries(STATES.map((s, i) => [s, perState[i].total]));
    S.flows = STATES.flatMap((s, i) => (FLOW_STATES.includes(s) ? perState[i].items : []));
    const rows = Array.isArray(summary) ? summary : (summary && summary.rows) || [];
    S.siteJobs = Object.fromEntries(rows.map((r) => [r.site ?? r.key, r]));
    S.totals = rows.reduce(
      (a, r) => ({
        cost_cny: a.cost_cny + (r.cost_cny || 0),
        energy_kwh: a.energy_kwh + (r.energy_kwh || 0),
        carbon_kg: a.carbon_kg + (r.carbon_kg || 0),
      }),
      { cost_cny: 0, energy_kwh: 0, carbon_kg: 0 },
    );
    await refreshSelected();
    renderAll();
    $("#live").classList.remove("stale");
  } catch (e) {
    if (epoch !== S.epoch || S.leaving) return;
    if (e.status === 401) signOut(t("signin.bad"));
    else {
      $("#live").classList.add("stale");
      console.warn("refresh failed:", e.message);
    }
  } finally {
    S.busy = false;
  }
}

async function refreshSelected() {
  if (!S.selected) return;
  const inPage = S.jobs.items.find((j) => j.id === S.selected) || S.flows.find((j) => j.id === S.selected);
  if (inPage) S.selectedJob = inPage;
  const j = S.selectedJob;
  if (!j) return;
  const key = `${j.id}:${j.state}:${j.site_id || ""}`;
  if (key === S.placementKey) return;
  S.placementKey = key;
  if (!j.site_id && j.state !== "rejected") {
    S.placement = null; // not scheduled yet: there is no placement to ask for
    return;
  }
  try {
    S.placement = await api(`/jobs/${encodeURIComponent(j.id)}/placement`);
  } catch (e) {
    S.placement = null;
    if (e.status !== 404 && e.status !== 409 && !S.leaving) console.warn("placement failed:", e.message);
  }
}

function renderAll() {
  renderKpis();
  renderJobs();
  renderExplain();
  renderTenants();
  renderMap();
}

/* ---------- tenants' share (GET /usage: a tenant's answer holds only its own row) ---------- */

function renderTenants() {
  const u = S.usage;
  const rows = (u && u.tenants) || [];
  const cores = S.sites.reduce((a, s) => a + (s.cpu_cores || 0), 0);
  const cards = S.sites.reduce((a, s) => a + (s.gpu_cards || 0), 0);
  $("#tenants-note").textContent = u && u.tenancy ? t("tenants.note", { h: fmt(u.half_life_h, 1) }) : t("tenants.none");
  $("#tenants tbody").innerHTML = rows
    .map((r) => {
      const share = Math.max(cores ? r.cores_in_use / cores : 0, cards ? r.cards_in_use / cards : 0);
      const quotas = (r.quotas || [])
        .map((q) => {
          const parts = [];
          if (q.cores !== null) parts.push(`${fmt(q.cores_in_use)}/${fmt(q.cores)} ${t("res.cores", { n: "" }).trim()}`);
          if (q.cards !== null) parts.push(`${fmt(q.cards_in_use)}/${fmt(q.cards)} ${t("res.gpus", { n: "" }).trim()}`);
          const full = (q.cores !== null && q.cores_in_use >= q.cores) || (q.cards !== null && q.cards_in_use >= q.cards);
          return `<span class="quota${full ? " full" : ""}" title="${esc(q.rule)}">${esc(q.id)} ${esc(parts.join(" · "))}</span>`;
        })
        .join("");
      return `<tr data-tenant="${esc(r.tenant)}">
        <td>${esc(r.tenant)}</td>
        <td class="num">${r.weight === null ? "–" : fmt(r.weight, 2)}</td>
        <td class="num">${fmt(r.cores_in_use)}</td>
        <td class="num">${fmt(r.cards_in_use)}</td>
        <td><span class="share"><i style="width:${Math.min(100, 100 * share).toFixed(2)}%"></i></span>${fmt(100 * share, 2)} %</td>
        <td class="num">${r.fair_share === null ? "–" : fmt(r.fair_share, 4)}</td>
        <td>${quotas || "–"}</td>
      </tr>`;
    })
    .join("");
  $("#tenants-empty").hidden = rows.length > 0;
}

/* ---------- KPIs ---------- */

function renderKpis() {
  const total = STATES.reduce((a, s) => a + (S.counts[s] || 0), 0);
  $("#kpi-jobs").textContent = fmt(total);
  $("#statebar").innerHTML = STATES.filter((s) => S.counts[s])
    .map((s) => `<span title="${esc(t(`state.${s}`))}" style="width:${(100 * S.counts[s]) / total}%;background:${STATE_COLOURS[s]}"></span>`)
    .join("");
  $("#statelegend").innerHTML = STATES.map(
    (s) => `<span data-state="${s}"><i class="swatch" style="background:${STATE_COLOURS[s]}"></i>${esc(t(`state.${s}`))}<b>${fmt(S.counts[s] || 0)}</b></span>`,
  ).join("");
  $("#kpi-cost").textContent = fmt(S.totals.cost_cny, 2);
  $("#kpi-energy").textContent = fmt(S.totals.energy_kwh, 1);
  $("#kpi-carbon").textContent = fmt(S.totals.carbon_kg, 1);
  const up = S.sites.filter((s) => s.status !== "down").length;
  $("#kpi-sites").textContent = `${up} / ${S.sites.length}`;
  $("#kpi-sites-sub").textContent = t("kpi.sites_sub", { n: S.sites.length, down: S.sites.length - up });
}

/* ---------- job table ---------- */

function stateBadge(state) {
  return `<span class="badge" data-state="${esc(state)}" style="background:${STATE_COLOURS[state] || "#888"}">${esc(t(`state.${state}`))}</span>`;
}

function originLabel(j) {
  return j.origin_label || j.origin || "–";
}

function renderJobs() {
  const tbody = $("#jobs tbody");
  const items = S.jobs.items || [];
  tbody.innerHTML = items
    .map((j) => {
      const res = [t("res.cores", { n: fmt(j.cpu_cores) })];
      if (j.gpu_cards) res.push(t("res.gpus", { n: fmt(j.gpu_cards) }));
      res.push(t("res.hours", { n: fmt(j.runtime_h, 1) }));
      return `<tr data-id="${esc(j.id)}" data-state="${esc(j.state)}" class="${j.id === S.selected ? "selected" : ""}">
        <td class="mono id" title="${esc(j.id)}">${esc(j.id)}</td>
        <td>${stateBadge(j.state)}</td>
        <td>${esc(originLabel(j))}</td>
        <td data-site="${esc(j.site_id || "")}">${esc(j.site_id ? siteName(j.site_id) : "–")}</td>
        <td>${esc(res.join(" · "))}</td>
        <td><span class="tag">${esc(t(`latency.${j.latency_class}`).split(" ")[0])}</span><span class="tag">${esc(t(`data.${j.data_class}`))}</span></td>
        <td class="num">${fmt(j.cost_cny, 2)}</td>
        <td class="num">${fmt(j.carbon_kg, 2)}</td>
        <td>${esc(timeOf(j.created_at))}</td>
      </tr>`;
    })
    .join("");
  $("#jobs-empty").hidden = items.length > 0;
  const total = S.jobs.total || 0;
  $("#page").textContent = t("jobs.page", {
    from: total ? S.offset + 1 : 0, to: Math.min(S.offset + items.length, total), total: fmt(total),
  });
  $("#prev").disabled = S.offset === 0;
  $("#next").disabled = S.offset + PAGE_SIZE >= total;
}

function selectJob(id) {
  S.selected = id;
  S.selectedJob = S.jobs.items.find((j) => j.id === id) || null;
  S.placement = null;
  S.placementKey = "";
  refreshSelected().then(renderAll);
  renderAll();
}

/* ---------- placement explanation ---------- */

function fact(label, value) {
  return `<div class="fact"><div class="k">${esc(label)}</div><div class="v">${value}</div></div>`;
}

function renderExplain() {
  const box = $("#explain");
  const j = S.selectedJob;
  $("#explain-job").textContent = j ? `${j.id} · ${originLabel(j)}` : "";
  if (!j) {
    box.innerHTML = `<div class="empty">${esc(t("explain.empty"))}</div>`;
    return;
  }
  const p = S.placement;
  let html = "";
  const bad = ["rejected", "failed"].includes(j.state) ? " bad" : "";
  if (j.reason) html += `<div class="reason${bad}"><b>${esc(t("explain.reason"))}:</b> ${esc(j.reason)}</div>`;
  if (!p) {
    html += `<div class="empty">${stateBadge(j.state)} ${esc(t("explain.none"))}</div>`;
    box.innerHTML = html;
    return;
  }
  if (p.site_id) html += `<div class="facts">
    ${fact(t("explain.site"), esc(p.site_id ? siteName(p.site_id) : "–"))}
    ${fact(t("explain.cost"), `${fmt(p.cost_cny, 2)} ${esc(t("unit.cny"))}`)}
    ${fact(t("explain.energy"), `${fmt(p.energy_kwh, 1)} kWh`)}
    ${fact(t("explain.carbon"), `${fmt(p.carbon_kg, 2)} kgCO₂`)}
    ${fact(t("explain.latency"), `${fmt(p.latency_ms, 1)} ms`)}
    ${fact(t("explain.transfer"), `${fmt(p.transfer_h, 2)} h`)}
  </div>`;
  if (p.policy) html += `<div class="muted small">${esc(t("explain.policy"))}: <span class="mono">${esc(p.policy)}</span></div>`;
  const verdicts = (p.verdicts || []).slice();
  const scoreKeys = [...new Set(verdicts.flatMap((v) => Object.keys(v.scores || {})))];
  const rank = (v) => (v.site_id === p.site_id ? 0 : v.passed ? 1 : 2);
  verdicts.sort((a, b) => rank(a) - rank(b) || (a.scores?.total ?? 0) - (b.scores?.total ?? 0));
  const passed = verdicts.filter((v) => v.passed).length;
  html += `<h3>${esc(t("explain.verdicts", { passed, total: verdicts.length }))}</h3>
    <table class="table verdicts"><thead><tr>
      <th>${esc(t("explain.site"))}</th><th>${esc(t("explain.verdict"))}</th>
      ${scoreKeys.map((k) => `<th class="num">${esc(k)}</th>`).join("")}
    </tr></thead><tbody>
    ${verdicts
      .map((v) => {
        const chosen = v.site_id === p.site_id;
        const cls = chosen ? "chosen" : v.passed ? "passed" : "rejected";
        const mark = chosen
          ? `<span class="pass">★ ${esc(t("explain.chosen"))}</span>`
          : v.passed ? `<span class="pass">✓ ${esc(t("explain.passed"))}</span>` : `<span class="fail">✗ ${esc(t("explain.rejected"))}</span>`;
        const reason = v.reason ? `<div class="reason-cell">${esc(v.reason)}</div>` : "";
        return `<tr class="${cls}" data-site="${esc(v.site_id)}"><td>${esc(siteName(v.site_id))}${reason}</td><td>${mark}</td>
          ${scoreKeys.map((k) => `<td class="num">${v.scores && k in v.scores ? fmt(v.scores[k], 3) : "–"}</td>`).join("")}</tr>`;
      })
      .join("")}
    </tbody></table>`;
  box.innerHTML = html;
}

/* ---------- map ---------- */

function initChart() {
  if (S.chart) return;
  S.chart = echarts.init($("#map"), null, { renderer: "canvas" });
  window.addEventListener("resize", () => S.chart && S.chart.resize());
  window.suanwang = S; // for debugging and the browser test
}

function loadOf(s) {
  if (s.cpu_free == null && s.gpu_free == null) return null; // a tenant's view: free capacity is not shown
  if (s.cpu_cores > 0) return Math.min(1, Math.max(0, 1 - s.cpu_free / s.cpu_cores));
  if (s.gpu_cards > 0) return Math.min(1, Math.max(0, 1 - s.gpu_free / s.gpu_cards));
  return 0;
}

function hasOrigin(j) {
  return Number.isFinite(j.origin_lat) && Number.isFinite(j.origin_lon);
}

function siteTooltip(s) {
  const summary = S.siteJobs[s.id];
  const lines = [
    `<b>${esc(siteNameBoth(s))}</b>`,
    `${esc(t("tip.kind"))}: ${esc(t(`kind.${s.kind}`) === `kind.${s.kind}` ? s.kind : t(`kind.${s.kind}`))} · ${esc(s.province_id)}`,
    `${esc(t("tip.status"))}: ${esc(t(`status.${s.status}`))}`,
    `${esc(t("tip.load"))}: ${loadOf(s) === null ? "–" : `${fmt(100 * loadOf(s), 0)}%`}`,
    `${esc(t("tip.cpu"))}: ${fmt(s.cpu_free)} / ${fmt(s.cpu_cores)}`,
    `${esc(t("tip.gpu"))}: ${fmt(s.gpu_free)} / ${fmt(s.gpu_cards)}`,
    `${esc(t("tip.price"))}: ${fmt(s.price_cny_per_kwh, 3)} CNY/kWh`,
    `${esc(t("tip.carbon"))}: ${fmt(s.carbon_kg_per_kwh, 3)} kgCO₂/kWh`,
    `${esc(t("tip.pue"))}: ${fmt(s.pue, 2)} · ${esc(t("tip.green"))}: ${fmt(100 * (s.green_share || 0), 0)}%`,
  ];
  if (summary) lines.push(`${esc(t("tip.jobs"))}: ${fmt(summary.jobs)} · ${fmt(summary.cost_cny, 2)} CNY`);
  if (s.last_heartbeat) lines.push(`${esc(t("tip.heartbeat"))}: ${esc(timeOf(s.last_heartbeat))}`);
  return lines.join("<br>");
}

function mapOption() {
  const sitePoint = (s) => ({
    name: s.id,
    value: [s.lon, s.lat, loadOf(s), s.carbon_kg_per_kwh],
    site: s,
  });
  const up = S.sites.filter((s) => s.status !== "down");
  const down = S.sites.filter((s) => s.status === "down");
  const carbons = S.sites.map((s) => s.carbon_kg_per_kwh).filter(Number.isFinite);
  const cmin = carbons.length ? Math.min(...carbons) : 0;
  const cmax = carbons.length ? Math.max(...carbons) : 1;
  const flows = S.flows.filter((j) => hasOrigin(j) && S.siteById[j.site_id]);
  const flowData = flows.map((j) => {
    const s = S.siteById[j.site_id];
    return {
      name: j.id,
      coords: [[j.origin_lon, j.origin_lat], [s.lon, s.lat]],
      job: j,
      lineStyle: { color: STATE_COLOURS[j.state] },
    };
  });
  const origins = {};
  for (const j of flows) origins[`${j.origin_lon},${j.origin_lat}`] = { name: originLabel(j), value: [j.origin_lon, j.origin_lat] };

  const sel = S.selectedJob;
  const selSite = sel && sel.site_id ? S.siteById[sel.site_id] : null;
  const selFlow = sel && selSite && hasOrigin(sel)
    ? [{ name: sel.id, coords: [[sel.origin_lon, sel.origin_lat], [selSite.lon, selSite.lat]], job: sel }]
    : [];
  const size = (v) => 9 + 24 * Math.sqrt(v[2] || 0);

  return {
    animation: !CALM,
    textStyle: { fontFamily: FONT },
    tooltip: {
      trigger: "item",
      confine: true,
      backgroundColor: "rgba(255,255,255,.97)",
      borderColor: "#d5dde8",
      textStyle: { color: "#1b2533", fontSize: 12 },
      formatter: (p) => {
        if (p.data && p.data.site) return siteTooltip(p.data.site);
        if (p.data && p.data.job) {
          const j = p.data.job;
          return `<b class="mono">${esc(j.id)}</b> ${esc(t(`state.${j.state}`))}<br>${esc(t("tip.flow", { origin: originLabel(j), site: siteName(j.site_id) }))}`;
        }
        return p.name ? esc(p.name) : "";
      },
    },
    visualMap: {
      type: "continuous",
      seriesIndex: 0,
      dimension: 3,
      min: cmin,
      max: cmax === cmin ? cmin + 0.01 : cmax,
      precision: 2,
      text: [t("map.carbon"), ""],
      left: 16,
      bottom: 16,
      itemHeight: 110,
      calculable: false,
      inRange: { color: ["#2e9d57", "#a3c940", "#f2c12e", "#ef7d22", "#c8372d"] },
      textStyle: { color: "#3b4a5f", fontSize: 11 },
    },
    legend: {
      top: 10,
      right: 14,
      orient: "vertical",
      data: [t("map.sites"), t("map.flows"), t("map.origins"), t("map.selected")],
      textStyle: { color: "#3b4a5f", fontSize: 12 },
      backgroundColor: "rgba(255,255,255,.8)",
      padding: 8,
    },
    geo: {
      map: "china",
      roam: true,
      zoom: 1.2,
      center: [104.5, 36.5],
      scaleLimit: { min: 0.8, max: 12 },
      itemStyle: { areaColor: "#e9eff6", borderColor: "#a8b9cc", borderWidth: 0.8 },
      emphasis: { itemStyle: { areaColor: "#d7e4f2" }, label: { show: false } },
      label: { show: false },
      select: { disabled: true },
    },
    series: [
      {
        id: "sites",
        name: t("map.sites"),
        type: "scatter",
        coordinateSystem: "geo",
        data: up.map(sitePoint),
        symbolSize: size,
        itemStyle: { color: "#ef7d22", borderColor: "#fff", borderWidth: 1, opacity: 0.92 },
        emphasis: { scale: 1.3, itemStyle: { borderColor: "#1b2533", borderWidth: 2 } },
        zlevel: 2,
      },
      {
        id: "sites-down",
        name: t("map.down"),
        type: "scatter",
        coordinateSystem: "geo",
        symbol: "diamond",
        data: down.map(sitePoint),
        symbolSize: size,
        itemStyle: { color: "#9aa5b4", borderColor: "#fff", borderWidth: 1 },
        zlevel: 2,
      },
      {
        id: "flows",
        name: t("map.flows"),
        type: "lines",
        coordinateSystem: "geo",
        data: flowData,
        lineStyle: { width: 1.4, opacity: 0.55, curveness: 0.25, color: STATE_COLOURS.running },
        itemStyle: { color: STATE_COLOURS.running },
        effect: { show: !CALM, period: 4, trailLength: 0.15, symbol: "arrow", symbolSize: 5 },
        zlevel: 1,
      },
      {
        id: "origins",
        name: t("map.origins"),
        type: "scatter",
        coordinateSystem: "geo",
        data: Object.values(origins),
        symbolSize: 5,
        itemStyle: { color: "#1565c0" },
        zlevel: 2,
      },
      {
        id: "selected-flow",
        name: t("map.selected"),
        type: "lines",
        coordinateSystem: "geo",
        data: selFlow,
        lineStyle: { width: 3, opacity: 0.95, curveness: 0.25, color: "#e8590c" },
        itemStyle: { color: "#e8590c" },
        effect: { show: !CALM, period: 2.5, trailLength: 0.3, symbol: "arrow", symbolSize: 9, color: "#e8590c" },
        zlevel: 3,
      },
      {
        id: "selected-site",
        name: t("map.selected"),
        type: CALM ? "scatter" : "effectScatter",
        coordinateSystem: "geo",
        data: selSite ? [{ ...sitePoint(selSite), label: { show: true } }] : [],
        symbolSize: 16,
        rippleEffect: { scale: 3.5, brushType: "stroke" },
        itemStyle: { color: "#e8590c" },
        label: {
          show: true,
          position: "right",
          formatter: (p) => siteName(p.name),
          color: "#7a2e06",
          fontWeight: 600,
          backgroundColor: "rgba(255,255,255,.9)",
          padding: [2, 5],
          borderRadius: 3,
        },
        zlevel: 4,
      },
    ],
  };
}

function renderMap() {
  if (!S.chart) return;
  const key = JSON.stringify([S.lang, S.sites, S.flows.map((j) => [j.id, j.state, j.site_id]), S.selectedJob && [S.selectedJob.id, S.selectedJob.site_id], S.siteJobs]);
  if (key === S.mapKey) return;
  S.mapKey = key;
  const option = mapOption();
  S.chart.setOption(option, { replaceMerge: ["series"] });
  const el = $("#map");
  el.dataset.sites = String(S.sites.length);
  el.dataset.flows = String(option.series.find((s) => s.id === "flows").data.length);
  el.dataset.selectedSite = S.selectedJob && S.selectedJob.site_id ? S.selectedJob.site_id : "";
}

/* ---------- submit ---------- */

async function setupSubmitForm() {
  const role = S.me.role;
  $("#tenant-field").hidden = role !== "admin";
  $("#operator-note").hidden = role !== "operator";
  $("#submit-btn").disabled = role === "operator";
  const input = $("input[name=tenant]");
  input.required = role === "admin";
  if (role !== "admin") return;
  const tenants = await api("/tenants");
  $("#tenants").innerHTML = tenants.map((x) => `<option value="${esc(x.name)}"></option>`).join("");
  if (!input.value && tenants.length) input.value = tenants[0].name;
}

function formJob(form) {
  const f = new FormData(form);
  const job = {
    origin: String(f.get("origin")).trim(),
    latency_class: f.get("latency_class"),
    data_class: f.get("data_class"),
  };
  for (const k of ["cpu_cores", "gpu_cards", "priority"]) job[k] = parseInt(f.get(k), 10);
  for (const k of ["mem_gb", "runtime_h", "input_gb", "output_gb"]) job[k] = parseFloat(f.get(k));
  const tenant = String(f.get("tenant") || "").trim();
  if (S.me && S.me.role === "admin" && tenant) job.tenant = tenant;
  const cmd = String(f.get("command") || "").trim();
  if (cmd) job.command = cmd;
  return job;
}

async function submitJob(ev) {
  ev.preventDefault();
  const form = ev.target;
  const btn = $("#submit-btn");
  btn.disabled = true;
  btn.textContent = t("submit.sending");
  S.submitMsg = null;
  renderSubmitMsg();
  try {
    const job = await api("/jobs", { method: "POST", body: JSON.stringify(formJob(form)) });
    S.submitMsg = { cls: "msg ok", key: "submit.ok", vars: { id: job.id }, extra: "" };
    renderSubmitMsg();
    $("#submit-msg").dataset.jobId = job.id;
    S.filter = "";
    S.offset = 0;
    $("#state-filter").value = "";
    S.selected = job.id;
    S.selectedJob = job;
    S.placementKey = "";
    await refresh();
    setTimeout(refresh, REFRESH_MS / 4); // the loop usually places a job within a tick: show it without waiting
  } catch (e) {
    if (e.status === 401) return signOut(t("signin.bad"));
    S.submitMsg = { cls: "msg bad", key: "submit.fail", vars: null, extra: e.message };
    renderSubmitMsg();
  } finally {
    btn.disabled = S.me ? S.me.role === "operator" : false;
    btn.textContent = t("submit.button");
  }
}

function renderSubmitMsg() {
  const msg = $("#submit-msg");
  const m = S.submitMsg;
  msg.className = m ? m.cls : "msg";
  msg.textContent = m ? t(m.key, m.vars) + m.extra : "";
}

/* ---------- wiring ---------- */

function setLang(lang) {
  S.lang = lang;
  localStorage.setItem(LANG_KEY, lang);
  applyI18n();
  renderWho();
  renderSubmitMsg();
  if (S.me) renderAll();
}

function boot() {
  window.addEventListener("pagehide", () => { S.leaving = true; });
  applyI18n();
  $("#lang").addEventListener("click", () => setLang(S.lang === "zh" ? "en" : "zh"));
  $("#signout").addEventListener("click", () => signOut(""));
  $("#signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const btn = $("#signin-btn");
    btn.disabled = true;
    $("#signin-error").textContent = "";
    try {
      await signIn($("#token").value.trim());
    } catch (e) {
      S.token = "";
      $("#signin-error").textContent = e.status === 401 || e.status === 403 ? t("signin.bad") : t("signin.down") + e.message;
    } finally {
      btn.disabled = false;
    }
  });
  $("#submit-form").addEventListener("submit", submitJob);
  $("#jobs tbody").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-id]");
    if (tr) selectJob(tr.dataset.id);
  });
  $("#state-filter").addEventListener("change", (ev) => {
    S.filter = ev.target.value;
    S.offset = 0;
    refresh();
  });
  $("#prev").addEventListener("click", () => { S.offset = Math.max(0, S.offset - PAGE_SIZE); refresh(); });
  $("#next").addEventListener("click", () => { S.offset += PAGE_SIZE; refresh(); });
  if (S.token) signIn(S.token).catch(() => signOut(""));
  else $("#token").focus();
}

// The China geometry (about 60 kB) loads in the background; the page is wired at once, so a sign-in clicked
// before it arrives is handled here rather than submitted as a plain form (which would put the token in the URL).
const MAP_READY = fetch("china.json")
  .then((r) => r.json())
  .then((geo) => { echarts.registerMap("china", geo); })
  .catch((e) => { console.error("cannot load the China map:", e); });
boot();
