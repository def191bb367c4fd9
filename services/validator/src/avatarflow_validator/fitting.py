"""Fit the validator's thresholds on a labelled corpus, and score that fit by grouped cross-validation.

The validator runs once per image; its checks (score, threshold, comparison) are kept as a
``Record``, and a decision under other thresholds is recomputed from them (``redecide``), the
same way ``Validator._decide`` makes it. Fitting is coordinate descent over a few thresholds, each
chosen among the midpoints of the training images' own scores (never one file's value: a
threshold moves only when it changes the score over the whole training set), bounded to
``BOUNDS`` around the hand-set value so the physical meaning stays. Product requirements (minimum
inter-ocular distance and image size, MediaPipe's detection operating point) are not fitted.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from avatarflow_contracts import CheckResult, ReasonCode, order_reasons

from .core.decision_model import DecisionModel, verdicts
from .evaluation import CrossValidation, Decision, Label, Report, score

# Threshold name (the check's name) -> (lowest, highest) value the fit may choose.
BOUNDS: dict[str, tuple[float, float]] = {
    "single_face": (0.3, 0.8),
    "face_confirmed": (0.6, 0.95),
    "head_yaw": (30.0, 60.0),
    "head_pitch": (25.0, 50.0),
    "head_roll": (30.0, 50.0),
    "face_edge_width": (1.2, 2.6),
    "face_blockiness": (0.6, 0.95),
    "eye_contrast": (0.1, 0.4),
    "eye_surround_delta_e": (15.0, 40.0),
    "mouth_structure": (0.8, 1.4),
    "face_highlights_lstar": (15.0, 40.0),
    "face_side_balance": (0.2, 0.5),
}
CANDIDATES_PER_THRESHOLD = 24
# A good photo refused costs more than a bad one let through (the editor has no recourse).
FALSE_REJECT_WEIGHT = 2.0


@dataclass(frozen=True)
class CheckRecord:
    name: str
    code: str
    score: float
    threshold: float
    fails_when: str
    severity: str

    def fails(self, threshold: float | None = None) -> bool:
        t = self.threshold if threshold is None else threshold
        s = self.score
        return {"<": s < t, ">": s > t, "<=": s <= t, ">=": s >= t}[self.fails_when]


# A hand check measured but replaced by the decision model: "superseded:<its own severity>".
SUPERSEDED = "superseded:"


@dataclass(frozen=True)
class Record:
    file: str
    checks: tuple[CheckRecord, ...]
    # Measures that are not checks of their own (face_noise), as in ValidationOutcome.scores.
    scores: Mapping[str, float] = field(default_factory=dict)


def record(
    file: str,
    checks: Iterable[CheckResult],
    superseded: Iterable[CheckResult] = (),
    scores: Mapping[str, float] | None = None,
) -> Record:
    kept = [CheckRecord(c.name, str(c.code), c.score, c.threshold, c.fails_when, c.severity) for c in checks]
    kept += [
        CheckRecord(c.name, str(c.code), c.score, c.threshold, c.fails_when, SUPERSEDED + c.severity)
        for c in superseded
    ]
    return Record(file, tuple(kept), dict(scores or {}))


def is_model_check(name: str) -> bool:
    return name.endswith(("_model", "_model_warn"))


def features(rec: Record) -> dict[str, float]:
    """Every measure of the image by name: the extra scores and every hand check's score."""
    found = dict(rec.scores)
    found.update({c.name: c.score for c in rec.checks if not is_model_check(c.name)})
    return found


def hand_checks(rec: Record) -> list[CheckRecord]:
    """The checks as the hand-set rules decide them: model checks out, superseded ones back in."""
    return [
        CheckRecord(c.name, c.code, c.score, c.threshold, c.fails_when, c.severity.removeprefix(SUPERSEDED))
        for c in rec.checks
        if not is_model_check(c.name)
    ]


def _model_checks(rec: Record, model: DecisionModel) -> list[CheckRecord]:
    """The checks as ``model`` decides them (the same way Validator._decide applies it)."""
    hand = hand_checks(rec)
    answered = verdicts(model, features(rec), {c.name: c for c in hand})
    replaced = {name for v in answered for name in v.model.replaces}
    kept = [c for c in hand if c.name not in replaced]
    for v in answered:
        kept.append(CheckRecord(v.model.check_name, v.code, v.probability, v.model.reject_at, ">=", "reject"))
    return kept


def redecide(
    rec: Record, thresholds: dict[str, float], *, how: str = "recorded", model: DecisionModel | None = None
) -> Decision:
    """The decision these checks give under ``thresholds`` (missing names keep their own).

    ``how``: "recorded" decides as the validator did; "hand" by the hand-set checks alone (the
    decision model's checks ignored, the ones it superseded restored); "model" by ``model``
    over the hand checks it does not replace.
    """
    if how == "model":
        if model is None:
            raise ValueError("redecide(how='model') needs a model")
        checks: Sequence[CheckRecord] = _model_checks(rec, model)
    elif how == "hand":
        checks = hand_checks(rec)
    else:
        checks = rec.checks
    failed = [
        ReasonCode(c.code)
        for c in checks
        if c.severity == "reject" and c.name != "face_confirmed" and c.fails(thresholds.get(c.name))
    ]
    if not failed:
        # Weak-detection rule: only when nothing else failed (see Validator._decide).
        failed = [
            ReasonCode.NO_FACE
            for c in checks
            if c.name == "face_confirmed" and c.fails(thresholds.get("face_confirmed"))
        ]
    reasons = order_reasons(failed)
    return Decision(rec.file, not reasons, tuple(str(r) for r in reasons))


def objective(report: Report) -> float:
    return report.decisions_right + report.reasons_right - FALSE_REJECT_WEIGHT * report.good_rejected


def _candidates(name: str, records: Sequence[Record], current: float) -> list[float]:
    low, high = BOUNDS[name]
    values = sorted({c.score for r in records for c in r.checks if c.name == name and low <= c.score <= high})
    mids = [(a + b) / 2 for a, b in itertools.pairwise(values)]
    if len(mids) > CANDIDATES_PER_THRESHOLD:
        step = len(mids) / CANDIDATES_PER_THRESHOLD
        mids = [mids[int(i * step)] for i in range(CANDIDATES_PER_THRESHOLD)]
    return sorted({round(v, 4) for v in [*mids, current, low, high]})


def defaults(records: Sequence[Record], names: Iterable[str] | None = None) -> dict[str, float]:
    """The thresholds the records were decided with, for the fittable ``names`` (default: all of BOUNDS)."""
    wanted = set(BOUNDS if names is None else names) & set(BOUNDS)
    found: dict[str, float] = {}
    for r in records:
        for c in r.checks:
            if c.name in wanted:
                found.setdefault(c.name, c.threshold)
    return found


def fit(
    labels: Sequence[Label],
    records: dict[str, Record],
    rounds: int = 2,
    names: Iterable[str] | None = None,
    start: dict[str, float] | None = None,
) -> dict[str, float]:
    """Coordinate descent on ``objective`` over the labelled images' records (only ``names`` if given).

    ``start`` replaces the records' own thresholds as the starting point (ties keep the start), so
    a threshold that was itself fitted on these images can be re-fitted from its old hand-set value.
    """
    train = [records[label.file] for label in labels]
    thresholds = defaults(train, names)
    thresholds.update({k: v for k, v in (start or {}).items() if k in thresholds})

    def value(candidate: dict[str, float]) -> float:
        return objective(score(labels, {r.file: redecide(r, candidate, how="hand") for r in train}))

    best = value(thresholds)
    for _ in range(rounds):
        improved = False
        for name in sorted(thresholds):
            for candidate in _candidates(name, train, thresholds[name]):
                trial = {**thresholds, name: candidate}
                got = value(trial)
                # Strictly better only: ties keep the hand-set (or earlier) value.
                if got > best + 1e-9:
                    best, thresholds, improved = got, trial, True
        if not improved:
            break
    return thresholds


def cross_validate_fit(
    folds: list[list[Label]],
    records: dict[str, Record],
    names: Iterable[str] | None = None,
    start: dict[str, float] | None = None,
) -> tuple[CrossValidation, list[dict[str, float]]]:
    """Fit on all folds but one, score the held-out fold; every fold in turn."""
    reports: list[Report] = []
    fitted: list[dict[str, float]] = []
    chosen = None if names is None else list(names)
    for index, held_out in enumerate(folds):
        train = [label for j, fold in enumerate(folds) if j != index for label in fold]
        thresholds = fit(train, records, names=chosen, start=start)
        fitted.append(thresholds)
        decided = {label.file: redecide(records[label.file], thresholds, how="hand") for label in held_out}
        reports.append(score(held_out, decided))
    return CrossValidation(reports), fitted


def save(path: Path, thresholds: dict[str, float], *, trained_on: str, images: int) -> None:
    payload = {
        "about": "Validator thresholds fitted by avatarctl eval --fit (see docs/validation.md)",
        "trained_on": trained_on,
        "images": images,
        "objective": f"decisions right + reasons right - {FALSE_REJECT_WEIGHT} x good photos rejected",
        "thresholds": {k: thresholds[k] for k in sorted(thresholds)},
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
