"""The development corpus: a manifest of labelled images pinned to public repositories, rebuilt on demand.

The images themselves are not committed (most source repositories state no licence for their
pictures, and many show people): ``services/validator/corpus/manifest.csv`` records each one's
``owner/repo@commit:path``, the repository's licence, its SHA-256 and its label, and
``avatarctl corpus-fetch`` rebuilds the folder from the pinned commits, refusing any file whose
bytes do not match. See docs/validation.md.
"""

from __future__ import annotations

import csv
import hashlib
import re
import subprocess
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

MANIFEST = Path(__file__).resolve().parents[2] / "corpus" / "manifest.csv"
DEFAULT_IMAGES = MANIFEST.parent / "images"

# Kept for acceptance by the issue that asked for this corpus: never take images from them.
RESERVED_REPOSITORIES = frozenset(
    {
        "TencentARC/GFPGAN",
        "bryandlee/animegan2-pytorch",
        "cleardusk/3DDFA",
        "raspberrypilearning/lego-robot-face",
        "tencent-ailab/IP-Adapter",
        "3003mgf/Wall-E-MGF",
        "AIZOOTech/FaceMaskDetection",
        "InstantID/InstantID",
        "Li-Chongyi/Zero-DCE",
        "Linzaer/Ultra-Light-Fast-Generic-Face-Detector-1MB",
        "X-zhangyang/Real-World-Masked-Face-Dataset",
        "YadiraF/DECA",
        "hnuzhy/DirectMHP",
        "hollance/BlazeFace-PyTorch",
        "hysts/anime-face-detector",
        "mchong6/JoJoGAN",
        "rabiaa1001/Hijjab_vs_No_Hijjab",
        "sczhou/CodeFormer",
        "shreyas0906/Selfies-with-sunglasses",
        "williamyang1991/VToonify",
        "xunhuang1995/AdaIN-style",
        "scikit-image/scikit-image",
    }
)

_SOURCE = re.compile(r"^(?P<repo>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)@(?P<commit>[0-9a-f]{40}):(?P<path>[^\s].*)$")


@dataclass(frozen=True)
class Source:
    repo: str  # owner/name
    commit: str  # 40 hex digits
    path: str

    @classmethod
    def parse(cls, text: str) -> Source:
        match = _SOURCE.match(text.strip())
        if not match:
            raise ValueError(f"not owner/repo@commit:path: {text!r}")
        return cls(match["repo"], match["commit"], match["path"])

    def __str__(self) -> str:
        return f"{self.repo}@{self.commit}:{self.path}"


@dataclass(frozen=True)
class CorpusEntry:
    file: str
    expected: str
    reasons: tuple[str, ...]
    source: Source
    licence: str
    sha256: str
    notes: str


def read_manifest(path: Path = MANIFEST) -> list[CorpusEntry]:
    with path.open(newline="") as handle:
        return [
            CorpusEntry(
                file=row["file"],
                expected=row["expected"],
                reasons=tuple(r for r in row["reasons"].split(";") if r),
                source=Source.parse(row["source"]),
                licence=row["licence"],
                sha256=row["sha256"],
                notes=row["notes"],
            )
            for row in csv.DictReader(handle)
        ]


Fetcher = Callable[[Source], bytes]


def git_mirror_fetcher(root: Path) -> Fetcher:
    """Read from local bare clones laid out as ``root/<owner>+<name>/repo`` (or ``.../<owner>+<name>``)."""

    def fetch(source: Source) -> bytes:
        base = root / source.repo.replace("/", "+")
        git_dir = base / "repo" if (base / "repo").exists() else base
        result = subprocess.run(
            ["git", "--git-dir", str(git_dir), "show", f"{source.commit}:{source.path}"],
            capture_output=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise LookupError(result.stderr.decode(errors="replace").strip() or "git show failed")
        return result.stdout

    return fetch


def github_raw_fetcher(timeout_s: float = 30.0) -> Fetcher:
    """Download the pinned file from raw.githubusercontent.com (the commit pins its bytes)."""

    def fetch(source: Source) -> bytes:
        url = f"https://raw.githubusercontent.com/{source.repo}/{source.commit}/{urllib.request.quote(source.path)}"
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return bytes(response.read())

    return fetch


@dataclass
class RebuildReport:
    written: int = 0
    present: int = 0
    failed: list[str] = field(default_factory=list)


def rebuild(entries: Iterable[CorpusEntry], dest: Path, fetchers: list[Fetcher]) -> RebuildReport:
    """Write every entry's image to ``dest/file``; each fetcher is tried in turn; bytes must match sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    report = RebuildReport()
    for entry in entries:
        target = dest / entry.file
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == entry.sha256:
            report.present += 1
            continue
        problems: list[str] = []
        for fetch in fetchers:
            try:
                data = fetch(entry.source)
            except Exception as exc:  # any fetch failure: try the next way, then report it
                problems.append(f"{type(exc).__name__}: {exc}")
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest != entry.sha256:
                problems.append(f"sha256 {digest[:12]}... does not match {entry.sha256[:12]}...")
                continue
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(data)
            partial.replace(target)
            report.written += 1
            break
        else:
            report.failed.append(f"{entry.file} ({entry.source}): {'; '.join(problems) or 'no fetcher'}")
    return report
