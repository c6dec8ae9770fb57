/* Positions page: re-mark open positions on each live market.price tick.

   The tick arrives as the Radar's price cell, swapped out-of-band into a hidden receiver
   (#price-receivers > b[data-symbol]); the consumer renders no position HTML for it because it
   never queries the database. Each row carries what the arithmetic needs (data-side, -qty,
   -entry, -entry-fee, -funding, -liq); the exit-fee rate is on the receivers' container.
   Same formulas as trading.selectors._open_pnl, all in USDT:
     gross   = sign × qty × (mark − entry)
     net     = gross − entry fee − qty × mark × taker rate − funding paid
     liq distance % = sign × (mark − liquidation) / mark × 100
   A reload (or the "refresh marks" link) re-renders the same numbers server-side. */
(function () {
  "use strict";

  function price(x) { return Number.isInteger(x) ? String(x) : x.toFixed(4); }

  function setPnl(cell, value) {
    if (!cell) return;
    cell.textContent = value.toFixed(2);
    cell.classList.toggle("up", value > 0);
    cell.classList.toggle("down", value < 0);
  }

  function remark(symbol, mark, takerRate) {
    document.querySelectorAll(".tr[data-side]").forEach(function (row) {
      var d = row.dataset;
      if (d.symbol !== symbol) return;
      var sign = d.side === "long" ? 1 : -1;
      var qty = parseFloat(d.qty), entry = parseFloat(d.entry);
      if (!isFinite(qty) || !isFinite(entry)) return;
      var gross = sign * qty * (mark - entry);
      var net = gross - (parseFloat(d.entryFee) || 0) - qty * mark * takerRate - (parseFloat(d.funding) || 0);
      var markCell = row.querySelector('[data-cell="mark"]');
      if (markCell) markCell.textContent = price(mark);
      setPnl(row.querySelector('[data-cell="gross"]'), gross);
      setPnl(row.querySelector('[data-cell="net"]'), net);
      var liq = parseFloat(d.liq), liqCell = row.querySelector('[data-cell="liq-distance"]');
      if (liq > 0 && liqCell) liqCell.textContent = (sign * (mark - liq) / mark * 100).toFixed(2) + " %";
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
        if (isFinite(mark) && mark > 0) remark(el.dataset.symbol, mark, takerRate);
      });
    }).observe(receivers, { childList: true, subtree: true, characterData: true });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
