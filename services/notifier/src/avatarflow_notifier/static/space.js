// End-user view: the space's current avatar and nothing else (public endpoint, no credentials).
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("avatarflow-config").textContent);
  const video = document.getElementById("avatar-video");
  const img = document.getElementById("avatar-poster");
  fetch("/v1/public/spaces/" + encodeURIComponent(config.spaceId) + "/avatar", { cache: "no-store" })
    .then((r) => r.json())
    .then((avatar) => {
      document.body.dataset.avatarKind = avatar.kind;
      if (avatar.poster) { img.src = avatar.poster.url; img.hidden = false; }
      if (avatar.idle_loop) {
        video.src = avatar.idle_loop.url;
        if (avatar.poster) video.poster = avatar.poster.url;
        video.hidden = false; img.hidden = true;
        video.onerror = () => { video.hidden = true; img.hidden = !avatar.poster; };
      }
      document.body.dataset.loaded = "1";
    })
    .catch(() => { document.body.dataset.loaded = "error"; });
})();
