/* Candle charts (TradingView lightweight-charts v4, vendored) for the Chart and Backtest pages.
   Data comes from a json_script block; live closed candles arrive as an htmx out-of-band swap
   of a hidden element carrying data-candle="t_ms,o,h,l,c,v" (the newest) and data-candles, every
   candle of that commit separated by ";" (several when the runtime caught up). */
(function () {
  "use strict";
  var THEME = {
    layout: { background: { color: "#161b22" }, textColor: "#d7dde5" },
    grid: { vertLines: { color: "#21262d" }, horzLines: { color: "#21262d" } },
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#2a313c" },
    rightPriceScale: { borderColor: "#2a313c" },
    crosshair: { mode: 0 },
  };

  function readJson(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  function candleChart(container, data) {
    var chart = LightweightCharts.createChart(container, Object.assign({ autoSize: true }, THEME));
    var candles = chart.addCandlestickSeries({
      upColor: "#2ebd85", downColor: "#f0616d", borderVisible: false,
      wickUpColor: "#2ebd85", wickDownColor: "#f0616d",
    });
    candles.setData(data.candles || []);
    [["ema20", "#e3b341"], ["ema50", "#a371f7"], ["vwap", "#4c9aff"]].forEach(function (pair) {
      if (data[pair[0]] && data[pair[0]].length) {
        chart.addLineSeries({ color: pair[1], lineWidth: 1, priceLineVisible: false, lastValueVisible: false })
          .setData(data[pair[0]]);
      }
    });
    if (data.markers && data.markers.length) candles.setMarkers(data.markers);
    chart.timeScale().fitContent();
    return { chart: chart, candles: candles };
  }

  function lineChart(container, series, opts) {
    var chart = LightweightCharts.createChart(container, Object.assign({ autoSize: true }, THEME));
    var colors = ["#4c9aff", "#2ebd85", "#e3b341", "#a371f7", "#f0616d", "#d7dde5", "#8b95a3", "#ff9f43"];
    series.forEach(function (s, i) {
      var line = (opts && opts.area)
        ? chart.addAreaSeries({ lineColor: "#f0616d", topColor: "rgba(240,97,109,0.05)", bottomColor: "rgba(240,97,109,0.4)", lineWidth: 1 })
        : chart.addLineSeries({ color: colors[i % colors.length], lineWidth: 2, title: s.name || "" });
      line.setData(s.points || []);
    });
    chart.timeScale().fitContent();
    return chart;
  }

  window.ScalpCharts = { candleChart: candleChart, lineChart: lineChart, readJson: readJson };

  function init() {
    if (typeof LightweightCharts === "undefined") return;
    var el = document.getElementById("chart");
    var data = readJson("chart-data");
    if (el && data && data.candles) {
      var step = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600 }[el.dataset.timeframe] || 60;
      var live = candleChart(el, data);
      var lastBar = data.candles.length ? data.candles[data.candles.length - 1] : null;
      document.body.addEventListener("htmx:oobAfterSwap", function (evt) {
        var target = evt.detail && evt.detail.target;
        if (!target || !target.dataset || !target.dataset.candle) return;
        // Every candle of the commit, oldest first (a catch-up commits several at once).
        (target.dataset.candles || target.dataset.candle).split(";").forEach(function (text) {
          var c = text.split(",").map(Number);
          var t = Math.floor(c[0] / 1000 / step) * step;
          // A closed 1m candle extends the current bucket of a higher timeframe.
          if (lastBar && lastBar.time === t) {
            lastBar = { time: t, open: lastBar.open, high: Math.max(lastBar.high, c[2]), low: Math.min(lastBar.low, c[3]), close: c[4] };
          } else if (!lastBar || t > lastBar.time) {
            lastBar = { time: t, open: c[1], high: c[2], low: c[3], close: c[4] };
          } else {
            return;
          }
          live.candles.update(lastBar);
        });
      });
    }
    var bt = readJson("backtest-data");
    if (bt) {
      var eq = document.getElementById("bt-equity");
      if (eq && bt.equity.length) lineChart(eq, [{ name: "equity", points: bt.equity }]);
      var dd = document.getElementById("bt-drawdown");
      if (dd && bt.drawdown.length) lineChart(dd, [{ points: bt.drawdown }], { area: true });
      var bc = document.getElementById("bt-candles");
      if (bc && bt.candles.length) candleChart(bc, { candles: bt.candles, markers: bt.markers });
    }
    var cmp = readJson("compare-data");
    var ce = document.getElementById("compare-equity");
    if (cmp && ce && cmp.length) lineChart(ce, cmp.map(function (c) { return { name: c.name, points: c.points }; }));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
