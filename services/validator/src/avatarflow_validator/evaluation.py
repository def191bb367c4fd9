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


@dataclass(frozen=True)
class Decision:
    file: str
    accepted: bool
    reasons: tuple[str, ...]


def read_labels(path: Path) -> list[Label]:
    with path.open(newline="") as handle:
        return [
            Label(
                file=row["file"],
                expected=row["expected"].strip(),
                reasons=frozenset(r for r in row.get("reasons", "").split(";") if r),
            )
            for row in csv.DictReader(handle)
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


def decide_all(labels: list[Label], folder: Path, decide: Callable[[str, bytes], Decision]) -> dict[str, Decision]:
    return {label.file: decide(label.file, (folder / label.file).read_bytes()) for label in labels}


def format_report(name: str, report: Report) -> str:
    r = report
    lines = [
        f"== {name} ==",
        f"decision accuracy          {r.decision_accuracy:6.1%}  ({r.decisions_right}/{r.total})",
        f"reason accuracy on rejects {r.reason_accuracy:6.1%}  ({r.reasons_right}/{r.rejects})",
        f"false rejects of good      {r.false_reject_rate:6.1%}  ({r.good_rejected}/{r.good})",
        f"{'reason':18s} {'hit':>4s} {'missed':>6s} {'extra':>5s}",
    ]
    for code in sorted(report.confusion):
        hit, missed, extra = report.confusion[code]
        lines.append(f"{code:18s} {hit:4d} {missed:6d} {extra:5d}")
    lines.append(f"mistakes ({len(report.mistakes)}):")
    lines.extend(f"  {m}" for m in report.mistakes)
    return "\n".join(lines)
