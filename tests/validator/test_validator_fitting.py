"""Threshold fitting: decisions recomputed from checks match the validator's; the fit moves a threshold
only as far as the training images support, within its bounds; grouped CV scores held-out folds."""

from __future__ import annotations

from pathlib import Path

import pytest
from avatarflow_validator import fitting
from avatarflow_validator.core import Validator
from avatarflow_validator.evaluation import Label, grouped_folds, read_labels, score


def test_recomputed_decisions_are_the_validators_own(validator: Validator, shared_dir: Path) -> None:
    labels = read_labels(shared_dir / "avatar-images" / "labels.csv")
    picked = [label for label in labels if label.file.startswith(("accept_photo", "no_face", "mouth", "synthetic_t"))]
    assert len(picked) >= 20
    for label in picked:
        outcome = validator.validate_bytes((shared_dir / "avatar-images" / label.file).read_bytes())
        decision = fitting.redecide(fitting.record(label.file, outcome.checks), {})
        assert decision.accepted == outcome.accepted, label.file
        assert decision.reasons == tuple(str(r) for r in outcome.reasons), label.file


def _face(file: str, edge: float, confirmed: float = 0.99) -> fitting.Record:
    checks = (
        fitting.CheckRecord("face_present", "no_face", 0.99, 0.5, "<", "reject"),
        fitting.CheckRecord("face_edge_width", "blurry", edge, 1.6, ">", "reject"),
        fitting.CheckRecord("face_confirmed", "no_face", confirmed, 0.85, "<", "reject"),
        fitting.CheckRecord("background_edge_density", "busy_background", 0.2, 0.05, ">", "warning"),
    )
    return fitting.Record(file, checks)


def _corpus() -> tuple[list[Label], dict[str, fitting.Record]]:
    # Sharp photos measure 1.0-1.9 here (soft light), blurred ones 2.3-3.0: the hand-set 1.6 refuses good ones.
    sharp = [1.0 + 0.1 * i for i in range(10)]
    blurred = [2.3 + 0.1 * i for i in range(8)]
    labels: list[Label] = []
    records: dict[str, fitting.Record] = {}
    for i, edge in enumerate(sharp):
        name = f"sharp{i}.jpg"
        labels.append(Label(name, "accept", frozenset(), group=f"repo{i % 4}/a"))
        records[name] = _face(name, edge)
    for i, edge in enumerate(blurred):
        name = f"blur{i}.jpg"
        labels.append(Label(name, "reject", frozenset({"blurry"}), group=f"repo{i % 4}/a"))
        records[name] = _face(name, edge)
    return labels, records


def test_redecide_applies_thresholds_and_the_weak_detection_rule_only_when_nothing_else_fails() -> None:
    assert fitting.redecide(_face("a", 1.2), {}).accepted
    assert fitting.redecide(_face("a", 1.8), {}).reasons == ("blurry",)
    assert fitting.redecide(_face("a", 1.8), {"face_edge_width": 2.0}).accepted
    assert fitting.redecide(_face("a", 1.2, confirmed=0.7), {}).reasons == ("no_face",)
    assert fitting.redecide(_face("a", 1.8, confirmed=0.7), {}).reasons == ("blurry",)  # the more useful answer
    assert fitting.redecide(_face("a", 1.2, confirmed=0.7), {"face_confirmed": 0.6}).accepted


def test_fit_moves_a_threshold_into_the_gap_the_training_set_shows() -> None:
    labels, records = _corpus()
    before = score(labels, {f: fitting.redecide(r, {}) for f, r in records.items()})
    assert before.good_rejected == 3  # 1.7, 1.8, 1.9
    fitted = fitting.fit(labels, records)
    assert 1.9 <= fitted["face_edge_width"] < 2.3
    assert fitted["face_confirmed"] == 0.85  # nothing to gain: the hand-set value stays
    after = score(labels, {f: fitting.redecide(r, fitted) for f, r in records.items()})
    assert after.good_rejected == 0 and after.reasons_right == after.rejects


def test_fit_stays_inside_the_bounds() -> None:
    labels, records = _corpus()
    # Relabel every blurred image as acceptable: the fit would like no blur rule at all.
    relabelled = [Label(label.file, "accept", frozenset(), label.group) for label in labels]
    fitted = fitting.fit(relabelled, records)
    low, high = fitting.BOUNDS["face_edge_width"]
    assert low <= fitted["face_edge_width"] <= high
    assert fitted["face_edge_width"] == pytest.approx(high)


def test_cross_validated_fit_scores_each_held_out_fold() -> None:
    labels, records = _corpus()
    folds = grouped_folds(labels, 4)
    cv, fitted = fitting.cross_validate_fit(folds, records)
    assert len(cv.folds) == 4 and len(fitted) == 4
    assert [r.total for r in cv.folds] == [len(fold) for fold in folds]
    assert cv.mean("decision_accuracy") == 1.0  # the gap is the same in every fold
    for thresholds in fitted:
        assert 1.9 <= thresholds["face_edge_width"] < 2.3


def test_fit_can_restart_from_a_given_value_and_fit_only_chosen_thresholds() -> None:
    labels, records = _corpus()
    # Records decided at 2.1 already (as if fitted on these very images): restart from the old 1.6.
    moved = {
        f: fitting.Record(
            f,
            tuple(
                c
                if c.name != "face_edge_width"
                else fitting.CheckRecord(c.name, c.code, c.score, 2.1, c.fails_when, c.severity)
                for c in r.checks
            ),
        )
        for f, r in records.items()
    }
    assert fitting.fit(labels, moved, names=["face_edge_width"]) == {"face_edge_width": 2.1}  # ties keep it
    refit = fitting.fit(labels, moved, names=["face_edge_width"], start={"face_edge_width": 1.6})
    assert set(refit) == {"face_edge_width"} and 1.9 <= refit["face_edge_width"] < 2.3


def test_per_code_recall_counts_labelled_images_that_report_the_code() -> None:
    labels, records = _corpus()
    report = score(labels, {f: fitting.redecide(r, {}) for f, r in records.items()})
    assert report.per_code_recall() == {"blurry": 1.0}
    relaxed = score(labels, {f: fitting.redecide(r, {"face_edge_width": 2.6}) for f, r in records.items()})
    assert relaxed.per_code_recall()["blurry"] == pytest.approx(4 / 8)  # 2.7, 2.8, 2.9, 3.0 still fail
