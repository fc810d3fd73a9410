// Progressive enhancement for the Assistiv dashboard. Every page works
// without it; with it: times in the viewer's time zone (UTC stays in the
// title), confirmations before destructive actions, select-on-focus for
// shown-once secrets. No inline script anywhere (the CSP forbids it).
(function () {
  "use strict";
  function localTimes(root) {
    var fmt;
    try {
      fmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
    } catch (e) {
      return;
    }
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d.getTime())) {
        t.textContent = fmt.format(d);
      }
    });
  }
  function confirms(root) {
    root.addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-confirm]");
      if (b && !window.confirm(b.getAttribute("data-confirm"))) {
        ev.preventDefault();
      }
    });
  }
  function secrets(root) {
    root.querySelectorAll("input.secret").forEach(function (i) {
      i.addEventListener("focus", function () { i.select(); });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    confirms(document);
    secrets(document);
  });
})();
