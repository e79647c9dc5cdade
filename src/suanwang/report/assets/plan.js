/* suanwang plan report page: draws the planner's charts from the JSON embedded in the page (Apache-2.0). */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("plan-data").textContent);
  var T = D.t;
  echarts.registerMap("china", JSON.parse(document.getElementById("china-geo").textContent));
  var FONT = '"Noto Sans CJK SC", "Noto Sans SC", sans-serif';
  function init(id) { return echarts.init(document.getElementById(id), null, { renderer: "canvas" }); }
  var TIER_COLORS = { "1": "#c8412f", "5": "#e0903a", "20": "#1b6ac9" };
  var map = init("map");
  var series = [
    { name: T.existing, type: "scatter", coordinateSystem: "geo", symbol: "triangle", symbolSize: 8,
      itemStyle: { color: "#555" }, data: D.map.existing.map(function (s) { return { name: s.name, value: [s.lon, s.lat] }; }) },
    { name: T.candidates, type: "scatter", coordinateSystem: "geo", symbolSize: 6,
      data: D.map.candidates.map(function (c) { return { name: c.name, value: [c.lon, c.lat, c.value] }; }) },
    { name: T.chosen, type: "effectScatter", coordinateSystem: "geo", symbolSize: 16, itemStyle: { color: "#d62728" },
      data: D.map.chosen.map(function (c) { return { name: c.name, value: [c.lon, c.lat] }; }) }
  ];
  ["20", "5", "1"].forEach(function (tier) {
    var lines = [];
    D.map.chosen.forEach(function (c) {
      (c.tiers[tier] || []).forEach(function (p) { lines.push({ coords: [[c.lon, c.lat], [p[0], p[1]]], name: p[2] }); });
    });
    series.push({ name: tier + " ms", type: "lines", coordinateSystem: "geo", data: lines,
      lineStyle: { color: TIER_COLORS[tier], width: tier === "20" ? 0.6 : 1.6, opacity: 0.7 } });
  });
  var values = D.map.candidates.map(function (c) { return c.value; });
  map.setOption({
    textStyle: { fontFamily: FONT },
    tooltip: { trigger: "item", formatter: function (p) { return p.name + (p.value && p.value[2] !== undefined ? "<br>" + T.value + ": " + p.value[2] : ""); } },
    legend: { top: 0 },
    geo: { map: "china", roam: true, itemStyle: { areaColor: "#eef2f7", borderColor: "#9aa" } },
    visualMap: { seriesIndex: 1, min: Math.min.apply(null, values.concat([0])), max: Math.max.apply(null, values.concat([0])),
      dimension: 2, text: [T.value, ""], calculable: true, precision: 4, left: 10, bottom: 20, inRange: { color: ["#cfd8e6", "#2f8f83"] } },
    series: series
  });
  var pareto = init("pareto");
  pareto.setOption({
    textStyle: { fontFamily: FONT },
    tooltip: { formatter: function (p) { return p.data[3] + "<br>" + T.cost + ": " + p.data[0] + "<br>" + T.carbon + ": " + p.data[1]; } },
    xAxis: { name: T.cost, type: "value", scale: true }, yAxis: { name: T.carbon, type: "value", scale: true },
    series: [{ type: "scatter", data: D.ranked.map(function (r) {
      return [r.cost_cny_per_year, r.carbon_t_per_year, r.reach_5ms_share, r.city]; }),
      symbolSize: function (d) { return 6 + 40 * Math.sqrt(Math.max(0, d[2])); } }]
  });
  if (D.sensitivity) {
    var sens = init("sensitivity");
    sens.setOption({
      textStyle: { fontFamily: FONT }, tooltip: {}, grid: { left: 260 },
      xAxis: { type: "value", name: T.value }, yAxis: { type: "category", data: D.sensitivity.variants.map(function (v) { return v.variant; }) },
      series: [{ type: "bar", data: D.sensitivity.variants.map(function (v) { return v.base_best_value; }) }]
    });
  }
  window.suanwangPlan = { ready: true };
})();
