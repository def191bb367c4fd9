"""The validator's public pre-check is metered and kept apart from the pipeline (issue 19 item 3):
per-editor rate limit (429 + Retry-After), a bounded pool of its own (503 at once beyond it), and
/healthz stays fast during a burst of large pre-checks (it went from 5 ms to 5.2 s)."""

from __future__ import annotations

import io
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from avatarflow_runtime.auth import mint_token
from PIL import Image

from avatarflow.devstack import StackEndpoints
from avatarflow.devstack.processes import ServiceProcess

pytestmark = pytest.mark.integration
SECRET = secrets.token_urlsafe(32)
RATE_LIMIT = 3
WORKERS, QUEUE = 1, 2


@pytest.fixture(scope="module")
def validator(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    env = {
        **stack.service_env(),
        "AVATARFLOW_JWT_SECRET": SECRET,
        "AVATARFLOW_VALIDATOR_PRECHECK_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
        "AVATARFLOW_VALIDATOR_PRECHECK_WORKERS": str(WORKERS),
        "AVATARFLOW_VALIDATOR_PRECHECK_QUEUE": str(QUEUE),
    }
    proc = ServiceProcess("validator", env, tmp_path_factory.mktemp("validator") / "validator.log").start()
    yield proc
    proc.stop()


def precheck(proc: ServiceProcess, editor: str, data: bytes, name: str = "a.jpg") -> httpx.Response:
    token = mint_token(SECRET, subject=editor, space_id="s-limits")
    return httpx.post(
        f"{proc.base_url}/v1/spaces/s-limits/precheck",
        headers={"authorization": f"Bearer {token}"},
        files={"file": (name, data, "application/octet-stream")},
        timeout=300,
    )


def large_png(side: int = 6000) -> bytes:
    """A 36 MP PNG (no draft decoding for PNG: the whole image is decoded), smooth so it stays small."""
    ramp = np.linspace(0, 255, side, dtype=np.uint8)
    rgb = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], ramp[None, ::-1]), axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def test_precheck_is_rate_limited_per_editor(validator: ServiceProcess, shared_dir: Path) -> None:
    image = (shared_dir / "avatar-images" / "accept_photo__bald-man-white-bg.jpg").read_bytes()
    answers = [precheck(validator, "busy-editor", image) for _ in range(RATE_LIMIT + 1)]
    assert [a.status_code for a in answers] == [200] * RATE_LIMIT + [429], [a.text[:200] for a in answers]
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert set(answers[-1].json()) == {"error", "detail"} and answers[-1].json()["error"] == "rate_limited"
    assert precheck(validator, "calm-editor", image).status_code == 200  # another editor is unaffected


def test_a_burst_of_large_prechecks_is_bounded_and_healthz_stays_fast(validator: ServiceProcess) -> None:
    data = large_png()
    assert len(data) < 20 * 1024 * 1024
    # Steady state, as on a running stack: the pre-check worker has run once (first-use costs paid).
    assert precheck(validator, "warm-up", data, "big.png").status_code == 200
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        # curl in its own process times the request itself: this test process's threads (16 clients)
        # compete for its GIL, and that is not the validator's latency.
        while not stop.is_set():
            done = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", f"{validator.base_url}/healthz"],
                capture_output=True,
                text=True,
                timeout=30,
            )
            code, seconds = done.stdout.split()
            assert code == "200", done.stdout
            latencies.append(float(seconds))
            time.sleep(0.05)

    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda i: precheck(validator, f"burst-{i}", data, "big.png"), range(16)))
    finally:
        stop.set()
        prober.join(timeout=30)
    codes = [a.status_code for a in answers]
    assert set(codes) <= {200, 503}, [a.text[:200] for a in answers]
    assert WORKERS + QUEUE <= codes.count(200) < len(codes) and codes.count(503) >= 1, codes
    assert all(int(a.headers["retry-after"]) >= 1 for a in answers if a.status_code == 503)
    assert all(a.json()["decision"] in {"accept", "reject"} for a in answers if a.status_code == 200)
    worst = max(latencies)
    print(
        f"healthz during 16 concurrent 36 MP pre-checks ({len(data)} bytes): n={len(latencies)} "
        f"median={sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms max={worst * 1000:.0f} ms codes={codes}"
    )
    assert len(latencies) >= 5 and worst < 0.5, sorted(latencies)[-5:]  # before: 5.2 s
