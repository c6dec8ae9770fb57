/* Arena and Session: daily net P&L bars and cumulative equity lines (TradingView
   lightweight-charts v4, vendored), drawn from the JSON island "arena-chart-data" that
   strategies.arena_stats.arena_breakdowns computes on the server:
     {"daily": [{"time": "2025-06-17", "value": 78.5}, ...],
      "equity": [{"name": "vwap_rsi", "key": 0, "points": [{"time": ..., "value": ...}]}]}
   Colours come from the stylesheet (static/css/arena.css: --up / --down, the legend keys),
   never from inline styles: the Content-Security-Policy refuses them. */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function theme() {
    var line = cssVar("--line", "#2a313c");
    return {
      autoSize: true,
      layout: { background: { type: "solid", color: cssVar("--panel", "#161b22") }, textColor: cssVar("--text", "#d7dde5") },
      grid: { vertLines: { color: line }, horzLines: { color: line } },
      timeScale: { borderColor: line, timeVisible: false },
      rightPriceScale: { borderColor: line },
      crosshair: { mode: 0 },
      handleScroll: false,
      handleScale: false,
    };
  }

  var MONEY = { type: "price", precision: 2, minMove: 0.01 };

  function dailyChart(el, daily) {
    var chart = LightweightCharts.createChart(el, theme());
    var up = cssVar("--up", "#2ebd85");
    var down = cssVar("--down", "#f0616d");
    var bars = chart.addHistogramSeries({ priceFormat: MONEY, priceLineVisible: false, lastValueVisible: false });
    bars.setData(daily.map(function (d) {
      return { time: d.time, value: d.value, color: d.value >= 0 ? up : down };
    }));
    chart.timeScale().fitContent();
    return chart;
  }

  function lineColour(key) {
    var el = document.querySelector("#arena-equity-legend .arena-key.k" + key);
    return el ? getComputedStyle(el).color : cssVar("--accent", "#4c9aff");
  }

  function equityChart(el, lines) {
    var chart = LightweightCharts.createChart(el, theme());
    lines.forEach(function (line) {
      chart.addLineSeries({
        color: lineColour(line.key),
        lineWidth: 2,
        priceFormat: MONEY,
        priceLineVisible: false,
        title: lines.length > 1 ? line.name : "",
      }).setData(line.points);
    });
    chart.timeScale().fitContent();
    return chart;
  }

  function init() {
    var island = document.getElementById("arena-chart-data");
    var dailyEl = document.getElementById("arena-daily-chart");
    var equityEl = document.getElementById("arena-equity-chart");
    if (!island || !dailyEl || !equityEl || typeof LightweightCharts === "undefined") return;
    var data = JSON.parse(island.textContent);
    dailyChart(dailyEl, data.daily || []);
    equityChart(equityEl, data.equity || []);
    dailyEl.dataset.drawn = String((data.daily || []).length);
    equityEl.dataset.drawn = String((data.equity || []).length);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
