// Nightdesk console: keeps the page current with server-sent events (EventSource is built into
// browsers; nothing is loaded from another host). Each event carries a part of the page, drawn
// by the server with the same template the page was, and replaces that part.
(function () {
  "use strict";
  var root = document.querySelector("[data-live]");
  if (!root || !window.EventSource) return;

  function format(seconds) {
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  var source = new EventSource(root.getAttribute("data-live"));
  ["me", "queue", "team", "stats"].forEach(function (id) {
    source.addEventListener(id, function (event) {
      var part = document.getElementById(id);
      if (!part || part.innerHTML === event.data) return;
      // Keep keyboard focus where it was when the part is redrawn around it.
      var focused = document.activeElement, label = focused && focused.getAttribute("aria-label");
      part.innerHTML = event.data;
      if (label && part.contains(focused) === false) {
        var again = part.querySelector('[aria-label="' + label.replace(/"/g, '\\"') + '"]');
        if (again) again.focus();
      }
    });
  });
  // The screen pop reloads when its call moves on (answered, back in line, gone).
  source.addEventListener("entry", function (event) {
    var shown = root.getAttribute("data-entry-status");
    if (!shown || event.data === shown) return;
    // A call in the browser would hang up on a reload: its page redraws itself instead.
    if (window.NightdeskCall && window.NightdeskCall.active) window.NightdeskCall.refresh();
    else window.location.reload();
  });
  // Waiting times and presence durations tick between updates.
  window.setInterval(function () {
    document.querySelectorAll("[data-seconds]").forEach(function (el) {
      var seconds = Number(el.getAttribute("data-seconds")) + 1;
      el.setAttribute("data-seconds", String(seconds));
      el.textContent = format(seconds);
    });
  }, 1000);
})();
