/* Positions page: re-mark open positions on each live market.price tick.

   The tick arrives as the Radar's price cell, swapped out-of-band into a hidden receiver
   (#price-receivers > b[data-symbol], raw price in data-price, market time in data-time-ms);
   the consumer renders no position HTML for it because it never queries the database. Each
   row carries what the arithmetic needs (data-side, -qty, -lev, -entry, -entry-ms,
   -entry-fee, -funding, -stop, -target, -liq, and the instrument's tick in data-tick); the
   exit-fee rate is on the receivers' container. Same formulas as
   trading.selectors.mark_figures, all money in USDT:
     gross   = sign × qty × (mark − entry)
     net     = gross − entry fee − qty × mark × taker rate − funding paid
     margin  = qty × entry / leverage (initial margin);  ROE % = net / margin × 100
     to a level (stop, target, liquidation) % = (level − mark) / mark × 100
     in trade = tick market time − entry time
   Same text as trading.core.numbers (fmt_price, fmt_money, fmt_pct, fmt_duration): decimals
   of the tick, thousands comma, U+2212 minus, half-even rounding of the shortest decimal
   form of the number (Python's repr). A test renders one row both ways and compares. */
(function () {
  "use strict";

  var MINUS = "\u2212", DASH = "\u2014";

  // --- trading.core.numbers, ported --------------------------------------------------------

  // The shortest decimal digits of |x| (as Python's repr): {digits: "123456", point: 3}
  // means 123.456.
  function decimalOf(x) {
    var text = String(Math.abs(x)), exp = 0, at = text.indexOf("e");
    if (at >= 0) { exp = parseInt(text.slice(at + 1), 10); text = text.slice(0, at); }
    var dot = text.indexOf("."), digits = text.replace(".", "");
    var point = (dot >= 0 ? dot : text.length) + exp;
    return { digits: digits, point: point };
  }

  // |x| with `places` decimals, half-even on the decimal value (Decimal.quantize): a string.
  function fixedAbs(x, places) {
    var d = decimalOf(x), digits = d.digits, point = d.point;
    if (point < 0) { digits = "0".repeat(-point) + digits; point = 0; }
    var keep = point + places;
    while (digits.length < keep + 1) digits += "0";
    var head = digits.slice(0, keep), rest = digits.slice(keep);
    var first = rest.charCodeAt(0) - 48, tail = /[1-9]/.test(rest.slice(1));
    var last = head.length ? head.charCodeAt(head.length - 1) - 48 : 0;
    var up = first > 5 || (first === 5 && (tail || last % 2 === 1));
    var n = (head || "0").split("").map(Number);
    if (up) {
      var i = n.length - 1;
      while (i >= 0 && n[i] === 9) { n[i] = 0; i -= 1; }
      if (i < 0) n.unshift(1); else n[i] += 1;
    }
    var all = n.join("");
    while (all.length < places + 1) all = "0" + all;
    var intPart = all.slice(0, all.length - places).replace(/^0+(?=\d)/, "");
    return { intPart: intPart, frac: places ? all.slice(all.length - places) : "" };
  }

  function group(intPart) { return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }

  function fixed(x, places, signed) {
    var r = fixedAbs(x, places);
    var zero = /^0*$/.test(r.intPart + r.frac);
    var text = group(r.intPart) + (places ? "." + r.frac : "");
    if (x < 0 && !zero) return MINUS + text;
    return signed && x > 0 && !zero ? "+" + text : text;
  }

  function finite(x) { return typeof x === "number" && isFinite(x); }

  function stepPlaces(step) {
    if (!finite(step) || step <= 0) return null;
    var d = decimalOf(step), digits = d.digits.replace(/0+$/, "");
    return Math.max(0, digits.length - d.point);
  }

  // Python's round(): half-even on the binary value.
  function roundHalfEven(q) {
    var r = Math.round(q);
    if (Math.abs(q % 1) === 0.5) r = 2 * Math.round(q / 2);
    return r;
  }

  function cut(text) { return text.indexOf(".") >= 0 ? text.replace(/0+$/, "").replace(/\.$/, "") : text; }

  function fmtPrice(x, tick) {
    if (!finite(x)) return DASH;
    var places = stepPlaces(tick);
    if (places === null) return cut(fixed(x, Math.abs(x) >= 1 ? 4 : 8, false));
    return fixed(roundHalfEven(x / tick) * tick, places, false);
  }
  function fmtMoneySigned(x) { return finite(x) ? fixed(x, 2, true) : DASH; }
  function fmtPct(x) { return finite(x) ? fixed(x, 2, true) + " %" : DASH; }
  function fmtDuration(seconds) {
    if (!finite(seconds) || seconds < 0) return DASH;
    var total = Math.floor(seconds), days = Math.floor(total / 86400), rest = total % 86400;
    var hours = Math.floor(rest / 3600), minutes = Math.floor((rest % 3600) / 60), secs = rest % 60;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    if (days) return days + "d " + two(hours) + "h";
    if (hours) return hours + "h " + two(minutes) + "m";
    if (minutes) return minutes + "m " + two(secs) + "s";
    return secs + "s";
  }

  // --- the row's figures (trading.selectors.mark_figures) ----------------------------------

  function num(value) { var x = parseFloat(value); return isFinite(x) ? x : 0; }

  function figures(d, mark, takerRate) {
    var sign = d.side === "long" ? 1 : -1;
    var qty = num(d.qty), entry = num(d.entry), lev = num(d.lev);
    var gross = sign * qty * (mark - entry);
    var net = gross - num(d.entryFee) - qty * mark * takerRate - num(d.funding);
    var margin = lev > 0 ? qty * entry / lev : null;
    function distance(level) { return level > 0 && mark > 0 ? (level - mark) / mark * 100 : null; }
    return {
      gross: gross,
      net: net,
      roe: margin ? net / margin * 100 : null,
      stop: distance(num(d.stop)),
      target: distance(num(d.target)),
      liq: distance(num(d.liq)),
    };
  }

  function setSigned(cell, value, text) {
    if (!cell) return;
    cell.textContent = text;
    cell.classList.toggle("up", finite(value) && value > 0);
    cell.classList.toggle("down", finite(value) && value < 0);
  }

  function setLevel(cell, pct, level, tick) {
    if (!cell) return;
    cell.textContent = level > 0 ? fmtPct(pct) + " · " + fmtPrice(level, tick) : DASH;
  }

  function remarkRow(row, mark, timeMs, takerRate) {
    var d = row.dataset, tick = d.tick ? parseFloat(d.tick) : null;
    if (!isFinite(parseFloat(d.qty)) || !isFinite(parseFloat(d.entry))) return;
    var f = figures(d, mark, takerRate);
    var cell = function (name) { return row.querySelector('[data-cell="' + name + '"]'); };
    var markCell = cell("mark");
    if (markCell) markCell.textContent = fmtPrice(mark, tick);
    setSigned(cell("gross"), f.gross, fmtMoneySigned(f.gross));
    setSigned(cell("net"), f.net, fmtMoneySigned(f.net));
    setSigned(cell("roe"), f.roe, fmtPct(f.roe));
    setLevel(cell("stop"), f.stop, num(d.stop), tick);
    setLevel(cell("target"), f.target, num(d.target), tick);
    setLevel(cell("liq"), f.liq, num(d.liq), tick);
    var age = cell("age"), entryMs = parseFloat(d.entryMs);
    if (age && isFinite(timeMs) && isFinite(entryMs)) {
      age.textContent = fmtDuration(Math.max(timeMs - entryMs, 0) / 1000);
    }
  }

  function remark(symbol, mark, timeMs, takerRate) {
    document.querySelectorAll(".tr[data-side]").forEach(function (row) {
      if (row.dataset.symbol === symbol) remarkRow(row, mark, timeMs, takerRate);
    });
  }

  function init() {
    var receivers = document.getElementById("price-receivers");
    if (!receivers) return;
    var takerRate = parseFloat(receivers.dataset.takerRate) || 0;
    // A MutationObserver runs after htmx has settled the swapped element's attributes.
    new MutationObserver(function () {
      receivers.querySelectorAll("[data-symbol]").forEach(function (el) {
        var mark = parseFloat(el.dataset.price);  // raw value: the text is formatted (104,131.4)
        var timeMs = parseFloat(el.dataset.timeMs);
        if (isFinite(mark) && mark > 0) remark(el.dataset.symbol, mark, timeMs, takerRate);
      });
    }).observe(receivers, { childList: true, subtree: true, characterData: true });
  }

  // For the page's browser test: the same formatting the live rows get.
  window.scalpPositions = { fmtPrice: fmtPrice, fmtMoneySigned: fmtMoneySigned, fmtPct: fmtPct,
    fmtDuration: fmtDuration, remarkRow: remarkRow };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
