// Space editor page: live avatar status, the prompt and its choices. Vanilla JS, no build step.
// The editor token arrives in the URL fragment (#token=...), which browsers never send to a
// server; it is moved to sessionStorage at once and the fragment is removed from the address bar.
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("avatarflow-config").textContent);
  const spaceId = config.spaceId;
  const base = "/v1/spaces/" + encodeURIComponent(spaceId);
  const storageKey = "avatarflow.editorToken." + spaceId;
  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function readToken() {
    const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    const fromFragment = params.get("token");
    if (fromFragment) {
      sessionStorage.setItem(storageKey, fromFragment);
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(storageKey);
  }
  const token = readToken();

  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ Authorization: "Bearer " + token }, opts.headers);
    const response = await fetch(base + path, opts);
    if (response.status === 401 || response.status === 403) { showAuthProblem(); throw new Error("auth"); }
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  function showAuthProblem() { $("auth-missing").hidden = false; }

  // The editor's own uploads, shown beside a rejection's message. The server never hands an
  // original back (see api.py), so the page keeps a small copy of each file it sent, keyed by
  // upload_id, in sessionStorage: it survives a reload in this tab and never leaves the browser.
  const uploadPreviewKey = (uploadId) => "avatarflow.uploadPreview." + spaceId + "." + uploadId;
  const PREVIEW_LONG_SIDE = 320;
  const PREVIEWS_KEPT = 5;

  async function makePreview(file) {
    // Browsers that cannot decode the file (HEIC in most) simply show no picture.
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const scale = Math.min(1, PREVIEW_LONG_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    return canvas.toDataURL("image/jpeg", 0.85);
  }

  function rememberPreview(uploadId, dataUrl) {
    const indexKey = "avatarflow.uploadPreviews." + spaceId;
    const kept = JSON.parse(sessionStorage.getItem(indexKey) || "[]").filter((id) => id !== uploadId);
    kept.push(uploadId);
    while (kept.length > PREVIEWS_KEPT) sessionStorage.removeItem(uploadPreviewKey(kept.shift()));
    try {
      sessionStorage.setItem(uploadPreviewKey(uploadId), dataUrl);
      sessionStorage.setItem(indexKey, JSON.stringify(kept));
    } catch (err) {
      // storage full: the prompt shows without the picture
    }
  }

  function renderPromptImage(prompt) {
    const figure = $("prompt-figure");
    const preview = prompt && prompt.kind === "rejected" ? sessionStorage.getItem(uploadPreviewKey(prompt.upload_id)) : null;
    if (preview) { $("prompt-image").src = preview; } else { $("prompt-image").removeAttribute("src"); }
    figure.hidden = !preview;
  }

  let lastVersion = -1;
  let lastPreview = "";
  let pendingUploadId = null; // the upload this page sent, until its outcome arrives

  function render(status) {
    if (status.version < lastVersion) return; // an older snapshot arriving late
    lastVersion = status.version;
    document.body.dataset.version = String(status.version);
    $("status-text").textContent = status.status === "none" ? "no upload yet" : status.status;
    const latest = status.latest_upload;
    $("stage-text").textContent = latest && latest.status === "processing" ? "(" + latest.stage + ")" : "";
    if (latest && latest.upload_id === pendingUploadId && latest.status !== "processing") {
      $("upload-result").textContent = ""; // the outcome is shown above: drop "checking your image…"
      pendingUploadId = null;
    }
    renderPrompt(status.prompt);
    const hints = $("hints");
    hints.replaceChildren(...status.hints.map((h) => {
      const li = document.createElement("li");
      li.textContent = h.message;
      li.dataset.code = h.code;
      return li;
    }));
    renderPreview(status.avatar);
  }

  function renderPrompt(prompt) {
    const box = $("prompt");
    renderPromptImage(prompt);
    if (!prompt) { box.hidden = true; box.dataset.uploadId = ""; return; }
    box.hidden = false;
    box.dataset.uploadId = prompt.upload_id;
    box.dataset.kind = prompt.kind;
    $("prompt-message").textContent = prompt.message;
    $("prompt-reasons").replaceChildren(...prompt.reasons.slice(1).map((r) => {
      const li = document.createElement("li");
      li.textContent = r.message;
      li.dataset.code = r.code;
      return li;
    }));
    const actions = new Set(prompt.actions);
    $("action-upload").hidden = !actions.has("upload_different_image");
    $("action-choose").hidden = !actions.has("choose_pregenerated");
    $("action-dismiss").hidden = !actions.has("dismiss");
    const support = $("action-support");
    support.hidden = !(actions.has("open_support_ticket") && prompt.support_ticket_url);
    if (!support.hidden) support.href = prompt.support_ticket_url;
  }

  let player = null;

  // A ready pack plays through the same web player as the end-user page (what visitors see), and
  // "Hear your avatar" speaks its preview line with sound, lip-synced from the viseme atlas.
  async function startPlayer(avatar, key) {
    const canvas = $("preview-canvas");
    const hear = $("hear-avatar");
    try {
      const { AvatarPlayer } = await import("/static/avatar-player.js");
      const loaded = await AvatarPlayer.load(canvas, avatar);
      if (key !== lastPreview) { loaded.stop(); return; }
      if (player) player.stop();
      player = loaded;
      $("preview-video").hidden = true; $("preview-poster").hidden = true;
      canvas.hidden = false;
      player.playIdle();
      hear.hidden = false; $("hear-note").hidden = false;
      hear.onclick = () => {
        const preview = player.manifest.preview;
        player.speak(avatar.files[preview.file].url, preview.timeline).catch(() => {});
      };
      document.body.dataset.player = "ready";
    } catch (err) {
      document.body.dataset.player = "unavailable";
    }
  }

  function renderPreview(avatar) {
    const key = JSON.stringify([avatar.idle_loop && avatar.idle_loop.url, avatar.poster && avatar.poster.url]);
    if (key === lastPreview) return;
    lastPreview = key;
    const video = $("preview-video");
    const img = $("preview-poster");
    if (player) { player.stop(); player = null; }
    $("preview-canvas").hidden = true; $("hear-avatar").hidden = true; $("hear-note").hidden = true;
    document.body.dataset.avatarKind = avatar.kind;
    if (avatar.poster) { img.src = avatar.poster.url; } else { img.removeAttribute("src"); }
    if (avatar.idle_loop) {
      video.src = avatar.idle_loop.url;
      if (avatar.poster) video.poster = avatar.poster.url;
      video.hidden = false; img.hidden = true;
      video.onerror = () => { video.hidden = true; img.hidden = !avatar.poster; };
    } else {
      video.removeAttribute("src"); video.hidden = true;
      img.hidden = !avatar.poster;
    }
    if (avatar.kind === "custom" && avatar.manifest && avatar.files) startPlayer(avatar, key);
  }

  // Live updates: SSE read with fetch so the token travels in the Authorization header, not the URL.
  async function follow() {
    let delay = 1000;
    for (;;) {
      try {
        const response = await fetch(base + "/events", {
          headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" },
          cache: "no-store",
        });
        if (response.status === 401 || response.status === 403) { showAuthProblem(); return; }
        if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
        delay = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            handleMessage(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (err) {
        // network hiccup: reconnect below
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 15000);
    }
  }

  function handleMessage(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (event === "status" && data.length) render(JSON.parse(data.join("\n")));
  }

  async function loadCatalogue() {
    const catalogue = await api("/pregenerated-avatars");
    const holder = $("catalogue-items");
    holder.replaceChildren(...catalogue.items.map((item) => {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.avatarId = item.avatar_id;
      const img = document.createElement("img");
      img.src = item.poster.url;
      img.alt = item.name;
      const label = document.createElement("span");
      label.textContent = item.name;
      button.append(img, label);
      button.addEventListener("click", async () => {
        render(await api("/avatar/choose-pregenerated", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ avatar_id: item.avatar_id }),
        }));
        $("catalogue").hidden = true;
      });
      return button;
    }));
    $("catalogue").hidden = false;
  }

  function newIdempotencyKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  }

  const UPLOAD_ATTEMPTS = 3;

  async function upload(file) {
    const preview = makePreview(file).catch(() => null);
    const form = new FormData();
    form.append("file", file);
    $("upload-result").textContent = "Uploading…";
    // One key per chosen file: a retry after a lost answer or a 503 resumes the same upload instead
    // of making a second one (ingest answers it with the same upload_id).
    const headers = { Authorization: "Bearer " + token, "Idempotency-Key": newIdempotencyKey() };
    // The ingest service owns uploads; it must allow this page's origin (CORS).
    const url = config.ingestBaseUrl + "/v1/spaces/" + encodeURIComponent(spaceId) + "/uploads";
    for (let attempt = 1; attempt <= UPLOAD_ATTEMPTS; attempt++) {
      const last = attempt === UPLOAD_ATTEMPTS;
      let response;
      try {
        response = await fetch(url, { method: "POST", headers, body: form });
      } catch (err) {
        if (!last) { await sleep(2000 * attempt); continue; }
        $("upload-result").textContent = "Upload failed: the upload service could not be reached.";
        return;
      }
      if (response.status === 503 && !last) {
        const wait = Number(response.headers.get("Retry-After")) || 5;
        $("upload-result").textContent = "The upload service is busy; trying again…";
        await sleep(Math.min(wait, 30) * 1000);
        continue;
      }
      const body = await response.json().catch(() => ({}));
      if (response.ok) {
        pendingUploadId = body.upload_id || null;
        const dataUrl = await preview;
        if (pendingUploadId && dataUrl) {
          rememberPreview(pendingUploadId, dataUrl);
          lastVersion = -1; // re-render: a fast rejection may already be on screen without its picture
          api("/avatar-status").then(render).catch(() => {});
        }
        $("upload-result").textContent = "Uploaded: checking your image…";
      } else {
        // Ingest's clear 4xx messages (type, size, dimensions) are meant for the editor.
        $("upload-result").textContent = "Upload refused: " + (body.detail || "HTTP " + response.status);
      }
      return;
    }
  }

  $("file-input").addEventListener("change", (e) => { if (e.target.files.length) upload(e.target.files[0]); });
  $("action-upload").addEventListener("click", () => $("file-input").click());
  $("action-choose").addEventListener("click", () => loadCatalogue().catch(() => {}));
  $("action-dismiss").addEventListener("click", async () => render(await api("/prompt/dismiss", { method: "POST" })));

  if (!token) { showAuthProblem(); return; }
  api("/avatar-status").then(render).catch(() => {});
  follow();
})();
