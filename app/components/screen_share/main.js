// Apate screen or tab sharing: a Streamlit component without a build step.
//
// Speaks the component protocol directly (streamlit:componentReady / render / setComponentValue /
// setFrameHeight). Browser side of one WebRTC session: getDisplayMedia -> RTCPeerConnection -> offer with all
// ICE candidates -> Python (component value {id, offer}); Python's answer comes back as the `answer` arg and
// the processed video it sends is played below the buttons. Stop (or the browser's own "Stop sharing")
// closes the connection and tells Python ({id, stopped: true}).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const startButton = $("start"), stopButton = $("stop"), statusText = $("status"), note = $("note"),
        errorText = $("error"), video = $("video");
  const supported = Boolean(navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia) &&
                    typeof RTCPeerConnection !== "undefined";
  const SURFACES = { monitor: "your screen", window: "a window", browser: "a tab" };

  let args = {};        // the latest render args from Python
  let session = null;   // the running share: {id, pc, stream, answered}
  let lastHeight = -1;

  function send(type, data) {
    window.parent.postMessage(Object.assign({ isStreamlitMessage: true, type }, data), "*");
  }
  function setValue(value) { send("streamlit:setComponentValue", { value, dataType: "json" }); }
  function fitHeight() {
    const height = Math.ceil(document.body.getBoundingClientRect().height) + 4;
    if (height !== lastHeight) { lastHeight = height; send("streamlit:setFrameHeight", { height }); }
  }

  function show(state, text) {  // state: idle | connecting | sharing
    startButton.hidden = !supported || state !== "idle";
    stopButton.hidden = state === "idle";
    statusText.textContent = text || "";
    video.hidden = state !== "sharing";
    fitHeight();
  }
  function showError(message) { errorText.textContent = message || ""; fitHeight(); }

  function describe(err) {
    const name = err && err.name;
    if (name === "NotAllowedError") return "Screen sharing was not allowed (permission denied or the picker was closed).";
    if (name === "NotFoundError") return "There is no screen, window or tab to share.";
    if (name === "NotReadableError") return "The browser could not capture the screen (the system may be blocking it).";
    return "Screen sharing failed: " + (err && err.message ? err.message : String(err));
  }

  function gathered(pc, timeoutMs) {  // resolves when ICE gathering is complete (or after timeoutMs)
    return new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") { resolve(); return; }
      const timer = setTimeout(resolve, timeoutMs);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  function sharingText(track) {
    const settings = track.getSettings ? track.getSettings() : {};
    const what = SURFACES[settings.displaySurface] || "your screen";
    const size = settings.width && settings.height ? ` (${settings.width}×${settings.height})` : "";
    return `Sharing ${what}${size}: analysed frames come back below.`;
  }

  async function start() {
    showError("");
    startButton.disabled = true;
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia(args.constraints || { video: true, audio: false });
    } catch (err) {
      showError(describe(err));
      return;
    } finally {
      startButton.disabled = false;
    }
    const track = stream.getVideoTracks()[0];
    const id = Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
    const pc = new RTCPeerConnection({ iceServers: args.ice_servers || [] });
    const s = session = { id, pc, stream, answered: false };
    track.addEventListener("ended", () => stop(s, "Sharing ended."));
    pc.addEventListener("track", (event) => { video.srcObject = event.streams[0] || new MediaStream([event.track]); });
    pc.addEventListener("connectionstatechange", () => {
      if (session !== s) return;
      if (pc.connectionState === "connected") show("sharing", sharingText(track));
      else if (pc.connectionState === "failed") {
        stop(s);
        showError("The connection to the server failed: the browser cannot reach it directly (see APATE_ICE_SERVERS).");
      }
    });
    pc.addTrack(track, stream);
    show("connecting", "Connecting to the server…");
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, 5000);
    } catch (err) {
      stop(s);
      showError(describe(err));
      return;
    }
    if (session !== s) return;  // stopped while gathering
    setValue({ id, offer: { sdp: pc.localDescription.sdp, type: pc.localDescription.type } });
    applyArgs();
  }

  function stop(s, text) {
    if (!s || session !== s) return;
    session = null;
    s.stream.getTracks().forEach((t) => t.stop());
    s.pc.close();
    video.srcObject = null;
    setValue({ id: s.id, stopped: true });
    show("idle", text);
  }

  async function applyArgs() {
    const s = session;
    if (!s) return;
    if (args.error && args.error.id === s.id) {
      stop(s);
      showError(args.error.message);
      return;
    }
    if (!s.answered && args.answer && args.answer.id === s.id) {
      s.answered = true;
      try {
        await s.pc.setRemoteDescription({ type: args.answer.type, sdp: args.answer.sdp });
      } catch (err) {
        stop(s);
        showError(describe(err));
      }
    }
  }

  function applyTheme(theme) {
    if (!theme) return;
    const vars = { "--primary-color": theme.primaryColor, "--text-color": theme.textColor, "--font": theme.font,
                   "--secondary-background-color": theme.secondaryBackgroundColor };
    for (const [name, value] of Object.entries(vars)) if (value) document.documentElement.style.setProperty(name, value);
  }

  window.addEventListener("message", (event) => {
    if (!event.data || event.data.type !== "streamlit:render") return;
    args = event.data.args || {};
    applyTheme(event.data.theme);
    applyArgs();
    fitHeight();
  });
  startButton.addEventListener("click", start);
  stopButton.addEventListener("click", () => stop(session));
  window.addEventListener("pagehide", () => stop(session));
  if (!supported) {
    note.hidden = false;
    note.textContent = "This browser does not offer screen or tab sharing (no getDisplayMedia; most mobile " +
                       "browsers lack it). Use a desktop Chrome, Edge, Firefox or Safari, or the Camera source.";
  }
  send("streamlit:componentReady", { apiVersion: 1 });
  show("idle");
  video.addEventListener("loadedmetadata", fitHeight);
  if (typeof ResizeObserver !== "undefined") new ResizeObserver(fitHeight).observe(document.body);
})();
