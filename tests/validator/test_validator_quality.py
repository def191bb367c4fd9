"""The quality bar on the shared labelled set: one pass, one Validator, plus the Haar baseline."""

from __future__ import annotations

from pathlib import Path

from avatarflow_validator.core import Validator
from avatarflow_validator.evaluation import Decision, HaarBaseline, decide_all, read_labels, score


def test_validator_meets_the_quality_bar_and_beats_haar(validator: Validator, shared_dir: Path) -> None:
    labels_path = shared_dir / "avatar-images" / "labels.csv"
    labels = read_labels(labels_path)

    def ours(file: str, data: bytes) -> Decision:
        outcome = validator.validate_bytes(data)
        return Decision(file, outcome.accepted, tuple(str(r) for r in outcome.reasons))

    report = score(labels, decide_all(labels, labels_path.parent, ours))
    assert report.decision_accuracy >= 0.95, report.mistakes
    assert report.reason_accuracy >= 0.90, report.mistakes
    assert report.false_reject_rate <= 0.05, report.mistakes
    baseline = score(labels, decide_all(labels, labels_path.parent, HaarBaseline().decide))
    assert report.decision_accuracy > baseline.decision_accuracy
