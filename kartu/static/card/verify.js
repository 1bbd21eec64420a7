/* kartu card verifier: checks a KPJ1: QR text offline, in the browser (or Node >= 20).
 *
 * Same rules as kartu/card/qr.py: "KPJ1:" + Base45(COSE_Sign1), CBOR tag 18, protected header
 * exactly {1: -7, 4: kid(8 bytes)}, empty unprotected header, ES256 signature (WebCrypto ECDSA
 * P-256, raw r||s) over ["Signature1", protected, h'', payload], CWT claims {1 iss, 6 iat,
 * 4 exp, 7 cti(16 bytes), -70001 {v, kpj, n, dob, nik4}}, the times (iat may be up to
 * IAT_LEEWAY seconds ahead of a slow device clock; exp is strict), then revocation.
 *
 * KartuVerify.verify(text, {jwks, revoked, issuers, now}) -> Promise<{status, code, card}>
 * where status is "valid" | "expired" | "revoked" | "not_genuine".
 * The page controller at the end runs only when a [data-kartu-verify] element exists.
 */
(function (root) {
  "use strict";

  var PREFIX = "KPJ1:";
  var MAX_TEXT = 1024;
  // A card issued a moment ago, checked on a phone whose clock runs a little slow, has its
  // iat in the phone's future: allow that much (the same 300 s as qr.py). exp gets none.
  var IAT_LEEWAY = 300;
  // The last second a date can be shown for (9999-12-31T23:59:59Z); later is refused (as in qr.py).
  var MAX_NUMERIC_DATE = 253402300799;
  var B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

  function Reject(code) { this.code = code; }

  function b45decode(s) {
    if (s.length % 3 === 1) throw new Reject("bad_base45");
    var out = [];
    for (var i = 0; i < s.length; i += 3) {
      var chunk = s.substr(i, 3), v = 0, mul = 1;
      for (var j = 0; j < chunk.length; j++) {
        var d = B45.indexOf(chunk[j]);
        if (d < 0) throw new Reject("bad_base45");
        v += d * mul; mul *= 45;
      }
      if (chunk.length === 3) {
        if (v > 0xffff) throw new Reject("bad_base45");
        out.push(v >> 8, v & 0xff);
      } else {
        if (v > 0xff) throw new Reject("bad_base45");
        out.push(v);
      }
    }
    return new Uint8Array(out);
  }

  // --- a small strict CBOR decoder / encoder (definite lengths, no floats) -------------------
  function Tag(tag, value) { this.tag = tag; this.value = value; }

  function cborDecode(bytes) {
    var pos = 0, depth = 0;
    function need(n) { if (pos + n > bytes.length) throw new Reject("bad_cbor"); }
    function uint(info) {
      if (info < 24) return info;
      var n = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
      if (!n) throw new Reject("bad_cbor");
      need(n);
      var v = 0;
      for (var i = 0; i < n; i++) v = v * 256 + bytes[pos++];
      if (v > Number.MAX_SAFE_INTEGER) throw new Reject("bad_cbor");
      return v;
    }
    function item() {
      if (++depth > 16) throw new Reject("bad_cbor");
      need(1);
      var ib = bytes[pos++], major = ib >> 5, info = ib & 31, n, out, i;
      if (major === 7) {
        depth--;
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        throw new Reject("bad_cbor");
      }
      n = uint(info);
      switch (major) {
        case 0: out = n; break;
        case 1: out = -1 - n; break;
        case 2: need(n); out = bytes.slice(pos, pos + n); pos += n; break;
        case 3:
          need(n);
          try { out = new TextDecoder("utf-8", { fatal: true }).decode(bytes.slice(pos, pos + n)); }
          catch (e) { throw new Reject("bad_cbor"); }
          pos += n; break;
        case 4:
          if (n > 64) throw new Reject("bad_cbor");
          out = []; for (i = 0; i < n; i++) out.push(item()); break;
        case 5:
          if (n > 64) throw new Reject("bad_cbor");
          out = new Map();
          for (i = 0; i < n; i++) {
            var k = item();
            if (typeof k !== "number" && typeof k !== "string") throw new Reject("bad_cbor");
            if (out.has(k)) throw new Reject("bad_cbor");
            out.set(k, item());
          }
          break;
        case 6: out = new Tag(n, item()); break;
      }
      depth--;
      return out;
    }
    var result = item();
    if (pos !== bytes.length) throw new Reject("bad_cbor");
    return result;
  }

  function cborEncode(v) {
    var out = [];
    function head(major, n) {
      if (n < 24) { out.push((major << 5) | n); return; }
      var len = n < 256 ? 1 : n < 65536 ? 2 : n < 4294967296 ? 4 : 8;
      out.push((major << 5) | { 1: 24, 2: 25, 4: 26, 8: 27 }[len]);
      for (var i = len - 1; i >= 0; i--) out.push(Math.floor(n / Math.pow(256, i)) % 256);
    }
    function enc(x) {
      if (typeof x === "number") { if (x >= 0) head(0, x); else head(1, -1 - x); }
      else if (x instanceof Uint8Array) { head(2, x.length); for (var i = 0; i < x.length; i++) out.push(x[i]); }
      else if (typeof x === "string") { var b = new TextEncoder().encode(x); head(3, b.length); enc.raw(b); }
      else if (Array.isArray(x)) { head(4, x.length); x.forEach(enc); }
      else if (x instanceof Map) { head(5, x.size); x.forEach(function (val, key) { enc(key); enc(val); }); }
      else throw new Reject("bad_cbor");
    }
    enc.raw = function (b) { for (var i = 0; i < b.length; i++) out.push(b[i]); };
    enc(v);
    return new Uint8Array(out);
  }

  function sameBytes(a, b) {
    if (a.length !== b.length) return false;
    for (var i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  function b64url(bytes) {
    var s = "";
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function isInt(x) { return typeof x === "number" && Number.isInteger(x); }
  function text(x, re, max) {
    return typeof x === "string" && x.length > 0 && x.length <= (max || 200) &&
      (re ? re.test(x) : !/[\x00-\x1f\x7f]/.test(x));
  }

  function parse(input) {
    if (typeof input !== "string") throw new Reject("empty");
    var s = input.trim();
    if (!s) throw new Reject("empty");
    if (s.length > MAX_TEXT) throw new Reject("too_long");
    if (s.indexOf(PREFIX) !== 0) throw new Reject("bad_prefix");
    var raw = b45decode(s.slice(PREFIX.length));
    var obj = cborDecode(raw);
    if (!(obj instanceof Tag) || obj.tag !== 18) throw new Reject("not_cose");
    var msg = obj.value;
    if (!Array.isArray(msg) || msg.length !== 4) throw new Reject("not_cose");
    var prot = msg[0], unprot = msg[1], payload = msg[2], sig = msg[3];
    if (!(prot instanceof Uint8Array && unprot instanceof Map && payload instanceof Uint8Array &&
          sig instanceof Uint8Array)) throw new Reject("not_cose");
    var hdr = cborDecode(prot);
    if (!(hdr instanceof Map) || !sameBytes(cborEncode(hdr), prot)) throw new Reject("bad_header");
    if (hdr.get(1) !== -7) throw new Reject("bad_alg");
    var kid = hdr.get(4);
    if (hdr.size !== 2 || !(kid instanceof Uint8Array) || kid.length !== 8) throw new Reject("bad_header");
    if (unprot.size !== 0) throw new Reject("bad_header");
    if (sig.length !== 64) throw new Reject("bad_signature");
    return { kid: b64url(kid), prot: prot, payload: payload, sig: sig };
  }

  function claims(payload) {
    var c = cborDecode(payload);
    if (!(c instanceof Map) || c.size !== 5) throw new Reject("bad_claims");
    var iss = c.get(1), iat = c.get(6), exp = c.get(4), cti = c.get(7), card = c.get(-70001);
    if (!text(iss)) throw new Reject("bad_claims");
    if (!(isInt(iat) && isInt(exp) && 0 < iat && iat < exp && exp <= MAX_NUMERIC_DATE)) {
      throw new Reject("bad_claims");
    }
    if (!(cti instanceof Uint8Array && cti.length === 16)) throw new Reject("bad_claims");
    if (!(card instanceof Map) || card.size !== 5) throw new Reject("bad_claims");
    var v = card.get("v"), kpj = card.get("kpj"), n = card.get("n"), dob = card.get("dob"),
      nik4 = card.get("nik4");
    if (v !== 1 || !text(kpj, /^[0-9]{11}$/) || !text(n) || n.trim() !== n ||
        !text(dob, /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/) || !text(nik4, /^[0-9]{4}$/)) {
      throw new Reject("bad_claims");
    }
    var d = new Date(dob + "T00:00:00Z");
    if (isNaN(d) || d.toISOString().slice(0, 10) !== dob) throw new Reject("bad_claims");
    return { kpj: kpj, n: n, dob: dob, nik4: nik4, iss: iss, iat: iat, exp: exp, cti: b64url(cti) };
  }

  function b64urlDecode(s) {
    var bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  var keyCache = {};
  function importKey(jwk) {
    var id = jwk.kid + ":" + jwk.x + ":" + jwk.y;
    if (!keyCache[id]) {
      keyCache[id] = root.crypto.subtle.importKey(
        "jwk", { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, ext: true },
        { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    }
    return keyCache[id];
  }

  async function verify(input, opts) {
    opts = opts || {};
    var parsed, card = null, claimsErr = null;
    try { parsed = parse(input); }
    catch (e) { if (e instanceof Reject) return { status: "not_genuine", code: e.code, card: null }; throw e; }
    try { card = claims(parsed.payload); }
    catch (e) { if (!(e instanceof Reject)) throw e; claimsErr = e.code; }
    var jwk = ((opts.jwks && opts.jwks.keys) || []).filter(function (k) {
      return k.kid === parsed.kid && k.kty === "EC" && k.crv === "P-256";
    })[0];
    if (!jwk) return { status: "not_genuine", code: "unknown_kid", card: card };
    var ok = false;
    try {
      var key = await importKey(jwk);
      var data = cborEncode(["Signature1", parsed.prot, new Uint8Array(0), parsed.payload]);
      ok = await root.crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, parsed.sig, data);
    } catch (e) { ok = false; }
    if (!ok) return { status: "not_genuine", code: "bad_signature", card: card };
    if (claimsErr) return { status: "not_genuine", code: claimsErr, card: null };
    if (opts.issuers && opts.issuers.indexOf(card.iss) < 0) {
      return { status: "not_genuine", code: "wrong_issuer", card: card };
    }
    var now = opts.now != null ? opts.now : Math.floor(Date.now() / 1000);
    if (card.iat > now + IAT_LEEWAY) return { status: "not_genuine", code: "future_iat", card: card };
    if (now >= card.exp) return { status: "expired", code: "expired", card: card };
    var revoked = (opts.revoked && opts.revoked.revoked) || [];
    if (revoked.indexOf(card.cti) >= 0) return { status: "revoked", code: "revoked", card: card };
    return { status: "valid", code: "valid", card: card };
  }

  root.KartuVerify = { verify: verify, b45decode: b45decode, cborDecode: cborDecode,
    cborEncode: cborEncode, b64urlDecode: b64urlDecode };

  // --- the /verifikasi page -----------------------------------------------------------------
  if (typeof document === "undefined") return;

  function store(name, value) {
    try { localStorage.setItem("kartu:" + name, JSON.stringify({ at: Date.now(), value: value })); }
    catch (e) { /* private mode: the keys are then kept only for this page */ }
  }
  function load(name) {
    try { return JSON.parse(localStorage.getItem("kartu:" + name) || "null"); } catch (e) { return null; }
  }

  async function refresh(cfg) {
    var out = {};
    for (var name of ["keys", "revoked"]) {
      try {
        var r = await fetch(name === "keys" ? cfg.keysUrl : cfg.revokedUrl, { cache: "no-cache" });
        if (r.ok) { out[name] = await r.json(); store(name, out[name]); }
      } catch (e) { /* offline: keep what we have */ }
    }
    return out;
  }

  // --- reading a QR code from the camera or a photo -------------------------------------------
  // The browser's BarcodeDetector where it has one that reads QR codes (Chromium on Android and
  // macOS); everywhere else (iOS Safari, Firefox, desktop Linux) the vendored jsQR, which is
  // fetched only then, on first use (the service worker keeps it for offline use).

  function ScannerUnavailable() {}

  function nativeReader() {
    var BD = root.BarcodeDetector;
    if (typeof BD !== "function") return Promise.resolve(null);
    return Promise.resolve(typeof BD.getSupportedFormats === "function"
      ? BD.getSupportedFormats() : ["qr_code"]).then(function (formats) {
      if (formats.indexOf("qr_code") < 0) return null;
      var detector = new BD({ formats: ["qr_code"] });
      return function (source) {
        return detector.detect(source).then(function (codes) {
          return codes.map(function (c) { return c.rawValue; });
        });
      };
    }).catch(function () { return null; });
  }

  var jsqrLoading = null;
  function loadJsQR(src) {
    if (typeof root.jsQR === "function") return Promise.resolve(root.jsQR);
    if (!jsqrLoading) {
      jsqrLoading = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = src;
        tag.onload = function () {
          if (typeof root.jsQR === "function") resolve(root.jsQR); else reject(new ScannerUnavailable());
        };
        tag.onerror = function () { tag.remove(); reject(new ScannerUnavailable()); };
        document.head.appendChild(tag);
      }).catch(function (e) { jsqrLoading = null; throw e; });  // a later try may be online
    }
    return jsqrLoading;
  }

  // A camera frame is read once, small (it comes again 200 ms later); a photo, often of 12
  // megapixels, first at 1024 px and then at 2048 px on its longest side, trying inverted too.
  function jsqrReader(src) {
    var canvas = document.createElement("canvas");
    var ctx = src && canvas.getContext && canvas.getContext("2d", { willReadFrequently: true });
    if (!ctx) return null;
    return function (source, isPhoto) {
      return loadJsQR(src).then(function (jsQR) {
        var w = source.videoWidth || source.naturalWidth || source.width;
        var h = source.videoHeight || source.naturalHeight || source.height;
        if (!w || !h) return [];  // the camera has not delivered a frame yet
        var sides = isPhoto ? [1024, 2048] : [800];
        for (var i = 0; i < sides.length; i++) {
          var scale = Math.min(1, sides[i] / Math.max(w, h));
          canvas.width = Math.round(w * scale); canvas.height = Math.round(h * scale);
          ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
          var img = ctx.getImageData(0, 0, canvas.width, canvas.height);
          var code = jsQR(img.data, img.width, img.height,
            { inversionAttempts: isPhoto ? "attemptBoth" : "dontInvert" });
          if (code && code.data) return [code.data];
          if (scale === 1) break;
        }
        return [];
      });
    };
  }

  // read(source, isPhoto) -> Promise<[text, ...]>; rejects with ScannerUnavailable when no
  // reader can be had. null when this browser can read no QR at all (then only pasting).
  function qrReader(jsqrSrc) {
    var fallback = jsqrReader(jsqrSrc), chosen = null;
    if (!fallback && typeof root.BarcodeDetector !== "function") return null;
    return function (source, isPhoto) {
      chosen = chosen || nativeReader().then(function (native) { return native || fallback; });
      return chosen.then(function (reader) {
        if (!reader) throw new ScannerUnavailable();
        return reader(source, isPhoto);
      });
    };
  }

  function imageOf(file) {
    function element() {
      return new Promise(function (resolve, reject) {
        var url = URL.createObjectURL(file), img = new Image();
        img.onload = function () { URL.revokeObjectURL(url); resolve(img); };
        img.onerror = function () { URL.revokeObjectURL(url); reject(new Error("not an image")); };
        img.src = url;
      });
    }
    if (typeof root.createImageBitmap !== "function") return element();
    return root.createImageBitmap(file).catch(element);  // e.g. HEIC that only <img> decodes
  }

  function start() {
    var page = document.querySelector("[data-kartu-verify]");
    if (!page) return;
    var cfg = JSON.parse(document.getElementById("kartu-verify-config").textContent);
    var S = cfg.strings;
    var form = page.querySelector("form");
    var field = form.querySelector("textarea");
    var box = page.querySelector("[data-result]");
    var ageLine = page.querySelector("[data-keys-age]");
    var canVerify = !!(root.crypto && root.crypto.subtle && root.TextDecoder);

    function showAge() {
      var k = load("keys");
      ageLine.textContent = k ? S.keysAge + ": " + new Date(k.at).toLocaleString() : S.noKeys;
    }
    showAge();
    var ready = refresh(cfg).then(showAge);
    if ("serviceWorker" in navigator && cfg.sw) {
      navigator.serviceWorker.register(cfg.sw, { scope: "/verifikasi" }).catch(function () {});
    }

    function render(res) {
      box.hidden = false;
      box.className = "kartu-result kartu-result--" + res.status;
      box.querySelector("[data-status]").textContent = S.status[res.status];
      box.querySelector("[data-reason]").textContent = S.reason[res.code] || res.code;
      var dl = box.querySelector("[data-card]");
      var show = res.card && res.status !== "not_genuine";
      dl.hidden = !show;
      if (show) {
        dl.querySelector("[data-n]").textContent = res.card.n;
        dl.querySelector("[data-kpj]").textContent = res.card.kpj;
        dl.querySelector("[data-dob]").textContent = res.card.dob;
        dl.querySelector("[data-nik4]").textContent = "************" + res.card.nik4;
        dl.querySelector("[data-exp]").textContent = new Date(res.card.exp * 1000).toLocaleDateString();
      }
      box.focus();
    }

    async function check(textValue) {
      if (!canVerify) { form.submit(); return; }
      await ready;
      var keys = load("keys"), revoked = load("revoked");
      if (!keys) {
        if (navigator.onLine) { form.submit(); return; }
        ageLine.textContent = S.noKeys; return;
      }
      var res = await verify(textValue, {
        jwks: keys && keys.value, revoked: revoked && revoked.value, issuers: cfg.issuers,
      });
      if (res.code === "unknown_kid" && navigator.onLine) {
        await refresh(cfg); keys = load("keys");
        res = await verify(textValue, { jwks: keys && keys.value,
          revoked: revoked && revoked.value, issuers: cfg.issuers });
      }
      render(res);
    }

    form.addEventListener("submit", function (ev) { ev.preventDefault(); check(field.value); });
    // /verifikasi#KPJ1:… (URL-encoded) checks that text straight away.
    var fromHash = "";
    try { fromHash = decodeURIComponent(location.hash.slice(1)); } catch (e) { fromHash = ""; }
    if (fromHash.indexOf(PREFIX) === 0) { field.value = fromHash; check(fromHash); }

    // Reading the QR from the camera or a photo (see qrReader); pasting the text always works.
    var scanBtn = page.querySelector("[data-scan]"), video = page.querySelector("video");
    var fileIn = page.querySelector("[data-file]"), scanError = page.querySelector("[data-scan-error]");
    var script = document.querySelector("script[data-jsqr]");
    var read = qrReader(script && script.getAttribute("data-jsqr"));
    if (!read) return;
    function unavailable(e) {  // jsQR could not be fetched (offline before it was ever cached)
      if (!(e instanceof ScannerUnavailable)) return false;
      if (scanError) scanError.hidden = false;
      return true;
    }
    function pick(texts) {
      return texts.filter(function (t) { return t.indexOf(PREFIX) === 0; })[0] || texts[0];
    }
    fileIn.closest("[hidden]") && (fileIn.closest("[hidden]").hidden = false);
    fileIn.addEventListener("change", async function () {
      var file = fileIn.files[0];
      if (!file) return;
      if (scanError) scanError.hidden = true;
      var texts = [];
      try { texts = await read(await imageOf(file), true); }
      catch (e) { if (unavailable(e)) return; }
      finally { fileIn.value = ""; }  // choosing the same photo again reads it again
      var hit = pick(texts);
      if (hit) { field.value = hit; check(hit); }
      else render({ status: "not_genuine", code: "no_qr", card: null });
    });
    if (!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)) return;
    scanBtn.hidden = false;
    var stream = null;
    scanBtn.addEventListener("click", async function () {
      if (stream) { stop(); return; }
      if (scanError) scanError.hidden = true;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      } catch (e) { ageLine.textContent = S.cameraError; return; }
      video.srcObject = stream; video.hidden = false; await video.play();
      scanBtn.setAttribute("aria-pressed", "true");
      (async function loop() {
        while (stream) {
          var texts = [];
          try { texts = await read(video, false); }
          catch (e) { if (unavailable(e)) { stop(); return; } }
          var hit = stream && pick(texts);
          if (hit) { field.value = hit; stop(); check(hit); return; }
          await new Promise(function (r) { setTimeout(r, 200); });
        }
      })();
    });
    function stop() {
      if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null; video.hidden = true; scanBtn.setAttribute("aria-pressed", "false");
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})(typeof globalThis !== "undefined" ? globalThis : this);
