"""One durable pipeline (Tansu on SeaweedFS, PostgreSQL, five service processes) for the reliability suite.

Every reliability module shares it (startup is 30-60 s on a 2-core machine); fault tests restore
what they break before they return. Measured figures are collected in ``reliability_figures`` and
written to test-artifacts/reliability-figures.json for docs/reliability.md.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from avatarflow.devstack.harness import PipelineHarness

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
REJECT_IMAGES = {
    "no_face__surgical-mask-product.jpg": "rejected",
    "eyes_occluded__man-dark-aviators.jpg": "rejected",
    "low_resolution__black-man-150px.jpg": "rejected",
}


@pytest.fixture(scope="session")
def harness(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineHarness]:
    workdir = tmp_path_factory.mktemp("reliability")
    pipeline = PipelineHarness(
        workdir, postgres_url, extra_env={"AVATARFLOW_INGEST_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE)}
    )
    try:
        pipeline.start()
        yield pipeline
    finally:
        pipeline.stop()


@pytest.fixture(scope="session")
def mixed_images(shared_dir: Path) -> list[Path]:
    """Small accept and reject images, interleaved: 3 avatars to make, 3 rejections."""
    folder = shared_dir / "avatar-images"
    rejects = list(REJECT_IMAGES)
    return [folder / name for pair in zip(ACCEPT_IMAGES, rejects, strict=True) for name in pair]


def expected_status(image_name: str) -> str:
    return "ready" if image_name.startswith("accept_") else REJECT_IMAGES.get(image_name, "rejected")


@pytest.fixture(scope="session")
def reliability_figures(artifacts_dir: Path) -> Iterator[dict[str, Any]]:
    figures: dict[str, Any] = {}
    try:
        yield figures
    finally:
        if figures:
            path = artifacts_dir / "reliability-figures.json"
            existing = json.loads(path.read_text()) if path.exists() else {}
            existing.update(figures)
            path.write_text(json.dumps(existing, indent=2, sort_keys=True, default=str))


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
