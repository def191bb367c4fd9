"""The fitted decision model: what it computes, how it is trained and cross-validated, and that the
validator applies the packaged one exactly as the evaluation recomputes it.

Synthetic records for training and cross-validation (fast, no corpus needed); the shared dev set
for the validator itself; the packaged model and its training manifest checked as data.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from avatarflow_validator import decision_training, fitting
from avatarflow_validator.bootstrap import open_validator
from avatarflow_validator.core import Validator
from avatarflow_validator.core import decision_model as dm
from avatarflow_validator.corpus import MANIFEST, RESERVED_REPOSITORIES, read_manifest
from avatarflow_validator.evaluation import Label, grouped_folds, read_labels, score

BLUR = decision_training.SPECS[0]


def _face(file: str, edge: float, iod: float = 80.0, noise: float = 6.0) -> fitting.Record:
    checks = (
        fitting.CheckRecord("face_present", "no_face", 0.99, 0.5, "<", "reject"),
        fitting.CheckRecord("inter_ocular_px", "low_resolution", iod, 32.0, "<", "reject"),
        fitting.CheckRecord("face_edge_width", "blurry", edge, 2.03, ">", "reject"),
        fitting.CheckRecord("face_blockiness", "blurry", 0.4, 0.75, ">", "reject"),
        fitting.CheckRecord("face_edge_width_soft", "soft_focus", edge, 1.6, ">", "warning"),
        fitting.CheckRecord("face_confirmed", "no_face", 1.0, 0.85, "<", "reject"),
    )
    return fitting.Record(file, checks, {"face_noise": noise})


def _corpus() -> tuple[list[Label], dict[str, fitting.Record]]:
    # Sharp faces 0.8-1.9 px, blurred 2.4-3.3 px, spread over 4 source repositories.
    labels: list[Label] = []
    records: dict[str, fitting.Record] = {}
    for i in range(12):
        name = f"sharp{i}.jpg"
        labels.append(Label(name, "accept", frozenset(), group=f"repo{i % 4}/a"))
        records[name] = _face(name, 0.8 + 0.1 * i)
    for i in range(8):
        name = f"blur{i}.jpg"
        labels.append(Label(name, "reject", frozenset({"blurry"}), group=f"repo{i % 4}/a"))
        records[name] = _face(name, 2.4 + 0.12 * i)
    return labels, records


def test_code_model_probability_is_a_logistic_of_standardised_transformed_measures() -> None:
    model = dm.CodeModel(
        name="blurry",
        positive_codes=("blurry",),
        replaces=("face_edge_width",),
        features=("face_edge_width", "inter_ocular_px"),
        transforms=("identity", "log"),
        mean=(1.0, 4.0),
        scale=(0.5, 1.0),
        coef=(2.0, -1.0),
        intercept=-1.0,
    )
    import math

    z = -1.0 + 2.0 * (2.0 - 1.0) / 0.5 - 1.0 * (math.log(100.0) - 4.0)
    assert model.probability({"face_edge_width": 2.0, "inter_ocular_px": 100.0}) == pytest.approx(
        1 / (1 + math.exp(-z))
    )
    assert model.probability({"face_edge_width": 2.0}) is None  # a measure missing: the model abstains
    assert dm.CodeModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    broken = {**model.to_dict(), "coef": [1.0]}
    with pytest.raises(ValueError, match="differ in length"):
        dm.CodeModel.from_dict(broken)


def test_hand_margin_is_the_worst_log_ratio_past_the_replaced_bars() -> None:
    rec = _face("a", edge=2.5)
    checks = {c.name: c for c in rec.checks}
    margin = dm.hand_margin(BLUR.replaces, checks)
    # edge 2.5 against 2.03 (fails when >), blockiness 0.4 against 0.75; the soft-focus warning has no bar.
    import math

    assert margin == pytest.approx(max(math.log(2.5 / 2.03), math.log(0.4 / 0.75)))
    sharp = dm.hand_margin(
        ("eye_contrast",),
        {"eye_contrast": fitting.CheckRecord("eye_contrast", "eyes_occluded", 0.5, 0.25, "<", "reject")},
    )
    assert sharp == pytest.approx(-math.log(0.5 / 0.25))  # "<" checks: above the bar is negative


def test_training_separates_the_classes_and_fits_where_to_cut() -> None:
    labels, records = _corpus()
    model = decision_training.train(labels, records, [BLUR])
    (blur,) = model.codes
    assert blur.coef[0] > 0  # past the bar means more likely blurred
    report = score(labels, {f: fitting.redecide(r, {}, how="model", model=model) for f, r in records.items()})
    assert report.decisions_right == report.total and report.good_rejected == 0
    assert 0.05 <= blur.reject_at <= 0.95
    assert blur.warn_at == pytest.approx(blur.reject_at * decision_training.WARN_SHARE, abs=1e-3)


def test_no_fold_is_scored_by_a_model_that_saw_its_source() -> None:
    labels, records = _corpus()
    folds = grouped_folds(labels, 4)
    cv, models = decision_training.cross_validate_model(folds, records, [BLUR])
    assert [r.total for r in cv.folds] == [len(fold) for fold in folds]
    for index, fold in enumerate(folds):
        held_out_groups = {label.group for label in fold}
        train_labels = [label for j, other in enumerate(folds) if j != index for label in other]
        assert not held_out_groups & {label.group for label in train_labels}
        # The model that scored this fold is exactly the one trained without it.
        assert models[index] == decision_training.train(train_labels, records, [BLUR])
    assert cv.mean("decision_accuracy") == 1.0


def test_too_few_positives_leave_the_hand_checks_deciding() -> None:
    labels, records = _corpus()
    one_blurred = [label for label in labels if not label.file.startswith("blur") or label.file == "blur0.jpg"]
    assert decision_training.train(one_blurred, records, [BLUR]).codes == ()


def test_a_borderline_probability_warns_instead_of_refusing() -> None:
    labels, records = _corpus()
    model = decision_training.train(labels, records, [BLUR])
    (blur,) = model.codes
    # An edge width between the two classes: find one whose probability lies in the warning band.
    hits = []
    for step in range(200):
        edge = 1.5 + step * 0.005
        rec = _face("x", edge)
        (v,) = dm.verdicts(model, fitting.features(rec), {c.name: c for c in fitting.hand_checks(rec)})
        if v.warns:
            hits.append(edge)
            assert not v.fails and blur.warn_at is not None and blur.warn_at <= v.probability < blur.reject_at
            assert fitting.redecide(rec, {}, how="model", model=model).accepted
    assert hits, "no edge width falls in the warning band"


def test_packaged_model_loads_and_its_training_manifest_names_corpus_rows() -> None:
    model = dm.load_packaged()
    assert model is not None and {m.name for m in model.codes} >= {"blurry", "mouth_hidden"}
    for code in model.codes:
        assert 0.0 < code.reject_at < 1.0
    path = Path(dm.__file__).with_name(dm.PACKAGED)
    payload = json.loads(path.read_text())
    assert payload["images"] == len(read_manifest())
    with path.with_suffix(".training.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    corpus = {e.file: e for e in read_manifest(MANIFEST)}
    assert {r["file"] for r in rows} == set(corpus)
    for row in rows:
        entry = corpus[row["file"]]
        assert row["sha256"] == entry.sha256 and row["group"] == entry.source.repo
        assert row["group"] not in RESERVED_REPOSITORIES
        assert not row["trained"] or row["expected"] != "either"
    trained = [r for r in rows if r["trained"]]
    assert len(trained) >= 300  # every image the mesh measured trains the model, not a handful


def test_validator_applies_the_packaged_model_as_the_evaluation_recomputes_it(
    validator: Validator, shared_dir: Path
) -> None:
    model = validator.decision_model
    assert model is not None
    labels = read_labels(shared_dir / "avatar-images" / "labels.csv")
    picked = [label for label in labels if label.file.startswith(("accept_photo", "blurry", "not_frontal", "mouth"))]
    assert len(picked) >= 12
    hand_only = open_validator(decision_model=None)
    try:
        for label in picked[:16]:
            data = (shared_dir / "avatar-images" / label.file).read_bytes()
            outcome = validator.validate_bytes(data)
            rec = fitting.record(label.file, outcome.checks, outcome.superseded, outcome.scores)
            names = {c.name for c in outcome.checks}
            if outcome.face is not None:
                assert {"blurry_model", "mouth_hidden_model"} <= names, label.file
                assert "head_yaw" in names  # pose is decided by the hand bars (no pose model)
                assert not names & model.replaced, label.file  # superseded checks do not decide
                assert {c.name for c in outcome.superseded} <= model.replaced
            decision = fitting.redecide(rec, {})
            assert decision == fitting.redecide(rec, {}, how="model", model=model), label.file
            assert (decision.accepted, decision.reasons) == (outcome.accepted, tuple(map(str, outcome.reasons)))
            hand = hand_only.validate_bytes(data)
            assert fitting.redecide(rec, {}, how="hand").reasons == tuple(map(str, hand.reasons)), label.file
    finally:
        hand_only.close()


def test_superseded_checks_keep_their_own_severity_when_the_hand_rules_redecide() -> None:
    from avatarflow_contracts import CheckResult, ReasonCode, WarningCode

    soft = CheckResult(
        name="face_edge_width_soft",
        code=WarningCode.SOFT_FOCUS,
        score=1.8,
        threshold=1.6,
        fails_when=">",
        passed=False,
        severity="warning",
    )
    edge = CheckResult(
        name="face_edge_width", code=ReasonCode.BLURRY, score=1.8, threshold=2.03, fails_when=">", passed=True
    )
    model_check = CheckResult(
        name="blurry_model", code=ReasonCode.BLURRY, score=0.3, threshold=0.8, fails_when=">=", passed=True
    )
    rec = fitting.record("soft.jpg", [model_check], [edge, soft], {})
    # A failing soft-focus warning among the superseded checks is still a warning, never a reason.
    assert fitting.redecide(rec, {}, how="hand").accepted
    assert fitting.redecide(rec, {}).accepted
