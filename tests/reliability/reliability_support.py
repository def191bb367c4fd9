"""Shared constants and helpers of the reliability suite (a uniquely named module, not conftest)."""

from __future__ import annotations

import threading
import time

import psutil

# Per-editor upload limit on the shared ingest. Tests upload as distinct editors, except the
# rate-limit test, which goes past it on purpose.
RATE_LIMIT_PER_MINUTE = 20
# Documented worker memory caps (docs/reliability.md; matting: docs/matting.md "worker RSS <= 700 MB").
RSS_CAP_MB = {"validator": 500, "matting": 700}

ACCEPT_IMAGES = (
    "accept_photo__black-man-cap.jpg",
    "accept_photo__young-woman-scarf.jpg",
    "accept_photo__elderly-man-green-bg.jpg",
)
REJECT_IMAGES = (
    "no_face__surgical-mask-product.jpg",
    "eyes_occluded__man-dark-aviators.jpg",
    "low_resolution__black-man-150px.jpg",
    "eyes_occluded__man-black-sunglasses-closeup.jpg",
)


class RssSampler:
    """Samples the RSS of service processes in a background thread; keeps the peak per service."""

    def __init__(self, pids: dict[str, int], interval_s: float = 0.2) -> None:
        self.pids = pids
        self.interval_s = interval_s
        self.peak_mb: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval_s)

    def sample(self) -> None:
        for name, pid in self.pids.items():
            try:
                proc = psutil.Process(pid)
                rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            except psutil.Error:
                continue
            self.peak_mb[name] = max(self.peak_mb[name], rss / 1e6)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sample()
