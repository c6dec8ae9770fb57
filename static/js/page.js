// Behaviour every page shares, kept out of the HTML so the Content-Security-Policy can refuse
// inline scripts (docs/security.md).
(function () {
  "use strict";

  // The live connection: the dot in the top bar, and while the socket is down a banner and
  // greyed live figures (body.ws-down, static/css/app.css), so prices frozen by an outage
  // never read as live. The htmx ws extension reconnects by itself; wsOpen lifts the state.
  var downSince = null;

  function clock(date) {
    return date.toISOString().slice(11, 19) + " UTC";
  }

  function setLive(on) {
    var dot = document.getElementById("ws-status");
    if (dot) {
      dot.className = "ws-status " + (on ? "on" : "off");
      dot.title = on ? "live connection" : "disconnected: reconnecting";
    }
    var banner = document.getElementById("ws-down-banner");
    if (on) {
      downSince = null;
      document.body.classList.remove("ws-down");
      if (banner) banner.hidden = true;
      return;
    }
    if (downSince === null) downSince = new Date();
    document.body.classList.add("ws-down");
    if (!banner) {
      banner = document.createElement("div");
      banner.id = "ws-down-banner";
      banner.className = "ws-down-banner";
      banner.setAttribute("role", "status");
      var header = document.querySelector("header.topbar");
      if (header) header.insertAdjacentElement("afterend", banner);
      else document.body.insertBefore(banner, document.body.firstChild);
    }
    banner.textContent = "Disconnected from the server since " + clock(downSince) +
      ": the figures below are frozen, not live. Reconnecting…";
    banner.hidden = false;
  }
  document.addEventListener("htmx:wsOpen", function () { setLive(true); });
  document.addEventListener("htmx:wsClose", function () { setLive(false); });
  document.addEventListener("htmx:wsError", function () { setLive(false); });

  // A form pushed over the websocket is rendered once for every client, without a request, so
  // its CSRF field is empty: fill it from this page's token before it is sent.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || (form.method || "").toLowerCase() !== "post") return;
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    if (field && field.value) return;
    var headers = {};
    try {
      headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    } catch (error) {
      return;
    }
    if (!headers["X-CSRFToken"]) return;
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden";
      field.name = "csrfmiddlewaretoken";
      form.appendChild(field);
    }
    field.value = headers["X-CSRFToken"];
  }, true);
})();
