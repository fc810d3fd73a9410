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

// Playground: stream the answer as it is generated (the form still works
// without script: it then posts and shows the whole answer).
(function () {
  "use strict";
  function setError(form, field, msg) {
    form.querySelectorAll(".field-error.js").forEach(function (e) { e.remove(); });
    var anchor = form.querySelector("[name=" + (field || "prompt") + "]") || form.querySelector("button");
    var span = document.createElement("span");
    span.className = "field-error js";
    span.setAttribute("role", "alert");
    span.textContent = msg;
    anchor.insertAdjacentElement("afterend", span);
  }
  function stream(form, ev) {
    if (!window.fetch || !window.ReadableStream || !window.TextDecoder) {
      return;
    }
    ev.preventDefault();
    var out = document.getElementById("pg-result");
    var button = form.querySelector("button[type=submit]");
    var data = new URLSearchParams(new FormData(form));
    out.textContent = "";
    var h = document.createElement("h2");
    h.textContent = "Answer";
    var pre = document.createElement("pre");
    pre.className = "answer";
    pre.id = "pg-answer";
    var cost = document.createElement("p");
    cost.id = "pg-cost-live";
    out.append(h, pre, cost);
    button.disabled = true;
    fetch(form.action + "/stream", {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRF-Token": data.get("csrf") }
    }).then(function (res) {
      if (!res.ok) {
        return res.json().then(function (j) {
          out.textContent = "";
          setError(form, j.error && j.error.field, (j.error && j.error.message) || ("Error " + res.status));
        });
      }
      var rid = res.headers.get("X-Assistiv-Request-Id");
      var reader = res.body.getReader();
      var dec = new TextDecoder();
      var pending = "";
      function pump() {
        return reader.read().then(function (r) {
          if (r.done) {
            return finish(rid);
          }
          pending += dec.decode(r.value, { stream: true });
          var events = pending.split("\n\n");
          pending = events.pop();
          events.forEach(function (e) {
            if (e.indexOf("data: ") !== 0) { return; }
            var payload = e.slice(6);
            if (payload === "[DONE]") { return; }
            try {
              var chunk = JSON.parse(payload);
              if (chunk.error) { cost.textContent = "Error: " + chunk.error.message; return; }
              (chunk.choices || []).forEach(function (c) {
                if (c.delta && c.delta.content) { pre.textContent += c.delta.content; }
              });
            } catch (err) { /* a partial event: wait for the rest */ }
          });
          return pump();
        });
      }
      return pump();
    }).catch(function (err) {
      setError(form, "prompt", "The call failed: " + err.message);
    }).finally(function () {
      button.disabled = false;
    });
    function finish(rid) {
      if (!rid) { return; }
      var base = form.action.replace(/\/playground$/, "/playground/calls/");
      return fetch(base + encodeURIComponent(rid), { credentials: "same-origin" }).then(function (r) {
        return r.ok ? r.json() : null;
      }).then(function (c) {
        if (!c) { return; }
        cost.id = "pg-cost";
        cost.textContent = "Cost ";
        var strong = document.createElement("strong");
        strong.textContent = c.cost_usd;
        var a = document.createElement("a");
        a.href = c.log_url;
        a.textContent = "in the logs";
        cost.append(strong, " · " + c.prompt_tokens + " + " + c.completion_tokens + " tokens · streamed, first token after " + (c.ttft_ms || 0) + " ms · ", a);
      });
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("playground");
    if (form) {
      form.addEventListener("submit", function (ev) { stream(form, ev); });
    }
  });
})();
