/* Charts (TradingView lightweight-charts v4, vendored) for the Chart, Backtest and Compare pages.

   Chart page: three stacked charts — price (candles, EMA fast/slow, VWAP, markers, position
   lines), volume, and RSI + ADX of the strategy in view — whose time scales and crosshairs are
   kept in step (v4 has no panes). Data comes from the json_script island "chart-data"
   (strategies/chart_data.py). A live closed 1m candle arrives as an htmx out-of-band swap of a
   hidden element carrying data-candle="t_ms,o,h,l,c,v" (the newest) and data-candles (every
   candle of that commit, ";"-separated): the candle is drawn at once, then the page refetches
   the tail of the chart (chart/data/) — candles, volume, studies, markers, lines, funding —
   computed on the server by the strategy's own indicator code, so the studies never lag. */
(function () {
  "use strict";
  var THEME = {
    layout: { background: { color: "#161b22" }, textColor: "#d7dde5" },
    grid: { vertLines: { color: "#21262d" }, horzLines: { color: "#21262d" } },
    timeScale: { timeVisible: true, secondsVisible: false, borderColor: "#2a313c" },
    rightPriceScale: { borderColor: "#2a313c" },
    crosshair: { mode: 0 },
  };
  var UP = "#2ebd85", DOWN = "#f0616d";
  var STUDY_COLORS = { ema_fast: "#e3b341", ema_slow: "#a371f7", vwap: "#4c9aff", rsi: "#d7dde5", adx: "#ff9f43" };
  var PRICE_STUDIES = ["ema_fast", "ema_slow", "vwap"];
  var OSC_STUDIES = ["rsi", "adx"];
  var SCALE_WIDTH = 84; // the same right scale width on every pane: their bars line up

  function readJson(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // --- numbers as trading/core/numbers.py writes them (thousands commas, true minus) ---
  function places(step) {
    if (!step || !(step > 0)) return null;
    var text = String(step);
    if (text.indexOf("e-") >= 0) return parseInt(text.split("e-")[1], 10);
    var dot = text.indexOf(".");
    return dot < 0 ? 0 : text.length - dot - 1;
  }
  function fixed(x, p) {
    var text = Math.abs(x).toLocaleString("en-US", { minimumFractionDigits: p, maximumFractionDigits: p });
    return (x < 0 && Number(text.replace(/,/g, "")) !== 0 ? "\u2212" : "") + text;
  }
  function trimmed(text) { return text.indexOf(".") >= 0 ? text.replace(/0+$/, "").replace(/\.$/, "") : text; }
  function fmtPrice(x, tick) {
    if (typeof x !== "number" || !isFinite(x)) return "\u2014";
    var p = places(tick);
    if (p === null) return trimmed(fixed(x, Math.abs(x) >= 1 ? 4 : 8));
    return fixed(Math.round(x / tick) * tick, p);
  }
  function fmtQty(x, lot) {
    if (typeof x !== "number" || !isFinite(x)) return "\u2014";
    var p = places(lot);
    return p === null ? trimmed(fixed(x, 6)) : fixed(x, p);
  }
  function fmtTime(s) { return new Date(s * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC"; }
  function fmtCountdown(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h + "h " + (m < 10 ? "0" : "") + m + "m " + (r < 10 ? "0" : "") + r + "s";
  }
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // --- the backtest and compare pages' simple charts ---
  function candleChart(container, data) {
    var chart = LightweightCharts.createChart(container, Object.assign({ autoSize: true }, THEME));
    var candles = chart.addCandlestickSeries({
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN,
    });
    candles.setData(data.candles || []);
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

  // --- the Chart page ---
  function deskChart(root, data) {
    var tick = parseFloat(root.dataset.tick) || null;
    var p = places(tick);
    var priceFormat = p === null ? { type: "price", precision: 4, minMove: 0.0001 } : { type: "price", precision: p, minMove: tick };
    function options(showTime, formatter, logo) {
      return Object.assign({ autoSize: true }, THEME, {
        // The library's attribution logo once, on the price pane.
        layout: Object.assign({}, THEME.layout, { attributionLogo: logo }),
        rightPriceScale: { borderColor: "#2a313c", minimumWidth: SCALE_WIDTH },
        timeScale: Object.assign({}, THEME.timeScale, { visible: showTime }),
        localization: { priceFormatter: formatter },
      });
    }
    function compact(v) {
      if (Math.abs(v) >= 1e6) return fixed(v / 1e6, 2) + "M";
      if (Math.abs(v) >= 1e4) return fixed(v / 1e3, 1) + "K";
      return fixed(v, Math.abs(v) >= 100 ? 0 : 2);
    }
    var onTick = function (v) { return fmtPrice(v, tick); };
    var oneDecimal = function (v) { return fixed(v, 1); };
    var price = LightweightCharts.createChart(document.getElementById("chart"), options(false, onTick, true));
    var volume = LightweightCharts.createChart(document.getElementById("chart-volume"), options(false, compact, false));
    var osc = LightweightCharts.createChart(document.getElementById("chart-osc"), options(true, oneDecimal, false));
    osc.priceScale("right").applyOptions({ scaleMargins: { top: 0.08, bottom: 0.04 } });
    var charts = [price, volume, osc];
    var candles = price.addCandlestickSeries({
      upColor: UP, downColor: DOWN, borderVisible: false, wickUpColor: UP, wickDownColor: DOWN, priceFormat: priceFormat,
    });
    var quiet = { lineWidth: 1, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false };
    var series = { candles: candles };
    PRICE_STUDIES.forEach(function (key) {
      series[key] = price.addLineSeries(Object.assign({ color: STUDY_COLORS[key], priceFormat: priceFormat }, quiet));
    });
    series.volume = volume.addHistogramSeries({ priceFormat: { type: "volume" }, priceLineVisible: false, lastValueVisible: false });
    var fixedRange = function () { return { priceRange: { minValue: 0, maxValue: 100 } }; };
    OSC_STUDIES.forEach(function (key) {
      series[key] = osc.addLineSeries(Object.assign({}, quiet, {
        color: STUDY_COLORS[key], lastValueVisible: true, autoscaleInfoProvider: fixedRange,
        priceFormat: { type: "price", precision: 1, minMove: 0.1 },
      }));
    });
    var levels = data.levels || { rsi: [30, 70], adx: [25] };
    levels.rsi.forEach(function (v) {
      series.rsi.createPriceLine({ price: v, color: "#4b5563", lineWidth: 1, lineStyle: 2, axisLabelVisible: false, title: "" });
    });
    levels.adx.forEach(function (v) {
      series.adx.createPriceLine({ price: v, color: "#7c4a1e", lineWidth: 1, lineStyle: 3, axisLabelVisible: false, title: "" });
    });

    // Points kept by key, in time order, to update the last one and read the hovered one.
    var state = { points: {}, byTime: {}, markers: {}, tips: {}, lines: {}, fetches: 0 };
    var KEYS = ["candles", "volume"].concat(PRICE_STUDIES, OSC_STUDIES);
    KEYS.forEach(function (key) {
      state.points[key] = (data[key] || []).slice();
      state.byTime[key] = {};
      state.points[key].forEach(function (pt) { state.byTime[key][pt.time] = pt; });
      series[key].setData(state.points[key]);
    });

    function upsert(key, pt) {
      var list = state.points[key];
      var last = list.length ? list[list.length - 1] : null;
      if (last && pt.time < last.time) return false; // older than the chart: not drawable by update()
      if (last && pt.time === last.time) list[list.length - 1] = pt; else list.push(pt);
      state.byTime[key][pt.time] = pt;
      series[key].update(pt);
      return true;
    }
    function lastValued(key) {
      var list = state.points[key];
      for (var i = list.length - 1; i >= 0; i--) if (list[i].value !== undefined || list[i].close !== undefined) return list[i];
      return null;
    }
    function stamp() { // what the page shows now, as data attributes (read by the browser tests)
      root.dataset.lastCandle = String((lastValued("candles") || {}).time || "");
      PRICE_STUDIES.concat(OSC_STUDIES, ["volume"]).forEach(function (key) {
        root.dataset["last" + key.replace(/(^|_)(\w)/g, function (_, __, c) { return c.toUpperCase(); })] = String((lastValued(key) || {}).time || "");
      });
      root.dataset.fetches = String(state.fetches);
    }

    // --- markers and their tooltips ---
    function setMarkers(list, tips) {
      (list || []).forEach(function (m) { state.markers[m.id] = m; });
      Object.keys(tips || {}).forEach(function (id) { state.tips[id] = tips[id]; });
      var first = state.points.candles.length ? state.points.candles[0].time : 0;
      var all = Object.keys(state.markers).map(function (id) { return state.markers[id]; })
        .filter(function (m) { return m.time >= first; })
        .sort(function (a, b) { return a.time - b.time || (a.id < b.id ? -1 : 1); });
      candles.setMarkers(all);
      state.markersAt = {};
      all.forEach(function (m) { (state.markersAt[m.time] = state.markersAt[m.time] || []).push(m.id); });
    }
    setMarkers(data.markers, data.tips);

    var tip = document.getElementById("chart-tip");
    var NEAR_PX = 6; // a finger or a mouse within this of a marker's bar shows it (dense bars on a phone)
    function markersNear(param) {
      if (param.hoveredObjectId && state.tips[param.hoveredObjectId]) return [param.hoveredObjectId];
      if (param.time === undefined || !param.point) return [];
      if (state.markersAt[param.time]) return state.markersAt[param.time];
      var scale = price.timeScale(), bars = state.points.candles;
      var lo = Math.max(0, Math.floor(scale.coordinateToLogical(param.point.x - NEAR_PX)));
      var hi = Math.min(bars.length - 1, Math.ceil(scale.coordinateToLogical(param.point.x + NEAR_PX)));
      var best = null, bestDistance = Infinity;
      for (var i = lo; i <= hi; i++) {
        var at = state.markersAt[bars[i].time];
        var distance = at ? Math.abs(scale.timeToCoordinate(bars[i].time) - param.point.x) : Infinity;
        if (distance <= NEAR_PX && distance < bestDistance) { best = at; bestDistance = distance; }
      }
      return best || [];
    }
    function showTip(param) {
      var ids = markersNear(param);
      if (!ids.length || !param.point) { tip.hidden = true; return; }
      tip.replaceChildren();
      ids.slice(0, 4).forEach(function (id) {
        var t = state.tips[id];
        if (!t) return;
        var item = el("div", "tip-item");
        item.appendChild(el("div", "tip-title " + t.side, t.title + " · " + t.side + " · " + t.strategy));
        item.appendChild(el("div", "tip-price num", t.price + (t.score ? " · score " + t.score : "") + " · " + t.time));
        if (t.reason) item.appendChild(el("div", "tip-reason", t.reason));
        tip.appendChild(item);
      });
      if (ids.length > 4) tip.appendChild(el("div", "tip-reason", "+" + (ids.length - 4) + " more on this bar"));
      tip.hidden = false;
      var width = root.clientWidth, w = tip.offsetWidth, h = tip.offsetHeight;
      var x = param.point.x + 14, y = param.point.y + 14;
      if (x + w > width) x = Math.max(0, param.point.x - w - 14);
      if (y + h > root.clientHeight) y = Math.max(0, param.point.y - h - 14);
      tip.style.left = x + "px"; // CSSOM, not an inline style attribute: allowed by the policy
      tip.style.top = y + "px";
    }

    // --- OHLC legend ---
    var legend = document.getElementById("chart-legend");
    var labels = data.labels || {};
    function pair(key, value, cls) {
      var item = el("span", "pair");
      item.appendChild(el("span", "k", key));
      item.appendChild(document.createTextNode(" "));
      item.appendChild(el("b", cls || "", value));
      return item;
    }
    function renderLegend(time) {
      var bar = (time !== undefined && state.byTime.candles[time]) || lastValued("candles");
      if (!bar) return;
      var vol = state.byTime.volume[bar.time];
      var dir = bar.close >= bar.open ? "up" : "down";
      legend.replaceChildren(el("span", "t", fmtTime(bar.time)));
      [["O", bar.open], ["H", bar.high], ["L", bar.low], ["C", bar.close]].forEach(function (ohlc) {
        legend.appendChild(pair(ohlc[0], fmtPrice(ohlc[1], tick), dir));
      });
      legend.appendChild(pair("V", vol ? fmtQty(vol.value, data.lot) : "\u2014"));
      PRICE_STUDIES.concat(OSC_STUDIES).forEach(function (key) {
        var pt = state.byTime[key][bar.time];
        var isOsc = OSC_STUDIES.indexOf(key) >= 0;
        var text = pt && pt.value !== undefined ? (isOsc ? pt.value.toFixed(1) : fmtPrice(pt.value, tick)) : "\u2014";
        legend.appendChild(pair((labels[key] || key).replace(/ \(.*\)$/, ""), text));
      });
      legend.dataset.time = String(bar.time);
    }

    // --- panes in step: visible range and crosshair ---
    var syncing = false;
    charts.forEach(function (chart) {
      chart.timeScale().subscribeVisibleLogicalRangeChange(function (range) {
        if (syncing || !range) return;
        syncing = true;
        charts.forEach(function (other) { if (other !== chart) other.timeScale().setVisibleLogicalRange(range); });
        syncing = false;
      });
    });
    var anchor = [[price, candles, "candles"], [volume, series.volume, "volume"], [osc, series.rsi, "rsi"]];
    anchor.forEach(function (source) {
      source[0].subscribeCrosshairMove(function (param) {
        if (syncing) return;
        syncing = true;
        anchor.forEach(function (target) {
          if (target[0] === source[0]) return;
          var pt = param.time !== undefined ? state.byTime[target[2]][param.time] : null;
          var value = pt ? (pt.close !== undefined ? pt.close : pt.value) : undefined;
          if (value === undefined) target[0].clearCrosshairPosition();
          else target[0].setCrosshairPosition(value, param.time, target[1]);
        });
        syncing = false;
        renderLegend(param.time);
        if (source[0] === price) showTip(param); else tip.hidden = true;
      });
    });

    // --- open positions: entry / stop / target / liquidation lines ---
    var lineList = document.getElementById("chart-lines");
    function setLines(lines) {
      if (!lines) return;
      var seen = {};
      lines.forEach(function (l) {
        seen[l.id] = true;
        var opts = { price: l.price, color: l.color, lineWidth: 1, lineStyle: l.style, axisLabelVisible: true, title: l.title };
        if (state.lines[l.id]) state.lines[l.id].applyOptions(opts);
        else state.lines[l.id] = candles.createPriceLine(opts);
      });
      Object.keys(state.lines).forEach(function (id) {
        if (!seen[id]) { candles.removePriceLine(state.lines[id]); delete state.lines[id]; }
      });
      if (lineList) {
        lineList.replaceChildren();
        lines.forEach(function (l) {
          var item = el("li", "line-" + l.kind, l.title + " ");
          item.appendChild(el("b", "num", l.text));
          lineList.appendChild(item);
        });
      }
    }
    setLines(data.lines);

    // --- funding countdown (market time: the newest candle's close, then the wall clock) ---
    var funding = document.getElementById("funding-countdown");
    var fundingAt = { next: 0, now: 0, wall: 0 };
    function setFunding(f) {
      if (!funding || !f) return;
      fundingAt = { next: f.next_ms, now: f.now_ms, wall: Date.now() };
      funding.title = f.note + " (market time)";
      funding.dataset.source = f.source;
      funding.dataset.nextMs = String(f.next_ms);
    }
    function tickFunding() {
      if (!funding || !fundingAt.next) return;
      var left = fundingAt.next - (fundingAt.now + Date.now() - fundingAt.wall);
      funding.textContent = "Funding in " + fmtCountdown(left) + (funding.dataset.source === "schedule" ? " (schedule)" : "");
    }
    setFunding(data.funding);
    tickFunding();
    if (funding) window.setInterval(tickFunding, 1000);

    // --- live: the pushed candle now, then the server's tail ---
    var step = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600 }[root.dataset.timeframe] || 60;
    function pushCandle(c) {
      var t = Math.floor(c[0] / 1000 / step) * step;
      var last = state.points.candles[state.points.candles.length - 1];
      var bar;
      if (last && last.time === t) { // a closed 1m candle extends the bucket of a higher timeframe
        bar = { time: t, open: last.open, high: Math.max(last.high, c[2]), low: Math.min(last.low, c[3]), close: c[4] };
        var v = state.byTime.volume[t];
        upsert("volume", { time: t, value: (v ? v.value : 0) + c[5], color: c[4] >= last.open ? UP : DOWN });
      } else if (!last || t > last.time) {
        bar = { time: t, open: c[1], high: c[2], low: c[3], close: c[4] };
        upsert("volume", { time: t, value: c[5], color: c[4] >= c[1] ? UP : DOWN });
      } else {
        return;
      }
      upsert("candles", bar);
    }
    function applyTail(tail) {
      if (!tail || !tail.candles) return;
      KEYS.forEach(function (key) { (tail[key] || []).forEach(function (pt) { upsert(key, pt); }); });
      if (tail.markers) setMarkers(tail.markers, tail.tips);
      setLines(tail.lines);
      setFunding(tail.funding);
      renderLegend();
    }
    var inflight = false, again = false;
    function refetch() {
      if (!root.dataset.endpoint) return;
      if (inflight) { again = true; return; }
      inflight = true;
      var first = state.points.candles[0], last = state.points.candles[state.points.candles.length - 1];
      var url = root.dataset.endpoint + "&start=" + first.time + "&since=" + last.time;
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (tail) { state.fetches += 1; applyTail(tail); })
        .catch(function (error) { // the next candle retries (an outage shows the disconnected banner)
          if (window.console) console.warn("chart tail not applied:", error);
        })
        .then(function () {
          inflight = false;
          stamp();
          if (again) { again = false; refetch(); }
        });
    }
    if (root.dataset.candleId) {
      var applied = "";
      document.body.addEventListener("htmx:oobAfterSwap", function (evt) {
        var swapped = evt.detail && evt.detail.target;
        if (!swapped || swapped.id !== root.dataset.candleId) return;
        // htmx reports one swap twice (once with the element it replaced): read the live one.
        var target = document.getElementById(root.dataset.candleId);
        var text = target && (target.dataset.candles || target.dataset.candle);
        if (!text || text === applied) return;
        applied = text;
        // Every candle of the commit, oldest first (a catch-up commits several at once).
        text.split(";").forEach(function (text) {
          pushCandle(text.split(",").map(Number));
        });
        renderLegend();
        stamp();
        refetch();
      });
    }

    price.timeScale().fitContent();
    renderLegend();
    stamp();
    return { charts: charts, series: series, state: state, refetch: refetch };
  }

  window.ScalpCharts = { candleChart: candleChart, lineChart: lineChart, readJson: readJson, fmtPrice: fmtPrice };

  function init() {
    if (typeof LightweightCharts === "undefined") return;
    var stack = document.getElementById("chart-stack");
    var data = readJson("chart-data");
    if (stack && data && data.candles && data.candles.length) window.ScalpCharts.desk = deskChart(stack, data);
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
