"""The development corpus manifest, its rebuild from pinned commits, and grouped cross-validation folds.

None of these tests needs the corpus images (they are not committed): the manifest is checked as
data, the rebuild runs against a throwaway git repository, the folds against the manifest's labels.
"""

from __future__ import annotations

import csv
import hashlib
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from avatarflow_contracts import ReasonCode
from avatarflow_validator.corpus import (
    MANIFEST,
    RESERVED_REPOSITORIES,
    Source,
    git_mirror_fetcher,
    read_manifest,
    rebuild,
)
from avatarflow_validator.evaluation import (
    Decision,
    Label,
    cross_validate,
    grouped_folds,
    read_labels,
)


def test_manifest_is_a_large_labelled_corpus_from_many_pinned_repositories() -> None:
    entries = read_manifest()
    assert len(entries) >= 600
    assert len({e.file for e in entries}) == len(entries)
    assert len({e.sha256 for e in entries}) == len(entries), "the same image twice"
    repos = Counter(e.source.repo for e in entries)
    assert len(repos) >= 15
    assert not set(repos) & RESERVED_REPOSITORIES, "images from repositories reserved for acceptance"
    codes = {c.value for c in ReasonCode}
    for entry in entries:
        assert entry.expected in {"accept", "reject", "either"}, entry.file
        assert len(entry.sha256) == 64 and int(entry.sha256, 16) >= 0, entry.file
        assert entry.licence and entry.notes, entry.file
        assert set(entry.reasons) <= codes, entry.file
        assert bool(entry.reasons) == (entry.expected == "reject"), entry.file
    per_code = Counter(code for e in entries for code in e.reasons)
    for code, least in {
        "no_face": 100,
        "mouth_occluded": 60,
        "low_resolution": 40,
        "multiple_faces": 20,
        "not_frontal": 8,
        "eyes_occluded": 5,
        "features_missing": 5,
    }.items():
        assert per_code[code] >= least, (code, per_code[code])
    assert Counter(e.expected for e in entries)["accept"] >= 150


def test_manifest_reads_as_evaluation_labels_grouped_by_repository() -> None:
    labels = read_labels(MANIFEST)
    entries = {e.file: e for e in read_manifest()}
    assert len(labels) == len(entries)
    for label in labels:
        assert label.group == entries[label.file].source.repo
        assert label.reasons == frozenset(entries[label.file].reasons)


def test_source_parsing_needs_a_full_commit() -> None:
    source = Source.parse("owner/repo@" + "a" * 40 + ":dir/some file.jpg")
    assert (source.repo, source.path) == ("owner/repo", "dir/some file.jpg")
    assert str(source) == "owner/repo@" + "a" * 40 + ":dir/some file.jpg"
    for bad in ("owner/repo@main:x.jpg", "repo@" + "a" * 40 + ":x.jpg", "owner/repo:x.jpg"):
        with pytest.raises(ValueError):
            Source.parse(bad)


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout.strip()


def test_rebuild_takes_the_pinned_bytes_and_refuses_changed_ones(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q")
    (work / "img").mkdir()
    (work / "img" / "a.png").write_bytes(b"first version")
    (work / "img" / "b.png").write_bytes(b"bytes b")
    _git(work, "add", ".")
    _git(work, "commit", "-qm", "one")
    pinned = _git(work, "rev-parse", "HEAD")
    (work / "img" / "a.png").write_bytes(b"changed later")
    _git(work, "commit", "-qam", "two")
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(mirrors / "owner+repo"))

    manifest = tmp_path / "manifest.csv"
    rows = [
        ("a.png", hashlib.sha256(b"first version").hexdigest(), "img/a.png"),
        ("b.png", hashlib.sha256(b"something else").hexdigest(), "img/b.png"),  # wrong checksum
        ("c.png", hashlib.sha256(b"x").hexdigest(), "img/missing.png"),
    ]
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "expected", "reasons", "warnings", "source", "licence", "sha256", "notes"])
        for file, digest, path in rows:
            writer.writerow([file, "accept", "", "", f"owner/repo@{pinned}:{path}", "MIT", digest, "test"])

    dest = tmp_path / "images"
    report = rebuild(read_manifest(manifest), dest, [git_mirror_fetcher(mirrors)])
    assert report.written == 1 and report.present == 0
    assert (dest / "a.png").read_bytes() == b"first version"  # the pinned commit, not the newer one
    assert not (dest / "b.png").exists() and not (dest / "c.png").exists()
    assert len(report.failed) == 2
    assert "does not match" in next(f for f in report.failed if f.startswith("b.png"))
    again = rebuild(read_manifest(manifest), dest, [git_mirror_fetcher(mirrors)])
    assert again.present == 1 and again.written == 0


def test_grouped_folds_never_split_a_repository_and_score_each_fold_alone() -> None:
    labels = read_labels(MANIFEST)
    folds = grouped_folds(labels, 5)
    assert len(folds) == 5
    assert sorted(label.file for fold in folds for label in fold) == sorted(label.file for label in labels)
    owner: dict[str, int] = {}
    for index, fold in enumerate(folds):
        for label in fold:
            assert owner.setdefault(label.group, index) == index, f"{label.group} is in two folds"
    sizes = [len(fold) for fold in folds]
    largest_group = max(Counter(label.group for label in labels).values())
    assert max(sizes) - min(sizes) <= largest_group
    assert grouped_folds(labels, 5) == folds  # deterministic

    # A method right on every image of fold 1 and wrong on every other: per-fold figures show it.
    first = {label.file for label in folds[0]}

    def verdict(label: Label) -> Decision:
        right = label.file in first
        accept = (label.expected != "reject") == right
        reasons = tuple(sorted(label.reasons)) if right and not accept else ("no_face",) if not accept else ()
        return Decision(label.file, accept, reasons)

    decisions = {label.file: verdict(label) for label in labels}
    cv = cross_validate(folds, decisions)
    assert cv.folds[0].decision_accuracy == 1.0
    assert cv.worst("decision_accuracy") < 1.0
    assert cv.mean("decision_accuracy") == pytest.approx(sum(r.decision_accuracy for r in cv.folds) / 5)


def test_synthetic_copies_share_their_originals_group(tmp_path: Path) -> None:
    labels_csv = tmp_path / "labels.csv"
    labels_csv.write_text(
        "file,expected,reasons,warnings,source,notes\n"
        "a.jpg,accept,,,own/one@" + "b" * 40 + ":x.jpg,n\n"
        "blur_a.jpg,reject,blurry,,synthetic from a.jpg,n\n"
        "c.jpg,accept,,,,n\n"
    )
    groups = {label.file: label.group for label in read_labels(labels_csv)}
    assert groups == {"a.jpg": "own/one", "blur_a.jpg": "own/one", "c.jpg": "file:c.jpg"}
