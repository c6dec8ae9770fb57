// Behaviour every page shares, kept out of the HTML so the Content-Security-Policy can refuse
// inline scripts (docs/security.md).
(function () {
  "use strict";

  // The live-connection dot in the top bar.
  function wsStatus(className) {
    return function () {
      var dot = document.getElementById("ws-status");
      if (dot) dot.className = "ws-status " + className;
    };
  }
  document.addEventListener("htmx:wsOpen", wsStatus("on"));
  document.addEventListener("htmx:wsClose", wsStatus("off"));

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
