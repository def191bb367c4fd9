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


def test_borderline_focus_accepts_with_soft_focus_and_blur_rejects(validator: Validator, shared_dir: Path) -> None:
    """Between the blur model's warning band and its cut a photo is accepted and the editor is told."""
    import io

    from avatarflow_contracts import ReasonCode, WarningCode
    from PIL import Image, ImageFilter

    assert validator.decision_model is not None
    (blur,) = [m for m in validator.decision_model.codes if m.name == "blurry"]
    assert blur.warn_at is not None and blur.warn_at < blur.reject_at
    sharp = Image.open(shared_dir / "avatar-images" / "accept_photo__man-suit-plain-bg.jpg").convert("RGB")
    seen: dict[str, list[float]] = {"soft": [], "blurry": [], "clean": []}
    for radius in (0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 8.0):
        buffer = io.BytesIO()
        (sharp.filter(ImageFilter.GaussianBlur(radius)) if radius else sharp).save(buffer, "JPEG", quality=92)
        outcome = validator.validate_bytes(buffer.getvalue())
        p = outcome.scores[blur.check_name]
        if p >= blur.reject_at:
            assert ReasonCode.BLURRY in outcome.reasons, radius
            assert WarningCode.SOFT_FOCUS not in outcome.warnings, radius  # the rejection says it
            seen["blurry"].append(p)
        elif p >= blur.warn_at:
            assert ReasonCode.BLURRY not in outcome.reasons, radius
            assert WarningCode.SOFT_FOCUS in outcome.warnings, radius
            seen["soft"].append(p)
        else:
            assert WarningCode.SOFT_FOCUS not in outcome.warnings, radius
            seen["clean"].append(p)
    assert all(seen.values()), seen  # the sweep crossed both bars
