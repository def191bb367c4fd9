"""Train the validator's decision model (``core/decision_model.py``) on the labelled corpus.

One L2-regularised logistic regression per reason (``SPECS``), over measures the checks already
compute, fitted by Newton's method (IRLS) in numpy. Targets come from the labels, never from
single files: a positive is an image labelled ``reject`` with one of the spec's codes; negatives
are the images labelled ``accept`` (weighted ``GOOD_PHOTO_WEIGHT``: refusing a good photo costs
more than letting a bad one through) and rejects for other reasons; ``either`` images are left
out (their label says nothing about the reason). Only images on which every measure exists (the
face mesh ran) train a model. ``cross_validate_model`` trains on all folds but one (folds by
source repository) and scores the held-out fold, so no fold is scored by a model that saw its
source. Used by ``avatarctl train-model`` and ``avatarctl eval --model-cv``.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .core.decision_model import HAND_MARGIN, CodeModel, DecisionModel, inputs, transform
from .evaluation import CrossValidation, Label, Report, score
from .fitting import Record, features, hand_checks, redecide

GOOD_PHOTO_WEIGHT = 2.0
OPERATING_POINTS = 16
WARN_SHARE = 0.5  # borderline band: probabilities from half the cut up to the cut warn instead
POSITIVE_SHARE = 0.5
L2 = 1.0  # on standardised features: keeps the fit finite where a small class separates completely


@dataclass(frozen=True)
class Spec:
    name: str
    positive_codes: tuple[str, ...]
    replaces: tuple[str, ...]
    features: tuple[str, ...]
    transforms: tuple[str, ...]
    warn_at: float | None = None
    warn_code: str | None = None


SPECS: tuple[Spec, ...] = (
    Spec(
        "blurry",
        ("blurry",),
        ("face_edge_width", "face_blockiness", "face_edge_width_soft"),
        # Small faces and noise-free drawings measure wider edges without being out of focus.
        (HAND_MARGIN, "inter_ocular_px", "face_noise"),
        ("identity", "log", "log1p"),
        warn_at=0.25,
        warn_code="soft_focus",
    ),
    # No pose model: its positives were mostly faces looking steeply up or down, so one cut on the
    # worst yaw/pitch/roll margin moved the yaw bar down onto accepted three-quarter views (grouped
    # CV: 8 of 207 good photos refused as not_frontal, 2 with the hand bars). The hand bars decide,
    # with pitch measured from the fitted frontal reading (thresholds.frontal_pitch_deg).
    Spec("eyes_occluded", ("eyes_occluded",), ("eye_contrast", "eye_surround_delta_e"), (HAND_MARGIN,), ("identity",)),
    Spec("mouth_hidden", ("mouth_occluded", "face_covering"), ("mouth_structure",), (HAND_MARGIN,), ("identity",)),
    Spec("multiple_faces", ("multiple_faces",), ("single_face",), (HAND_MARGIN,), ("identity",)),
)


def measured(replaces: Sequence[str], rec: Record) -> dict[str, float]:
    """A record's measures as a code model replacing ``replaces`` sees them (hand_margin included)."""
    return inputs(replaces, features(rec), {c.name: c for c in hand_checks(rec)})


def logistic_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = L2) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression by IRLS (the intercept is not penalised)."""
    n, d = x.shape
    a = np.hstack([np.ones((n, 1)), x])
    beta = np.zeros(d + 1)
    penalty = np.diag([0.0] + [l2] * d)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ beta, -40, 40)))
        gradient = a.T @ (w * (p - y)) + penalty @ beta
        hessian = (a * (w * p * (1 - p))[:, None]).T @ a + penalty + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return beta[1:], float(beta[0])


def train_code_model(spec: Spec, labels: Sequence[Label], records: Mapping[str, Record]) -> CodeModel | None:
    rows: list[list[float]] = []
    targets: list[float] = []
    weights: list[float] = []
    for label in labels:
        if label.expected == "either":
            continue
        seen = measured(spec.replaces, records[label.file])
        if any(f not in seen for f in spec.features) or spec.replaces[0] not in seen:
            continue
        rows.append([transform(seen[f], t) for f, t in zip(spec.features, spec.transforms, strict=True)])
        positive = label.expected == "reject" and bool(label.reasons & set(spec.positive_codes))
        targets.append(1.0 if positive else 0.0)
        weights.append(GOOD_PHOTO_WEIGHT if label.expected == "accept" else 1.0)
    y = np.asarray(targets)
    if len(rows) < 10 or y.sum() < 2:
        return None  # too few positives to fit: the hand checks keep deciding
    w = np.asarray(weights)
    # Rare reasons (7 blurred faces among 400): weight the positives up to POSITIVE_SHARE of the
    # negatives' total, or the fit would call every face fine and still score 98 %.
    w[y == 1] = POSITIVE_SHARE * w[y == 0].sum() / y.sum()
    x = np.asarray(rows)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    coef, intercept = logistic_fit((x - mean) / scale, y, w)
    return CodeModel(
        name=spec.name,
        positive_codes=spec.positive_codes,
        replaces=spec.replaces,
        features=spec.features,
        transforms=spec.transforms,
        mean=tuple(float(v) for v in mean),
        scale=tuple(float(v) for v in scale),
        coef=tuple(float(v) for v in coef),
        intercept=intercept,
        warn_at=spec.warn_at,
        warn_code=spec.warn_code,
    )


def objective(report: Report) -> float:
    return report.decisions_right + report.reasons_right - GOOD_PHOTO_WEIGHT * report.good_rejected


def _operating_points(model: CodeModel, labels: Sequence[Label], records: Mapping[str, Record]) -> list[float]:
    probabilities = sorted(
        {
            round(p, 4)
            for label in labels
            if (p := model.probability(measured(model.replaces, records[label.file]))) is not None and 0.05 <= p <= 0.95
        }
    )
    mids = [(a + b) / 2 for a, b in itertools.pairwise(probabilities)]
    if len(mids) > OPERATING_POINTS:
        step = len(mids) / OPERATING_POINTS
        mids = [mids[int(i * step)] for i in range(OPERATING_POINTS)]
    return sorted({0.5, *(round(v, 4) for v in mids)})


def hand_cut(code: CodeModel) -> float:
    """The probability at hand_margin = 0 (other inputs at their means): where the hand rule cuts."""
    x = [
        (0.0 - m) / sc if f == HAND_MARGIN else 0.0
        for f, m, sc in zip(code.features, code.mean, code.scale, strict=True)
    ]
    z = code.intercept + sum(c * v for c, v in zip(code.coef, x, strict=True))
    return min(max(1.0 / (1.0 + math.exp(-z)), 0.01), 0.99)


def choose_operating_points(
    model: DecisionModel, labels: Sequence[Label], records: Mapping[str, Record]
) -> DecisionModel:
    """Each code model's reject_at: the probability that decides the training images best.

    The probabilities are fitted per reason; where to cut them is fitted on the decisions they
    make together with the hand checks (the same objective as threshold fitting), code by code.
    A warning band keeps its width below the cut (warn_at = reject_at x WARN_SHARE).
    """

    def value(candidate: DecisionModel) -> float:
        decided = {label.file: redecide(records[label.file], {}, how="model", model=candidate) for label in labels}
        return objective(score(labels, decided))

    def with_cut(code: CodeModel, cut: float) -> CodeModel:
        warn = None if code.warn_at is None else round(cut * WARN_SHARE, 4)
        return replace(code, reject_at=round(cut, 4), warn_at=warn)

    # Start from the cut that reproduces the hand rule (hand_margin = 0); move only when the
    # training images score strictly better, as threshold fitting does.
    codes = [with_cut(code, hand_cut(code)) for code in model.codes]
    best = value(DecisionModel(tuple(codes)))
    for index, code in enumerate(codes):
        for cut in _operating_points(code, labels, records):
            trial_code = with_cut(code, cut)
            got = value(DecisionModel((*codes[:index], trial_code, *codes[index + 1 :])))
            if got > best + 1e-9:
                best, codes[index] = got, trial_code
    return DecisionModel(tuple(codes))


def train(labels: Sequence[Label], records: Mapping[str, Record], specs: Sequence[Spec] = SPECS) -> DecisionModel:
    fitted = DecisionModel(tuple(m for s in specs if (m := train_code_model(s, labels, records)) is not None))
    return choose_operating_points(fitted, labels, records)


def cross_validate_model(
    folds: list[list[Label]], records: Mapping[str, Record], specs: Sequence[Spec] = SPECS
) -> tuple[CrossValidation, list[DecisionModel]]:
    """Train on all folds but one, score the held-out fold with that model; every fold in turn."""
    reports: list[Report] = []
    models: list[DecisionModel] = []
    for index, held_out in enumerate(folds):
        train_labels = [label for j, fold in enumerate(folds) if j != index for label in fold]
        model = train(train_labels, records, specs)
        models.append(model)
        decided = {label.file: redecide(records[label.file], {}, how="model", model=model) for label in held_out}
        reports.append(score(held_out, decided))
    return CrossValidation(reports), models


def save(
    path: Path,
    model: DecisionModel,
    *,
    trained_on: str,
    labels: Sequence[Label],
    records: Mapping[str, Record],
    sha256: Mapping[str, str],
) -> Path:
    """Write the model JSON and, beside it, the data manifest: every corpus row and whether it trained."""
    payload = {
        "about": "Validator decision model: one logistic regression per reason (docs/validation.md)",
        "trained_on": trained_on,
        "command": "avatarctl train-model services/validator/corpus/manifest.csv",
        "images": len(labels),
        "good_photo_weight": GOOD_PHOTO_WEIGHT,
        "l2": L2,
        **model.to_dict(),
    }
    path.write_text(json.dumps(payload, indent=1) + "\n")
    manifest = path.with_suffix(".training.csv")
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file", "sha256", "expected", "reasons", "group", "trained"])
        for label in labels:
            used = [
                m.name
                for m in model.codes
                if label.expected != "either"
                and all(f in (seen := measured(m.replaces, records[label.file])) for f in m.features)
                and m.replaces[0] in seen
            ]
            writer.writerow(
                [
                    label.file,
                    sha256.get(label.file, ""),
                    label.expected,
                    ";".join(sorted(label.reasons)),
                    label.group,
                    ";".join(used),
                ]
            )
    return manifest
