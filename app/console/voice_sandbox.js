// Nightdesk's sandbox stand-in for Twilio's Voice JavaScript SDK, served as /console/voice-sdk.js
// in development and `nightdesk demo`, where there is no Twilio (the real SDK talks only to
// Twilio). It has the SDK's shape that the console uses: `new Twilio.Device(token)`,
// `device.connect({params})` resolving to a call with `on(event, fn)` and `disconnect()`.
// Connecting asks the app to have the fake Twilio place the PA's leg into
// /twilio/console/browser, exactly where Twilio sends a TwiML App's call; there is no audio, so
// the call reports in text what the PA would hear.
(function () {
  "use strict";
  if (window.Twilio && window.Twilio.Device) return;

  function post(url, fields) {
    return fetch(url, {
      method: "POST", credentials: "same-origin", body: new URLSearchParams(fields),
    });
  }

  function Call(sid, entry, csrf) {
    this.sid = sid; this.entry = entry; this.csrf = csrf; this.handlers = {};
  }
  Call.prototype.on = function (name, handler) {
    (this.handlers[name] = this.handlers[name] || []).push(handler);
    return this;
  };
  Call.prototype.emit = function (name, value) {
    (this.handlers[name] || []).forEach(function (handler) { handler(value); });
  };
  Call.prototype.disconnect = function () {
    var call = this;
    post("/console/calls/" + call.entry + "/hang-up", { csrf_token: call.csrf })
      .then(function () { call.emit("disconnect", call); });
  };

  function Device(token) { this.token = token; }
  Device.prototype.connect = function (options) {
    var params = options.params, box = document.getElementById("browser-phone");
    var csrf = box ? box.getAttribute("data-csrf") : "";
    return post("/console/calls/" + params.entry + "/sandbox-connect", {
      csrf_token: csrf, offer: params.offer,
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.problem || "The sandbox could not place the call.");
        var call = new Call(body.call_sid, params.entry, csrf);
        window.setTimeout(function () {
          call.emit("accept", call);
          call.emit("text", "Sandbox: no audio. You and the caller are in the same conference, " +
            "as a browser call would put you; what they said in the flow is on this page.");
        }, 0);
        return call;
      });
    });
  };

  window.Twilio = { Device: Device, sandbox: true };
})();
