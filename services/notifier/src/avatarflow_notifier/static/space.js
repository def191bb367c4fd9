// End-user view: the space's current avatar and nothing else (public endpoint, no credentials).
// A custom avatar plays through the web player (idle loop; "Say hello" speaks, lip-synced in real
// time from the viseme atlas); otherwise the poster / idle video.
import { AvatarPlayer } from "/static/avatar-player.js";

const config = JSON.parse(document.getElementById("avatarflow-config").textContent);
const video = document.getElementById("avatar-video");
const img = document.getElementById("avatar-poster");
const canvas = document.getElementById("avatar-canvas");
const talk = document.getElementById("talk");

function showStill(avatar) {
  if (avatar.poster) { img.src = avatar.poster.url; img.hidden = false; }
  if (avatar.idle_loop) {
    video.src = avatar.idle_loop.url;
    if (avatar.poster) video.poster = avatar.poster.url;
    video.hidden = false; img.hidden = true;
    video.onerror = () => { video.hidden = true; img.hidden = !avatar.poster; };
  }
}

async function main() {
  const response = await fetch("/v1/public/spaces/" + encodeURIComponent(config.spaceId) + "/avatar", { cache: "no-store" });
  const avatar = await response.json();
  document.body.dataset.avatarKind = avatar.kind;
  if (avatar.kind === "custom" && avatar.manifest && avatar.files) {
    try {
      const player = await AvatarPlayer.load(canvas, avatar);
      canvas.hidden = false;
      player.playIdle();
      const preview = player.manifest.preview;
      talk.hidden = false;
      talk.onclick = () => { player.speak(avatar.files[preview.file].url, preview.timeline).catch(() => {}); };
      window.avatarflowPlayer = player;
      document.body.dataset.player = "ready";
    } catch (err) {
      document.body.dataset.player = "unavailable";
      showStill(avatar);
    }
  } else {
    showStill(avatar);
  }
  document.body.dataset.loaded = "1";
}

main().catch(() => { document.body.dataset.loaded = "error"; });
