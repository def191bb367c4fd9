// avatarflow web player: an ES module, no build step (served at /static/avatar-player.js).
//
//   import { AvatarPlayer } from "/static/avatar-player.js";
//   const player = await AvatarPlayer.load(canvas, publicAvatar);   // GET /v1/public/spaces/{id}/avatar
//   player.playIdle();                                            // the idle loop, with real alpha
//   await player.speak(audioUrl, timeline);                       // lip-sync any audio in real time
//
// `publicAvatar.files` maps every file name the pack's manifest.json gives to a same-origin URL.
// The idle loop plays from the VP9 WebM (real alpha) where the browser can, else from the pack's
// stacked-alpha H.264 MP4 alternate (colour on top, alpha as grey below; recombined here on a
// canvas: Safari plays no VP9 alpha). Speaking draws the viseme atlas cell of the audio's current
// time each animation frame; `timeline` is [{viseme, start_s, end_s}] (the manifest's preview
// timeline, or one built from a TTS engine's viseme events mapped through manifest.viseme_maps).
// The canvas carries data-mode ("idle" | "speaking") and data-viseme (the cell on screen).

const SUPPORTED_MAJOR = 1;

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("cannot load " + url));
    img.src = url;
  });
}

export function visemeAt(timeline, t) {
  for (const entry of timeline) {
    if (t >= entry.start_s && t < entry.end_s) return entry.viseme;
  }
  return "sil";
}

/** A viseme timeline from TTS viseme events [{time_s, id}] through one of manifest.viseme_maps. */
export function timelineFromEvents(events, map, durationS) {
  const sorted = [...events].sort((a, b) => a.time_s - b.time_s);
  const out = [];
  sorted.forEach((event, i) => {
    const end = i + 1 < sorted.length ? sorted[i + 1].time_s : durationS;
    const viseme = map[String(event.id)] || "sil";
    if (end > event.time_s) out.push({ viseme, start_s: event.time_s, end_s: end });
  });
  return out;
}

function stackedAlternate(manifest) {
  return (manifest.alternates || []).find((a) => a.alpha_layout === "stacked" && a.has_alpha);
}

export class AvatarPlayer {
  constructor(canvas, manifest, files, atlas) {
    this.canvas = canvas;
    this.manifest = manifest;
    this.files = files;
    this.atlas = atlas;
    this.ctx = canvas.getContext("2d");
    canvas.width = manifest.canvas.width;
    canvas.height = manifest.canvas.height;
    this.cells = Object.fromEntries(manifest.visemes.visemes.map((c) => [c.name, c]));
    this.audio = null;
    this.timeline = [];
    this.mode = "idle";
    this.video = null;
    this.stacked = false;
    this._tick = this._tick.bind(this);
    this._frame = null;
  }

  static async load(canvas, avatar) {
    if (!avatar || !avatar.manifest || !avatar.files) throw new Error("this avatar has no pack");
    const manifest = await (await fetch(avatar.manifest.url)).json();
    const major = parseInt(String(manifest.manifest_version).split(".")[0], 10);
    if (major !== SUPPORTED_MAJOR) throw new Error("unsupported manifest version " + manifest.manifest_version);
    const url = (name) => (avatar.files[name] || {}).url;
    const atlas = await loadImage(url(manifest.visemes.file));
    const player = new AvatarPlayer(canvas, manifest, avatar.files, atlas);
    player._prepareIdle(url);
    player._drawCell("sil");
    return player;
  }

  _prepareIdle(url) {
    const video = document.createElement("video");
    video.muted = true;
    video.loop = true;
    video.playsInline = true;
    const alternate = stackedAlternate(this.manifest);
    const vp9 = video.canPlayType('video/webm; codecs="vp9"');
    if (!vp9 && alternate && url(alternate.file)) {
      video.src = url(alternate.file);
      this.stacked = true;
      this.scratch = document.createElement("canvas");
      this.scratch.width = this.manifest.canvas.width;
      this.scratch.height = this.manifest.canvas.height * 2;
    } else {
      video.src = url(this.manifest.idle.file);
    }
    this.video = video;
  }

  playIdle() {
    this.mode = "idle";
    this.canvas.dataset.mode = "idle";
    const started = this.video.play();
    if (started && started.catch) started.catch(() => {});
    this._schedule();
  }

  stop() {
    if (this._frame !== null) cancelAnimationFrame(this._frame);
    this._frame = null;
    if (this.audio) this.audio.pause();
    if (this.video) this.video.pause();
  }

  /** Lip-sync `audioUrl` with `timeline`; resolves when the audio ends (then back to idle). */
  speak(audioUrl, timeline) {
    if (this.audio) this.audio.pause();
    const audio = new Audio(audioUrl);
    this.audio = audio;
    this.timeline = timeline;
    this.mode = "speaking";
    this.canvas.dataset.mode = "speaking";
    this._schedule();
    return new Promise((resolve, reject) => {
      audio.onended = () => {
        if (this.audio === audio) this.playIdle();
        resolve();
      };
      audio.onerror = () => {
        this.playIdle();
        reject(new Error("cannot play " + audioUrl));
      };
      audio.play().catch((err) => {
        this.playIdle();
        reject(err);
      });
    });
  }

  _schedule() {
    if (this._frame === null) this._frame = requestAnimationFrame(this._tick);
  }

  _tick() {
    this._frame = null;
    if (this.mode === "speaking" && this.audio) {
      this._drawCell(visemeAt(this.timeline, this.audio.currentTime));
    } else if (this.video && this.video.readyState >= 2) {
      this._drawIdle();
    }
    this._schedule();
  }

  _drawCell(name) {
    const cell = this.cells[name] || this.cells.sil;
    const { width, height } = this.canvas;
    this.ctx.clearRect(0, 0, width, height);
    this.ctx.drawImage(this.atlas, cell.x, cell.y, cell.width, cell.height, 0, 0, width, height);
    this.canvas.dataset.viseme = cell.name;
  }

  _drawIdle() {
    const { width, height } = this.canvas;
    this.canvas.dataset.viseme = "";
    if (!this.stacked) {
      this.ctx.clearRect(0, 0, width, height);
      this.ctx.drawImage(this.video, 0, 0, width, height);
      return;
    }
    // Stacked alpha: the top half is colour, the bottom half the alpha as grey.
    const scratch = this.scratch.getContext("2d", { willReadFrequently: true });
    scratch.drawImage(this.video, 0, 0, width, height * 2);
    const colour = scratch.getImageData(0, 0, width, height);
    const alpha = scratch.getImageData(0, height, width, height).data;
    const px = colour.data;
    for (let i = 0; i < px.length; i += 4) px[i + 3] = alpha[i];
    this.ctx.putImageData(colour, 0, 0);
  }
}
