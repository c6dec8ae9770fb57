/* Backtest charts (TradingView lightweight-charts 4.2, vendored in static/vendor): a run's
   equity and drawdown, and the compare page's equity overlay. Data comes from
   <script type="application/json"> islands (#backtest-data, #compare-data): no inline script,
   as the Content-Security-Policy requires. The run page's results arrive by htmx once a run
   finishes, so the charts are (re)drawn after every htmx swap too. */
(function () {
  "use strict";
  var THEME = {
    autoSize: true,
    layout: { background: { color: "#161b22" }, textColor: "#d7dde5" },
    grid: { vertLines: { color: "#21262d" }, horzLines: { color: "#21262d" } },
    // minBarSpacing: a week of 2,000 equity points (more when runs overlay) fits the width.
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#2a313c", minBarSpacing: 0.01 },
    rightPriceScale: { borderColor: "#2a313c" },
    crosshair: { mode: 0 },
  };
  // USDT with thousands separators, as the desk writes money (trading/core/numbers.py).
  var USDT = { priceFormatter: function (v) { return v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }); } };

  function options(extra) {
    return Object.assign({}, THEME, extra || {});
  }
  // Same order as the .bt-c0 … .bt-c7 legend classes in static/css/backtests.css.
  var COLORS = ["#4c9aff", "#2ebd85", "#e3b341", "#a371f7", "#f0616d", "#d7dde5", "#8b95a3", "#ff9f43"];

  function readJson(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function fresh(container) {
    // Drawn once per element: a later swap brings a new element, drawn again.
    if (!container || container.dataset.drawn) return false;
    container.dataset.drawn = "1";
    return true;
  }

  function equityChart(container, points) {
    var chart = LightweightCharts.createChart(container, options({ localization: USDT }));
    chart.addLineSeries({ color: COLORS[0], lineWidth: 2, priceLineVisible: false }).setData(points);
    chart.timeScale().fitContent();
  }

  function drawdownChart(container, points) {
    var chart = LightweightCharts.createChart(container, options());
    chart.addAreaSeries({
      lineColor: "#f0616d", topColor: "rgba(240,97,109,0.05)", bottomColor: "rgba(240,97,109,0.4)",
      lineWidth: 1, priceLineVisible: false,
      priceFormat: { type: "custom", formatter: function (v) { return v.toFixed(2).replace("-", "\u2212") + " %"; } },
    }).setData(points);
    chart.timeScale().fitContent();
  }

  function overlayChart(container, curves) {
    var chart = LightweightCharts.createChart(container, options({ localization: USDT }));
    curves.forEach(function (curve, i) {
      if (!curve.points || !curve.points.length) return;
      chart.addLineSeries({
        color: COLORS[i % COLORS.length], lineWidth: 2, title: (curve.name || "").split(" ")[0],
        priceLineVisible: false,
      }).setData(curve.points);
    });
    chart.timeScale().fitContent();
  }

  function draw() {
    if (typeof LightweightCharts === "undefined") return;
    var run = readJson("backtest-data");
    if (run) {
      var eq = document.getElementById("bt-equity");
      if (run.equity && run.equity.length && fresh(eq)) equityChart(eq, run.equity);
      var dd = document.getElementById("bt-drawdown");
      if (run.drawdown && run.drawdown.length && fresh(dd)) drawdownChart(dd, run.drawdown);
    }
    var curves = readJson("compare-data");
    var overlay = document.getElementById("compare-equity");
    if (curves && curves.length && fresh(overlay)) overlayChart(overlay, curves);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
  document.addEventListener("htmx:afterSettle", draw);
})();
