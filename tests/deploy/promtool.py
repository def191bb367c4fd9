"""`promtool check metrics` for Prometheus exposition text, with promtool fetched from the distro archive.

Reusable: ``check_metrics(text)`` returns promtool's findings (empty = clean), e.g. on each service's real
``/metrics`` output. promtool comes from the Debian/Ubuntu ``prometheus`` package (``apt-get download`` +
``dpkg-deb -x``, no install, no root needed for the download itself) and is cached under
``var/tools/prometheus`` (gitignored). If it cannot be obtained the caller fails loudly; set
``AVATARFLOW_SKIP_PROMTOOL=1`` to skip instead (machines without apt access).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOLS_DIR = Path(os.environ.get("AVATARFLOW_TOOLS_DIR", REPO / "var" / "tools"))
SKIP_ENV = "AVATARFLOW_SKIP_PROMTOOL"


class PromtoolUnavailable(RuntimeError):
    """promtool could not be found or fetched."""


def _extracted_path() -> Path:
    return TOOLS_DIR / "prometheus" / "usr" / "bin" / "promtool"


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def fetch_promtool() -> Path:
    """Path to a working promtool: $PROMTOOL, then PATH, then the cache, then apt-get download."""
    for candidate in (os.environ.get("PROMTOOL"), shutil.which("promtool"), str(_extracted_path())):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        raise PromtoolUnavailable("promtool not found and apt-get/dpkg-deb are not available to fetch it")
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=TOOLS_DIR) as download_dir:
        workdir = Path(download_dir)
        result = _run(["apt-get", "download", "prometheus"], workdir)
        if result.returncode != 0:
            # Package lists may be missing on a fresh image; refresh once (needs root), then retry.
            _run(["apt-get", "update"], workdir)
            result = _run(["apt-get", "download", "prometheus"], workdir)
        debs = sorted(workdir.glob("prometheus_*.deb"))
        if result.returncode != 0 or not debs:
            raise PromtoolUnavailable(f"apt-get download prometheus failed: {result.stderr.strip()[-500:]}")
        target = TOOLS_DIR / "prometheus"
        extract = _run(["dpkg-deb", "-x", str(debs[-1]), str(target)], workdir)
        if extract.returncode != 0:
            raise PromtoolUnavailable(f"dpkg-deb -x failed: {extract.stderr.strip()}")
    promtool = _extracted_path()
    if not promtool.is_file():
        raise PromtoolUnavailable(f"the prometheus package has no {promtool.relative_to(TOOLS_DIR)}")
    return promtool


def promtool_or_fail() -> Path:
    """For tests: promtool, or skip (only with AVATARFLOW_SKIP_PROMTOOL=1), or fail loudly."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1")
    try:
        return fetch_promtool()
    except PromtoolUnavailable as exc:
        pytest.fail(f"promtool is required for the metrics checks: {exc} (set {SKIP_ENV}=1 to skip)")


def check_metrics(text: str, promtool: Path | None = None) -> list[str]:
    """Run `promtool check metrics` on exposition text; return its findings (empty list = clean).

    promtool lints names, types, HELP, units and suffixes; any finding is returned, one per line.
    """
    tool = promtool or fetch_promtool()
    result = subprocess.run(
        [str(tool), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    findings = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    if result.returncode != 0 and not findings:
        findings = [f"promtool exited with {result.returncode}"]
    return findings
