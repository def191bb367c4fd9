"""Score validator decisions against a labelled set (labels.csv format), ours and a Haar baseline."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from avatarflow_imaging import ImageError, decode_image


@dataclass(frozen=True)
class Label:
    file: str
    expected: str  # accept | reject | either
    reasons: frozenset[str]
    # The source repository (owner/name) for grouped cross-validation; a synthetic copy belongs
    # to its original's group; a file with no source is a group of its own.
    group: str = ""


@dataclass(frozen=True)
class Decision:
    file: str
    accepted: bool
    reasons: tuple[str, ...]


def source_group(source: str) -> str:
    """``owner/repo`` of an ``owner/repo@commit:path`` source, else ''."""
    head = source.strip().split("@", 1)[0]
    return head if "@" in source and head.count("/") == 1 else ""


def read_labels(path: Path) -> list[Label]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    groups = {row["file"]: source_group(row.get("source") or "") for row in rows}
    for row in rows:
        source = (row.get("source") or "").strip()
        if not groups[row["file"]] and source.startswith("synthetic from "):
            groups[row["file"]] = groups.get(source.removeprefix("synthetic from ").strip(), "")
    return [
        Label(
            file=row["file"],
            expected=row["expected"].strip(),
            reasons=frozenset(r for r in (row.get("reasons") or "").split(";") if r),
            group=groups[row["file"]] or "file:" + row["file"],
        )
        for row in rows
    ]


@dataclass
class Report:
    total: int = 0
    decisions_right: int = 0
    rejects: int = 0
    reasons_right: int = 0
    good: int = 0
    good_rejected: int = 0
    # per reason code: [labelled and reported, labelled not reported, reported not labelled]
    confusion: dict[str, list[int]] = field(default_factory=dict)
    mistakes: list[str] = field(default_factory=list)

    @property
    def decision_accuracy(self) -> float:
        return self.decisions_right / self.total if self.total else 0.0

    @property
    def reason_accuracy(self) -> float:
        return self.reasons_right / self.rejects if self.rejects else 0.0

    @property
    def false_reject_rate(self) -> float:
        return self.good_rejected / self.good if self.good else 0.0

    def per_code_recall(self) -> dict[str, float]:
        """Per reason code: share of the images labelled with it that report it (target >= 0.8)."""
        return {code: hit / (hit + missed) for code, (hit, missed, _) in self.confusion.items() if hit + missed}

    def totals(self) -> dict[str, float | int]:
        return {
            "images": self.total,
            "decision_accuracy": round(self.decision_accuracy, 4),
            "reason_accuracy_on_rejects": round(self.reason_accuracy, 4),
            "false_reject_rate_on_good": round(self.false_reject_rate, 4),
        }


def score(labels: Iterable[Label], decisions: dict[str, Decision]) -> Report:
    report = Report()
    for label in labels:
        decision = decisions[label.file]
        report.total += 1
        reported = set(decision.reasons)
        verdict = "accept" if decision.accepted else "reject"
        right = label.expected == "either" or label.expected == verdict
        if label.expected == "accept":
            report.good += 1
            report.good_rejected += int(not decision.accepted)
        if label.expected == "reject":
            report.rejects += 1
            reason_right = right and bool(reported & label.reasons)
            report.reasons_right += int(reason_right)
            right = reason_right
            for code in label.reasons | reported:
                row = report.confusion.setdefault(code, [0, 0, 0])
                row[0 if code in label.reasons and code in reported else 1 if code in label.reasons else 2] += 1
        elif not decision.accepted:
            for code in reported:
                report.confusion.setdefault(code, [0, 0, 0])[2] += 1
        report.decisions_right += int(label.expected == "either" or label.expected == verdict)
        if not right:
            report.mistakes.append(
                f"{label.file}: expected {label.expected}"
                f"{' (' + ';'.join(sorted(label.reasons)) + ')' if label.reasons else ''}, got {verdict}"
                f"{' (' + ';'.join(decision.reasons) + ')' if decision.reasons else ''}"
            )
    return report


class HaarBaseline:
    """OpenCV's bundled frontal-face Haar cascade: exactly one face -> accept."""

    def __init__(self) -> None:
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))

    def decide(self, file: str, data: bytes) -> Decision:
        try:
            rgb = decode_image(data, max_long_side=1024).rgb
        except ImageError:
            return Decision(file, False, ("unreadable_image",))
        grey = cv2.equalizeHist(cv2.cvtColor(np.asarray(rgb), cv2.COLOR_RGB2GRAY))
        faces = self._cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        count = len(faces)
        if count == 1:
            return Decision(file, True, ())
        return Decision(file, False, ("no_face",) if count == 0 else ("multiple_faces",))


def grouped_folds(labels: list[Label], k: int) -> list[list[Label]]:
    """Split into ``k`` folds by group (source repository): no group is ever in two folds.

    Largest groups first, each into the fold with the fewest images so far (ties: lowest index),
    so the split is deterministic and as even as whole groups allow.
    """
    by_group: dict[str, list[Label]] = {}
    for label in labels:
        by_group.setdefault(label.group, []).append(label)
    k = max(1, min(k, len(by_group)))
    folds: list[list[Label]] = [[] for _ in range(k)]
    for _, members in sorted(by_group.items(), key=lambda item: (-len(item[1]), item[0])):
        min(folds, key=len).extend(members)
    return folds


@dataclass(frozen=True)
class CrossValidation:
    """Per-fold reports for one decision method; each fold is scored on groups it never saw."""

    folds: list[Report]

    def mean(self, metric: str) -> float:
        return sum(getattr(r, metric) for r in self.folds) / len(self.folds) if self.folds else 0.0

    def worst(self, metric: str) -> float:
        values = [getattr(r, metric) for r in self.folds]
        if not values:
            return 0.0
        return max(values) if metric == "false_reject_rate" else min(values)

    def totals(self) -> dict[str, float]:
        return {
            f"{kind}_{metric}": round(getattr(self, kind)(metric), 4)
            for metric in ("decision_accuracy", "reason_accuracy", "false_reject_rate")
            for kind in ("mean", "worst")
        }


def cross_validate(folds: list[list[Label]], decisions: dict[str, Decision]) -> CrossValidation:
    return CrossValidation([score(fold, decisions) for fold in folds])


def format_cross_validation(folds: list[list[Label]], results: dict[str, CrossValidation]) -> str:
    names = list(results)
    lines = [f"== grouped cross-validation: {len(folds)} folds split by source repository =="]
    for index, fold in enumerate(folds):
        groups = sorted({label.group for label in fold})
        cells = "  ".join(
            f"{name}: {r.decision_accuracy:6.1%} dec {r.reason_accuracy:6.1%} rsn {r.false_reject_rate:6.1%} fr"
            for name, r in ((n, results[n].folds[index]) for n in names)
        )
        lines.append(f"fold {index + 1} ({len(fold)} images, {len(groups)} repos) {cells}")
        lines.append(f"    repos: {', '.join(groups)}")
    for kind in ("mean", "worst"):
        cells = "  ".join(
            f"{name}: {getattr(cv, kind)('decision_accuracy'):6.1%} dec "
            f"{getattr(cv, kind)('reason_accuracy'):6.1%} rsn "
            f"{getattr(cv, kind)('false_reject_rate'):6.1%} fr"
            for name, cv in results.items()
        )
        lines.append(f"{kind:5s} {cells}")
    return "\n".join(lines)


def decide_all(labels: list[Label], folder: Path, decide: Callable[[str, bytes], Decision]) -> dict[str, Decision]:
    return {label.file: decide(label.file, (folder / label.file).read_bytes()) for label in labels}


def format_report(name: str, report: Report) -> str:
    r = report
    lines = [
        f"== {name} ==",
        f"decision accuracy          {r.decision_accuracy:6.1%}  ({r.decisions_right}/{r.total})",
        f"reason accuracy on rejects {r.reason_accuracy:6.1%}  ({r.reasons_right}/{r.rejects})",
        f"false rejects of good      {r.false_reject_rate:6.1%}  ({r.good_rejected}/{r.good})",
        f"{'reason':18s} {'hit':>4s} {'missed':>6s} {'extra':>5s} {'recall':>7s}",
    ]
    recall = report.per_code_recall()
    for code in sorted(report.confusion):
        hit, missed, extra = report.confusion[code]
        shown = f"{recall[code]:7.1%}" if code in recall else f"{'-':>7s}"
        lines.append(f"{code:18s} {hit:4d} {missed:6d} {extra:5d} {shown}")
    lines.append(f"mistakes ({len(report.mistakes)}):")
    lines.extend(f"  {m}" for m in report.mistakes)
    return "\n".join(lines)
