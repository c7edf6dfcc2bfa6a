// Passkeys for Portcullis pages: sign-in (button and autofill), second factor, registration
// on the account page and invite page. Elements opt in with data-passkey="…" and stay hidden
// (the password path keeps working) when the browser has no WebAuthn support.
"use strict";
(function () {
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var supported = !!(window.PublicKeyCredential && navigator.credentials);

  // base64url <-> ArrayBuffer (webauthn-rs sends binary fields as base64url strings).
  function fromB64url(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function toB64url(buf) {
    var bytes = new Uint8Array(buf), bin = "";
    for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function creationOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    pk.user.id = fromB64url(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    return { publicKey: pk };
  }
  function requestOptions(o) {
    var pk = o.publicKey;
    pk.challenge = fromB64url(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = fromB64url(c.id); });
    var opts = { publicKey: pk };
    if (o.mediation) opts.mediation = o.mediation;
    return opts;
  }
  function credentialJSON(cred) {
    var r = cred.response, response = { clientDataJSON: toB64url(r.clientDataJSON) };
    if (r.attestationObject) response.attestationObject = toB64url(r.attestationObject);
    if (r.authenticatorData) response.authenticatorData = toB64url(r.authenticatorData);
    if (r.signature) response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
    return {
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type, response: response,
      extensions: cred.getClientExtensionResults ? cred.getClientExtensionResults() : {}
    };
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {})
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error(j.error || "Something went wrong. Try again.");
        return j;
      });
    });
  }

  // Words for the person, not exception names.
  function explain(err) {
    if (!err) return "Something went wrong. Try again.";
    if (err.name === "NotAllowedError") return "The passkey request was cancelled or timed out. Try again when you are ready.";
    if (err.name === "InvalidStateError") return "This passkey is already registered for your account.";
    if (err.name === "SecurityError") return "Passkeys do not work on this address. Ask your administrator to use the server's https name.";
    if (err.name === "NotSupportedError") return "This device has no passkey support that this site can use.";
    if (err.name === "AbortError") return "";
    return err.message || "Something went wrong. Try again.";
  }
  function show(container, msg) {
    var el = container.querySelector("[data-passkey-message]");
    if (!el) return;
    el.textContent = msg;
    el.hidden = !msg;
  }
  function go(result) { window.location.assign(result.redirect || "/account"); }

  // Sign in with a passkey: a modal request from the button, and autofill on the username field.
  function setupLogin(box) {
    var button = box.querySelector("button");
    var extra = { req: box.getAttribute("data-req") || "", next: box.getAttribute("data-next") || "" };
    var autofill = null;
    function run(conditional) {
      return post("/login/passkey/start", { conditional: conditional }).then(function (s) {
        var opts = requestOptions(s.options);
        if (conditional) {
          autofill = new AbortController();
          opts.signal = autofill.signal;
        } else {
          delete opts.mediation;
        }
        return navigator.credentials.get(opts).then(function (cred) {
          if (!cred) return;
          return post("/login/passkey/finish", { ceremony: s.ceremony, credential: credentialJSON(cred), req: extra.req, next: extra.next }).then(go);
        });
      });
    }
    button.addEventListener("click", function () {
      if (autofill) { autofill.abort(); autofill = null; }
      show(box, "");
      button.disabled = true;
      run(false).catch(function (e) { show(box, explain(e)); }).then(function () { button.disabled = false; });
    });
    box.hidden = false;
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (ok) run(true).catch(function (e) { var m = explain(e); if (m && e.name !== "NotAllowedError") show(box, m); });
      });
    }
  }

  function setupSecondFactor(form) {
    form.hidden = false;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      show(form, "");
      post("/login/second-factor/start").then(function (s) {
        var opts = requestOptions(s.options);
        delete opts.mediation;
        return navigator.credentials.get(opts).then(function (cred) {
          return post("/login/second-factor/finish", { ceremony: s.ceremony, credential: credentialJSON(cred) });
        });
      }).then(go).catch(function (e) { show(form, explain(e)); });
    });
  }

  function setupRegister(form, start, finish, extra) {
    form.hidden = false;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      show(form, "");
      var name = (form.querySelector('input[name="name"]') || {}).value || "";
      post(start, extra).then(function (s) {
        return navigator.credentials.create(creationOptions(s.options)).then(function (cred) {
          var body = { ceremony: s.ceremony, credential: credentialJSON(cred), name: name };
          for (var k in extra) body[k] = extra[k];
          return post(finish, body);
        });
      }).then(go).catch(function (e) { show(form, explain(e)); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var nodes = document.querySelectorAll("[data-passkey]");
    if (!nodes.length) return;
    if (!supported) {
      nodes.forEach(function (n) {
        if (n.getAttribute("data-passkey") !== "login") {
          var p = document.createElement("p");
          p.className = "alert info";
          p.textContent = "This browser cannot use passkeys. Try a current browser on your phone or computer.";
          n.parentNode.insertBefore(p, n);
        }
      });
      return;
    }
    nodes.forEach(function (n) {
      var kind = n.getAttribute("data-passkey");
      if (kind === "login") setupLogin(n);
      else if (kind === "second-factor") setupSecondFactor(n);
      else if (kind === "register") setupRegister(n, "/account/passkeys/register/start", "/account/passkeys/register/finish", {});
      else if (kind === "invite") setupRegister(n, "/invite/passkey/start", "/invite/passkey/finish", { token: n.getAttribute("data-token") });
    });
  });
})();
