// Live resync: the server closes a socket that missed a frame (4409), fell behind (4408) or
// whose login ended (4401), after a frame marked data-live-resync. Reloading the page renders
// every partial from the stored state again and opens a fresh socket (or lands on the login
// page). The htmx ws extension itself reconnects only after 1006/1011/1012/1013.
(function () {
  "use strict";
  var RELOAD_CODES = [4401, 4408, 4409];
  var reloading = false;

  function reload() {
    if (reloading) return;
    reloading = true;
    window.location.reload();
  }

  document.addEventListener("htmx:wsBeforeMessage", function (event) {
    var message = event.detail && event.detail.message;
    if (typeof message === "string" && message.indexOf("data-live-resync=") !== -1) {
      event.preventDefault();
      reload();
    }
  });

  document.addEventListener("htmx:wsClose", function (event) {
    var close = event.detail && event.detail.event;
    if (close && RELOAD_CODES.indexOf(close.code) !== -1) reload();
  });
})();
