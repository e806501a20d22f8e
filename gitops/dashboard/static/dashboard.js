// finetune-gitops dashboard: while something moves (the server says how often in data-refresh-s), the page fetches
// itself again and swaps its <main>, keeping the keyboard focus where it was. A person can pause it (WCAG 2.2.2).
// No third-party code; nothing here writes anything anywhere.
(function () {
  "use strict";
  var button = document.getElementById("refresh-toggle");
  var status = document.getElementById("refresh-status");
  var paused = false;
  var timer = null;

  function period() {
    var main = document.querySelector("main");
    return Number((main && main.getAttribute("data-refresh-s")) || "0");
  }

  function say(text) {
    if (status) { status.textContent = text; }
  }

  function focusKey(el) {
    if (!el || el === document.body) { return null; }
    if (el.id) { return "#" + el.id; }
    if (el.getAttribute && el.getAttribute("href")) { return "a[href=\"" + el.getAttribute("href").replace(/"/g, "\\\"") + "\"]"; }
    return null;
  }

  function schedule() {
    clearTimeout(timer);
    var s = period();
    if (!s) {
      if (button) { button.hidden = true; }
      return;
    }
    if (button) { button.hidden = false; }
    if (!paused) { timer = setTimeout(refresh, s * 1000); }
  }

  function refresh() {
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.text();
      })
      .then(function (text) {
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.querySelector("main");
        var main = document.querySelector("main");
        if (fresh && main) {
          var key = focusKey(document.activeElement);
          main.replaceWith(document.importNode(fresh, true));
          if (key) {
            var again = document.querySelector(key);
            if (again) { again.focus({ preventScroll: true }); }
          }
        }
        say(period() ? "updated " + new Date().toLocaleTimeString() : "up to date: nothing moves");
        schedule();
      })
      .catch(function () {
        say("could not refresh; trying again");
        schedule();
      });
  }

  if (button) {
    button.addEventListener("click", function () {
      paused = !paused;
      button.setAttribute("aria-pressed", paused ? "true" : "false");
      button.textContent = paused ? "Resume auto-refresh" : "Pause auto-refresh";
      say(paused ? "auto-refresh paused" : "auto-refresh on");
      schedule();
    });
  }
  schedule();
})();
