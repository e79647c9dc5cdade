/* suanwang report page: draws the charts from the JSON embedded in the page (Apache-2.0). */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var T = D.t;
  echarts.registerMap("china", JSON.parse(document.getElementById("china-geo").textContent));

  var FONT = '"Noto Sans CJK SC", "Noto Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif';
  var COLORS = ["#1b6ac9", "#2f8f83", "#e0903a", "#8e5cc4", "#c8412f", "#4a9fd8", "#7a8c2e", "#d4679a", "#5b5f97", "#b8860b", "#17becf", "#8c564b"];
  var charts = {};
  var sites = {};
  D.sites.forEach(function (s) { sites[s.id] = s; });

  function chart(id) {
    if (!charts[id]) {
      charts[id] = echarts.init(document.getElementById(id), null, { renderer: "canvas", locale: D.lang === "zh" ? "ZH" : "EN" });
    }
    return charts[id];
  }
  function fmt(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) { return "—"; }
    var d = Math.abs(x) >= 1000 ? 0 : (digits || 0);
    return Number(x).toLocaleString(D.lang === "zh" ? "zh-CN" : "en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  }
  function siteName(id) { return (D.site_names && D.site_names[id]) || id; }
  function base(extra) {
    var o = { textStyle: { fontFamily: FONT }, color: COLORS, animationDuration: 400 };
    for (var k in extra) { o[k] = extra[k]; }
    return o;
  }

  /* ---- map ---- */
  function drawMap(policy) {
    var P = D.per_policy[policy];
    var load = P.load || {};
    var maxCh = 0;
    D.sites.forEach(function (s) { var l = load[s.id]; if (l && l.core_hours > maxCh) { maxCh = l.core_hours; } });
    var points = [];
    var carbons = [];
    D.sites.forEach(function (s) {
      if (s.lat === null || s.lon === null) { return; }
      var l = load[s.id] || {};
      var ch = l.core_hours || 0;
      if (s.carbon !== null) { carbons.push(s.carbon); }
      points.push({
        name: s.name, id: s.id,
        value: [s.lon, s.lat, s.carbon === null ? 0 : s.carbon, ch],
        load: l,
        symbolSize: ch > 0 && maxCh > 0 ? 6 + 30 * Math.sqrt(ch / maxCh) : 4,
        itemStyle: ch > 0 ? {} : { opacity: 0.45 },
      });
    });
    var flows = P.flows || [];
    var maxJobs = flows.reduce(function (m, f) { return Math.max(m, f.jobs); }, 0) || 1;
    function lines(raised) {
      return flows.filter(function (f) { return f.raised === raised; }).map(function (f) {
        return { coords: f.coords, flow: f, lineStyle: { width: 0.6 + 6 * Math.sqrt(f.jobs / maxJobs) } };
      });
    }
    var cmin = carbons.length ? Math.min.apply(null, carbons) : 0;
    var cmax = carbons.length ? Math.max.apply(null, carbons) : 1;
    var lineBase = { type: "lines", coordinateSystem: "geo", zlevel: 1, symbol: ["none", "arrow"], symbolSize: 5, emphasis: { focus: "self" } };
    chart("map").setOption(base({
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          if (p.seriesType === "lines") {
            var f = p.data.flow;
            return f.from + " → " + f.to + "<br>" + T.jobs + ": <b>" + fmt(f.jobs) + "</b><br>" +
              T.carbon_t + ": " + fmt(f.carbon_t, 2) + "<br>" + T.carbon_if_local_t + ": " + fmt(f.carbon_if_local_t, 2);
          }
          var l = p.data.load || {};
          return "<b>" + p.data.name + "</b><br>" + T.site_load + ": " + fmt(l.core_hours) + "<br>" + T.jobs + ": " + fmt(l.jobs) +
            "<br>" + T.energy_mwh + ": " + fmt(l.energy_mwh, 1) + "<br>" + T.carbon_t + ": " + fmt(l.carbon_t, 1) +
            "<br>" + T.mean_util + ": " + (l.mean_util === null || l.mean_util === undefined ? "—" : fmt(l.mean_util * 100, 1) + "%") +
            "<br>" + T.carbon_intensity + ": " + fmt(p.data.value[2], 3);
        },
      },
      legend: { data: [T.moved_lowered, T.moved_raised, T.sites_legend], top: 6, right: 10 },
      geo: {
        map: "china", roam: true, zoom: 1.05, top: 44, bottom: 12,
        itemStyle: { areaColor: "#eef2f7", borderColor: "#a9b6c8", borderWidth: 0.8 },
        emphasis: { itemStyle: { areaColor: "#dde7f3" }, label: { show: false } },
        label: { show: false },
      },
      visualMap: {
        type: "continuous", seriesIndex: 2, dimension: 2, min: cmin, max: cmax, calculable: true,
        left: 16, bottom: 24, itemHeight: 120, text: [T.carbon_intensity, ""], precision: 2,
        inRange: { color: ["#1a9850", "#f6c343", "#d73027"] },
      },
      series: [
        Object.assign({ name: T.moved_lowered, data: lines(false), lineStyle: { color: "#2b7bd6", opacity: 0.45, curveness: 0.18 } }, lineBase),
        Object.assign({ name: T.moved_raised, data: lines(true), lineStyle: { color: "#e0533d", opacity: 0.6, curveness: 0.18 } }, lineBase),
        {
          name: T.sites_legend, type: "scatter", coordinateSystem: "geo", zlevel: 2, data: points,
          itemStyle: { borderColor: "#fff", borderWidth: 1, color: "#d7443a" },
          label: { show: true, formatter: function (p) { return p.data.load && p.data.load.core_hours > 0.15 * maxCh ? p.data.name : ""; }, position: "right", fontSize: 12, fontWeight: 600, color: "#1f2933", textBorderColor: "#fff", textBorderWidth: 3 },
        },
      ],
    }), true);
  }

  /* ---- policy comparison ---- */
  function drawCompare() {
    var names = D.policies;
    function col(key) { return names.map(function (n) { return D.per_policy[n].totals[key]; }); }
    function ratioCol(key) { return names.map(function (n) { return D.per_policy[n][key]; }); }
    var axis = { type: "category", data: names, axisLabel: { interval: 0, rotate: names.length > 5 ? 30 : 0, fontSize: 11 } };
    var grid = { left: 50, right: 14, top: 56, bottom: 60 };
    chart("chart-ratio").setOption(base({
      title: { text: T.ratio_chart, textStyle: { fontSize: 13 } }, tooltip: { trigger: "axis" },
      legend: { top: 24, data: [T.cost_ratio, T.carbon_ratio] }, grid: grid, xAxis: axis, yAxis: { type: "value" },
      series: [
        { name: T.cost_ratio, type: "bar", data: ratioCol("cost_ratio"), markLine: { silent: true, symbol: "none", data: [{ yAxis: 1 }], lineStyle: { color: "#888" } } },
        { name: T.carbon_ratio, type: "bar", data: ratioCol("carbon_ratio"), itemStyle: { color: "#2f8f83" } },
      ],
    }));
    chart("chart-wait").setOption(base({
      title: { text: T.wait_chart, textStyle: { fontSize: 13 } }, tooltip: { trigger: "axis" },
      legend: { top: 24, data: ["p50", "p95", "p99"] }, grid: grid, xAxis: axis, yAxis: { type: "value" },
      series: [
        { name: "p50", type: "bar", data: col("wait_p50_h") },
        { name: "p95", type: "bar", data: col("wait_p95_h") },
        { name: "p99", type: "bar", data: col("wait_p99_h") },
      ],
    }));
    chart("chart-violations").setOption(base({
      title: { text: T.violation_chart, textStyle: { fontSize: 13 } }, tooltip: { trigger: "axis" },
      legend: { top: 24, data: [T.deadline_misses, T.latency_violations, T.residency_violations], itemWidth: 14, textStyle: { fontSize: 11 } },
      grid: grid, xAxis: axis, yAxis: { type: "value" },
      color: ["#e0903a", "#8e5cc4", "#c8412f"],
      series: [
        { name: T.deadline_misses, type: "bar", data: col("deadline_misses") },
        { name: T.latency_violations, type: "bar", data: col("latency_violations") },
        { name: T.residency_violations, type: "bar", data: col("residency_violations") },
      ],
    }));
  }

  /* ---- utilisation heatmap ---- */
  function drawHeat(policy) {
    var U = D.per_policy[policy].util;
    var c = chart("heatmap");
    if (!U) {
      c.setOption(base({ graphic: [{ type: "text", left: "center", top: "middle", style: { text: T.util_missing, fontSize: 15, fill: "#5f6b7a", fontFamily: FONT } }] }), true);
      return;
    }
    var data = [];
    U.values.forEach(function (row, i) { row.forEach(function (v, j) { if (v !== null) { data.push([i, j, v]); } }); });
    c.setOption(base({
      tooltip: {
        position: "top",
        formatter: function (p) { return siteName(U.site_ids[p.value[1]]) + "<br>" + T.hour + " " + U.hours[p.value[0]] + ": <b>" + fmt(p.value[2] * 100, 1) + "%</b>"; },
      },
      grid: { left: 10, right: 20, top: 10, bottom: 70, containLabel: true },
      xAxis: { type: "category", data: U.hours, name: T.hour, nameLocation: "middle", nameGap: 26, splitArea: { show: false }, axisLabel: { interval: U.hours.length > 48 ? 23 : 5 } },
      yAxis: { type: "category", data: U.site_ids.map(siteName), axisLabel: { fontSize: 11 }, inverse: true },
      visualMap: { min: 0, max: 1, calculable: true, orient: "horizontal", left: "center", bottom: 4, itemWidth: 12, text: ["100%", T.utilisation + " 0%"], inRange: { color: ["#f7fbff", "#9ecae1", "#3182bd", "#08306b"] } },
      series: [{ type: "heatmap", data: data, progressive: 0, emphasis: { itemStyle: { borderColor: "#333", borderWidth: 1 } } }],
    }), true);
  }

  /* ---- signals ---- */
  function drawSignal(id, series, title, digits, step) {
    var ids = Object.keys(series || {});
    var c = chart(id);
    if (!ids.length) {
      c.setOption(base({ title: { text: title, textStyle: { fontSize: 13 } }, graphic: [{ type: "text", left: "center", top: "middle", style: { text: T.no_data, fill: "#5f6b7a", fontFamily: FONT } }] }));
      return;
    }
    var clusters = ids.filter(function (s) { return sites[s] && sites[s].kind === "national-cluster"; });
    var shown = clusters.length ? clusters : ids.slice(0, 10);
    ids.sort(function (a, b) { return (shown.indexOf(a) < 0) - (shown.indexOf(b) < 0); });
    var selected = {};
    ids.forEach(function (s) { selected[siteName(s)] = shown.indexOf(s) >= 0; });
    c.setOption(base({
      title: { text: title, textStyle: { fontSize: 13 } },
      tooltip: { trigger: "axis", order: "valueDesc", valueFormatter: function (v) { return fmt(v, digits); } },
      legend: { type: "scroll", bottom: 0, selected: selected, textStyle: { fontSize: 11, width: 130, overflow: "truncate" }, tooltip: { show: true } },
      grid: { left: 50, right: 16, top: 40, bottom: 70 },
      xAxis: { type: "category", data: D.signals.hours, name: T.hour, nameLocation: "middle", nameGap: 24, boundaryGap: false },
      yAxis: { type: "value", scale: true },
      series: ids.map(function (s) { return { name: siteName(s), type: "line", data: series[s], showSymbol: false, step: step || false, lineStyle: { width: 1.6 } }; }),
    }));
  }

  /* ---- policy selection ---- */
  function select(policy) {
    document.querySelectorAll("[data-policy]").forEach(function (el) { el.hidden = el.getAttribute("data-policy") !== policy; });
    document.querySelectorAll(".policy-name").forEach(function (el) { el.textContent = policy; });
    document.querySelectorAll("[data-row-policy]").forEach(function (el) { el.classList.toggle("selected", el.getAttribute("data-row-policy") === policy); });
    drawMap(policy);
    drawHeat(policy);
  }

  var sel = document.getElementById("policy-select");
  sel.addEventListener("change", function () { select(sel.value); });
  drawCompare();
  drawSignal("chart-price", D.signals.price, T.price_chart, 3, "end");
  drawSignal("chart-grid", D.signals.grid, T.grid_chart, 3);
  select(D.default_policy);
  window.addEventListener("resize", function () { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); });
  window.suanwangReport = { charts: charts, select: select, ready: true };
})();
