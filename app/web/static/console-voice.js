// Nightdesk console: answering in the browser. The page places the call with Twilio's Voice
// JavaScript SDK (served by the app from npm's package, or the sandbox's stand-in), into the
// caller's conference through the TwiML App. While the call is up the page must not reload (that
// would hang up), so live changes and the page's forms fetch the page and redraw it around the
// browser phone instead.
(function () {
  "use strict";
  var box = document.getElementById("browser-phone");
  var root = document.querySelector("[data-live]");
  if (!box || !root) return;
  var log = box.querySelector(".voice-log"), hangUp = box.querySelector("[data-hang-up]");
  var state = window.NightdeskCall = { active: false, refresh: refresh };

  function say(text) {
    var line = document.createElement("li");
    line.textContent = text;
    log.appendChild(line);
  }

  function swap(html, url) {
    var fresh = new DOMParser().parseFromString(html, "text/html").querySelector("[data-live]");
    if (!fresh) { window.location.assign(url); return; }
    var place = fresh.querySelector("#browser-phone");
    if (place) place.replaceWith(box);
    else fresh.insertBefore(box, fresh.children[1] || null);
    root.setAttribute("data-entry-status", fresh.getAttribute("data-entry-status") || "");
    root.replaceChildren.apply(root, Array.prototype.slice.call(fresh.childNodes));
  }

  function refresh() {
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.text(); })
      .then(function (html) { swap(html, window.location.href); });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!state.active || !root.contains(form) || form.method.toLowerCase() !== "post") return;
    event.preventDefault();
    fetch(form.action, {
      method: "POST", credentials: "same-origin", body: new URLSearchParams(new FormData(form)),
    }).then(function (response) {
      if (response.url.indexOf("/console/calls/") === -1) {
        window.location.assign(response.url);
        return null;
      }
      return response.text().then(function (html) { swap(html, response.url); });
    });
  });

  function giveBack(reason) {
    say(reason + " The caller goes back in line.");
    var form = document.createElement("form");
    form.method = "post";
    form.action = "/console/calls/" + box.getAttribute("data-entry") + "/give-back";
    [["csrf_token", box.getAttribute("data-csrf")], ["offer", box.getAttribute("data-offer")]]
      .forEach(function (field) {
        var input = document.createElement("input");
        input.type = "hidden"; input.name = field[0]; input.value = field[1];
        form.appendChild(input);
      });
    document.body.appendChild(form);
    form.submit();
  }

  if (box.getAttribute("data-connect") !== "yes") {
    say("This call isn't waiting for your browser any more.");
    return;
  }
  if (!window.Twilio || !window.Twilio.Device) {
    giveBack("The browser phone could not load.");
    return;
  }
  state.active = true;  // from now on, the caller may be moved in at any moment: no reloads
  fetch("/console/voice-token", { credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) throw new Error("no access token");
      return response.json();
    })
    .then(function (grant) {
      var device = new window.Twilio.Device(grant.token, { closeProtection: true });
      say("Calling into the caller's conference…");
      return device.connect({
        params: { entry: box.getAttribute("data-entry"), offer: box.getAttribute("data-offer") },
      });
    })
    .then(function (call) {
      hangUp.hidden = false;
      hangUp.addEventListener("click", function () { call.disconnect(); });
      call.on("accept", function () { say("Connected: you are in the caller's conference."); });
      call.on("text", function (text) { say(text); });
      call.on("error", function (error) { say("The call had a problem: " + (error.message || error)); });
      call.on("disconnect", function () {
        state.active = false;
        hangUp.hidden = true;
        say("The call has ended.");
        refresh();
      });
    })
    .catch(function (error) {
      state.active = false;
      giveBack("The browser couldn't place the call (" + error.message + ").");
    });
})();
