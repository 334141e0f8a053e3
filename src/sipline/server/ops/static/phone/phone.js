// sipline web phone: JsSIP over SIP WebSocket (RFC 7118), media browser to browser.
// Plain script, no build step. `window.sipline.state` is what the page shows, kept as
// data so that tests (and curious people) can read it; `window.sipline.phone` acts.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = {
    registered: false,
    error: null,
    call: { state: "idle", direction: null, peer: null, held: false, cause: null },
    messages: [],
    presence: {},
    audio: { peakHz: 0, level: 0 },
    dtmfSent: "",
    dtmfReceived: "", // keys the other side sent by SIP INFO (in-band ones are heard)
  };
  let ua = null;
  let session = null;
  let domain = "";
  const watches = {};
  const media = { audio: true, video: false };
  // No STUN or TURN by default: host candidates reach a browser on the same network.
  const pcConfig = { iceServers: [] };

  JsSIP.debug.disable("JsSIP:*");

  function setStatus(text, kind) {
    const el = $("status");
    el.textContent = text;
    el.className = "status " + (kind || "");
  }

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function targetUri(text) {
    let t = text.trim();
    if (!t) return null;
    if (!/^sips?:/.test(t)) t = "sip:" + t;
    if (t.indexOf("@") < 0) t += "@" + domain;
    return t;
  }

  // -- signing in --------------------------------------------------------------------
  async function defaultWebSocket() {
    const query = new URLSearchParams(location.search).get("ws");
    if (query) return query;
    try {
      const reply = await fetch("config.json", { cache: "no-store" });
      const doc = await reply.json();
      if (doc.websocket) return doc.websocket;
    } catch (e) {
      /* no config: the user types the address */
    }
    return localStorage.getItem("sipline.ws") || "";
  }

  function login(aor, password, name, wsUrl) {
    aor = aor.trim().replace(/^sips?:/, "");
    domain = aor.split("@")[1] || location.hostname;
    localStorage.setItem("sipline.aor", aor);
    localStorage.setItem("sipline.ws", wsUrl);
    state.error = null;
    const config = {
      sockets: [new JsSIP.WebSocketInterface(wsUrl)],
      uri: "sip:" + aor,
      password: password,
      register: true,
      register_expires: 300,
      session_timers: false,
      user_agent: "sipline-web-phone JsSIP/" + JsSIP.version,
    };
    if (name) config.display_name = name;
    try {
      ua = new JsSIP.UA(config);
    } catch (e) {
      fail("cannot start: " + e.message);
      return;
    }
    ua.on("connected", () => setStatus("connected, registering…"));
    ua.on("disconnected", () => {
      state.registered = false;
      setStatus("disconnected", "bad");
    });
    ua.on("registered", () => {
      state.registered = true;
      show("login", false);
      show("phone", true);
      setStatus("registered as " + aor, "ok");
    });
    ua.on("unregistered", () => {
      state.registered = false;
      setStatus("not registered", "bad");
    });
    ua.on("registrationFailed", (e) => fail("sign-in failed: " + (e.cause || "error")));
    ua.on("newRTCSession", (e) => newSession(e.session, e.originator));
    ua.on("newMessage", (e) => {
      if (e.originator !== "remote") return;
      const from = e.request.from.uri.toString();
      addMessage({ direction: "in", peer: from, text: e.request.body || "" });
    });
    setStatus("connecting…");
    ua.start();
  }

  function fail(text) {
    state.error = text;
    $("login-error").textContent = text;
    show("login-error", true);
    setStatus("signed out", "bad");
    if (ua) ua.stop();
    ua = null;
  }

  function logout() {
    if (ua) ua.stop();
    ua = null;
    state.registered = false;
    show("phone", false);
    show("login", true);
    setStatus("signed out");
  }

  // -- calls -------------------------------------------------------------------------
  function setCall(fields) {
    Object.assign(state.call, fields);
    const c = state.call;
    $("call-info").textContent =
      (c.direction === "in" ? "with " : "to ") + (c.peer || "") + ": " + c.state + (c.held ? " (on hold)" : "") +
      (state.dtmfReceived ? " (keys: " + state.dtmfReceived + ")" : "");
    $("hold-button").textContent = c.held ? "Resume" : "Hold";
  }

  function newSession(s, originator) {
    if (session && !session.isEnded()) {
      if (originator === "remote") s.terminate({ status_code: 486 });
      return;
    }
    session = s;
    const peer = s.remote_identity.uri.toString();
    state.call = { state: originator === "remote" ? "ringing" : "calling", direction: originator === "remote" ? "in" : "out", peer: peer, held: false, cause: null };
    state.dtmfReceived = "";
    $("call-ended").textContent = "";
    if (originator === "remote") {
      $("incoming-from").textContent = s.remote_identity.display_name || peer;
      show("incoming", true);
      s.on("peerconnection", (e) => watchTracks(e.peerconnection));
    } else {
      show("in-call", true);
      if (s.connection) watchTracks(s.connection);
    }
    setCall({});
    s.on("progress", () => setCall({ state: originator === "remote" ? "ringing" : "ringing back" }));
    s.on("accepted", () => setCall({ state: "answered" }));
    s.on("confirmed", () => {
      show("incoming", false);
      show("in-call", true);
      setCall({ state: "connected" });
    });
    s.on("hold", (e) => {
      if (e.originator === "local") setCall({ held: true });
    });
    s.on("unhold", (e) => {
      if (e.originator === "local") setCall({ held: false });
    });
    s.on("newDTMF", (e) => {
      if (e.originator !== "remote") return;
      state.dtmfReceived += e.dtmf.tone;
      setCall({});
    });
    s.on("ended", (e) => ended("ended", e.cause));
    s.on("failed", (e) => ended("failed", e.cause));
  }

  function ended(how, cause) {
    setCall({ state: how, cause: cause });
    $("call-ended").textContent = "Call " + how + (cause ? ": " + cause : "");
    show("incoming", false);
    show("in-call", false);
    $("remote-audio").srcObject = null;
    stopAnalyser();
  }

  function call(text) {
    const target = targetUri(text);
    if (!ua || !target) return;
    ua.call(target, { mediaConstraints: media, pcConfig: pcConfig });
  }

  function answer() {
    if (session) session.answer({ mediaConstraints: media, pcConfig: pcConfig });
    show("incoming", false);
  }

  function hangup() {
    if (session && !session.isEnded()) session.terminate();
  }

  function toggleHold() {
    if (!session || !session.isEstablished()) return;
    if (state.call.held) session.unhold();
    else session.hold();
  }

  function dtmf(digit) {
    if (!session || !session.isEstablished()) return;
    // RFC 4733 events in the media, as desk phones and gateways expect, when the call
    // negotiated telephone-event; else SIP INFO (application/dtmf-relay): the media
    // bridge's WebRTC side has no telephone-event, and insertDTMF would throw.
    const sender = session.connection.getSenders().find((s) => s.track && s.track.kind === "audio");
    const inband = Boolean(sender && sender.dtmf && sender.dtmf.canInsertDTMF);
    session.sendDTMF(digit, { transportType: inband ? "RFC2833" : "INFO" });
    state.dtmfSent += digit;
  }

  // -- what the other side sounds like ---------------------------------------------------
  let analyser = null;
  let audioContext = null;
  let timer = null;

  function watchTracks(pc) {
    pc.addEventListener("track", (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      const audio = $("remote-audio");
      audio.srcObject = stream;
      audio.play().catch(() => {});
      startAnalyser(stream);
    });
  }

  function startAnalyser(stream) {
    stopAnalyser();
    audioContext = new AudioContext();
    audioContext.resume().catch(() => {});
    const source = audioContext.createMediaStreamSource(stream);
    analyser = audioContext.createAnalyser();
    analyser.fftSize = 8192;
    source.connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    const wave = new Float32Array(analyser.fftSize);
    timer = setInterval(() => {
      analyser.getFloatTimeDomainData(wave);
      let sum = 0;
      for (const x of wave) sum += x * x;
      const level = Math.sqrt(sum / wave.length);
      analyser.getFloatFrequencyData(bins);
      let best = 0;
      for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
      state.audio = { peakHz: level > 0.005 ? (best * audioContext.sampleRate) / analyser.fftSize : 0, level: level };
    }, 200);
  }

  function stopAnalyser() {
    if (timer) clearInterval(timer);
    timer = null;
    if (audioContext) audioContext.close().catch(() => {});
    audioContext = null;
    analyser = null;
    state.audio = { peakHz: 0, level: 0 };
  }

  // -- messages ------------------------------------------------------------------------
  function addMessage(m) {
    state.messages.push(m);
    const li = document.createElement("li");
    li.className = m.direction;
    li.textContent = (m.direction === "in" ? m.peer + ": " : "to " + m.peer + ": ") + m.text + (m.status ? " (" + m.status + ")" : "");
    $("messages").prepend(li);
    return li;
  }

  function sendMessage(to, text) {
    const target = targetUri(to);
    if (!ua || !target || !text) return;
    const m = { direction: "out", peer: target, text: text, status: "sending" };
    const li = addMessage(m);
    const done = (status) => {
      m.status = status;
      li.textContent = "to " + target + ": " + text + " (" + status + ")";
    };
    ua.sendMessage(target, text, {
      contentType: "text/plain;charset=utf-8",
      eventHandlers: {
        succeeded: () => done("sent"),
        failed: (e) => done("failed: " + (e.cause || "")),
      },
    });
  }

  // -- presence (RFC 3856, PIDF RFC 3863 with RPID activities) -------------------------
  function parsePidf(body) {
    const doc = new DOMParser().parseFromString(body, "application/xml");
    const all = (name) => Array.from(doc.getElementsByTagNameNS("*", name));
    const basics = all("basic").map((b) => b.textContent.trim());
    const notes = all("note").map((n) => n.textContent.trim()).filter(Boolean);
    const activities = [];
    for (const acts of all("activities")) {
      for (const child of Array.from(acts.children)) {
        if (child.localName !== "note" && child.localName !== "other") activities.push(child.localName);
      }
    }
    const open = basics.indexOf("open") >= 0;
    const status = !open ? "offline" : activities[0] || "online";
    return { status: status, note: notes[0] || null };
  }

  function watch(text) {
    const target = targetUri(text);
    if (!ua || !target || watches[target]) return;
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = target;
    const badge = document.createElement("span");
    badge.className = "presence";
    badge.textContent = "…";
    li.append(name, badge);
    $("contacts").append(li);
    state.presence[target] = { status: "unknown", note: null };
    const sub = ua.subscribe(target, "presence", "application/pidf+xml", { expires: 600 });
    watches[target] = sub;
    sub.on("notify", (isFinal, notify, body) => {
      const p = body ? parsePidf(body) : { status: "offline", note: null };
      state.presence[target] = p;
      badge.textContent = p.status + (p.note ? " (" + p.note + ")" : "");
      badge.className = "presence " + p.status;
    });
    sub.on("terminated", () => {
      delete watches[target];
    });
    sub.subscribe();
  }

  // -- the page ------------------------------------------------------------------------
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    show("login-error", false);
    login($("login-aor").value, $("login-password").value, $("login-name").value.trim(), $("login-ws").value.trim());
  });
  $("logout-button").addEventListener("click", logout);
  $("dial-form").addEventListener("submit", (e) => {
    e.preventDefault();
    call($("dial-target").value);
  });
  $("answer-button").addEventListener("click", answer);
  $("decline-button").addEventListener("click", () => {
    if (session) session.terminate({ status_code: 603 });
  });
  $("hangup-button").addEventListener("click", hangup);
  $("hold-button").addEventListener("click", toggleHold);
  for (const key of document.querySelectorAll("#keypad button")) {
    key.addEventListener("click", () => dtmf(key.dataset.digit));
  }
  $("message-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sendMessage($("msg-to").value, $("msg-text").value);
    $("msg-text").value = "";
  });
  $("watch-form").addEventListener("submit", (e) => {
    e.preventDefault();
    watch($("watch-target").value);
    $("watch-target").value = "";
  });
  $("login-aor").value = localStorage.getItem("sipline.aor") || "";
  defaultWebSocket().then((url) => {
    if (!$("login-ws").value) $("login-ws").value = url;
  });

  window.sipline = {
    state: state,
    phone: { login, logout, call, answer, hangup, toggleHold, dtmf, sendMessage, watch },
  };
})();
