"""Fitted decisions: small logistic regressions over the checks' measures, replacing hand-read thresholds.

Each ``CodeModel`` takes a few measures the checks already compute (for blur: edge width,
blockiness, face size, sensor noise), standardises them, and gives the probability that its reason
applies. It replaces the hand checks it names (``replaces``): they stay measured (their scores are
the model's inputs) but no longer decide. The model emits one check of its own,
``<name>_model``: score = probability, fails when >= ``reject_at``; a probability in
[``warn_at``, ``reject_at``) accepts with the model's warning (a borderline score never refuses a
photo). The coefficients are fitted on the development corpus by
``avatarflow_validator.decision_training`` (see docs/validation.md) and shipped as JSON in the
package; this module only evaluates them (pure: no I/O).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

# The derived input every code model starts from: how far the image is past the hand-set bar of
# the checks it replaces, as the worst log-ratio score/threshold (positive = the hand rule would
# fail it). The hand thresholds only fix each measure's scale this way; where the model cuts
# (intercept, slope, reject_at) is fitted on the corpus.
HAND_MARGIN = "hand_margin"


class MeasuredCheck(Protocol):
    """What a code model reads of a check (CheckResult and fitting.CheckRecord both have it)."""

    @property
    def code(self) -> Any: ...
    @property
    def score(self) -> float: ...
    @property
    def threshold(self) -> float: ...
    @property
    def fails_when(self) -> str: ...
    @property
    def severity(self) -> str: ...


def log_margin(check: MeasuredCheck) -> float:
    """log(score / threshold) oriented so that > 0 means the check fails (scores floored at 1e-3)."""
    score, threshold = max(float(check.score), 1e-3), max(float(check.threshold), 1e-3)
    ratio = math.log(score / threshold)
    return ratio if check.fails_when in (">", ">=") else -ratio


_TRANSFORMS: dict[str, Callable[[float], float]] = {
    "identity": lambda v: v,
    # Sizes act multiplicatively (a face twice as large), so the model sees their logarithm.
    "log": lambda v: math.log(max(v, 1e-6)),
    "log1p": lambda v: math.log1p(max(v, 0.0)),  # counts and levels that may be 0 (noise-free drawings)
}


def transform(value: float, how: str) -> float:
    return float(_TRANSFORMS[how](float(value)))


@dataclass(frozen=True)
class CodeModel:
    name: str  # e.g. "blurry": the model's check is "<name>_model"
    positive_codes: tuple[str, ...]  # labelled reasons that count as this model's positive class
    replaces: tuple[str, ...]  # hand checks this model supersedes; the first one's code is reported
    features: tuple[str, ...]  # check names whose scores are the inputs
    transforms: tuple[str, ...]  # per feature: identity | log
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    reject_at: float = 0.5
    warn_at: float | None = None
    warn_code: str | None = None

    @property
    def check_name(self) -> str:
        return f"{self.name}_model"

    def standardised(self, scores: Mapping[str, float]) -> list[float] | None:
        """The model's input vector, or None when a measure is missing (no mesh: the model abstains)."""
        if any(f not in scores for f in self.features):
            return None
        return [
            (transform(scores[f], t) - m) / s
            for f, t, m, s in zip(self.features, self.transforms, self.mean, self.scale, strict=True)
        ]

    def probability(self, scores: Mapping[str, float]) -> float | None:
        x = self.standardised(scores)
        if x is None:
            return None
        z = self.intercept + sum(c * v for c, v in zip(self.coef, x, strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "positive_codes": list(self.positive_codes),
            "replaces": list(self.replaces),
            "features": list(self.features),
            "transforms": list(self.transforms),
            "mean": [round(v, 6) for v in self.mean],
            "scale": [round(v, 6) for v in self.scale],
            "coef": [round(v, 6) for v in self.coef],
            "intercept": round(self.intercept, 6),
            "reject_at": self.reject_at,
            "warn_at": self.warn_at,
            "warn_code": self.warn_code,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CodeModel:
        model = cls(
            name=str(data["name"]),
            positive_codes=tuple(data["positive_codes"]),
            replaces=tuple(data["replaces"]),
            features=tuple(data["features"]),
            transforms=tuple(data["transforms"]),
            mean=tuple(float(v) for v in data["mean"]),
            scale=tuple(float(v) for v in data["scale"]),
            coef=tuple(float(v) for v in data["coef"]),
            intercept=float(data["intercept"]),
            reject_at=float(data.get("reject_at", 0.5)),
            warn_at=None if data.get("warn_at") is None else float(data["warn_at"]),
            warn_code=data.get("warn_code"),
        )
        n = len(model.features)
        if not n or any(len(v) != n for v in (model.transforms, model.mean, model.scale, model.coef)):
            raise ValueError(f"decision model {model.name}: features, transforms, mean, scale, coef differ in length")
        if unknown := set(model.transforms) - set(_TRANSFORMS):
            raise ValueError(f"decision model {model.name}: unknown transforms {sorted(unknown)}")
        return model


@dataclass(frozen=True)
class DecisionModel:
    codes: tuple[CodeModel, ...]

    @property
    def replaced(self) -> frozenset[str]:
        return frozenset(name for m in self.codes for name in m.replaces)

    def to_dict(self) -> dict[str, Any]:
        return {"codes": [m.to_dict() for m in self.codes]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionModel:
        return cls(tuple(CodeModel.from_dict(m) for m in data["codes"]))


@dataclass(frozen=True)
class ModelVerdict:
    """One model's answer on one image: which check it stands for and what it concluded."""

    model: CodeModel
    code: str  # the reason reported when it fails (the replaced check's own code)
    probability: float

    @property
    def fails(self) -> bool:
        return self.probability >= self.model.reject_at

    @property
    def warns(self) -> bool:
        m = self.model
        return not self.fails and m.warn_at is not None and m.warn_code is not None and self.probability >= m.warn_at


def hand_margin(replaces: Sequence[str], checks: Mapping[str, MeasuredCheck]) -> float | None:
    """The worst log_margin over the replaced checks that reject (warnings carry no bar of their own)."""
    margins = [log_margin(checks[name]) for name in replaces if name in checks and checks[name].severity != "warning"]
    return max(margins) if margins else None


def inputs(
    replaces: Sequence[str], scores: Mapping[str, float], checks: Mapping[str, MeasuredCheck]
) -> dict[str, float]:
    """The measures a code model may read: the scores, plus its hand_margin when it has one."""
    margin = hand_margin(replaces, checks)
    return dict(scores) if margin is None else {**scores, HAND_MARGIN: margin}


def verdicts(
    model: DecisionModel, scores: Mapping[str, float], checks: Mapping[str, MeasuredCheck]
) -> list[ModelVerdict]:
    """Every code model whose measures were all taken; ``checks`` by name (the hand checks run)."""
    found: list[ModelVerdict] = []
    for m in model.codes:
        primary = m.replaces[0] if m.replaces else ""
        if primary not in checks:
            continue
        p = m.probability(inputs(m.replaces, scores, checks))
        if p is not None:
            found.append(ModelVerdict(m, str(checks[primary].code), p))
    return found


def superseded(model: DecisionModel, names: Sequence[str], answered: Sequence[ModelVerdict]) -> set[str]:
    """The hand checks among ``names`` that a model answering on this image replaces."""
    replaced = {name for v in answered for name in v.model.replaces}
    return {n for n in names if n in replaced}


PACKAGED = "decision_model.json"  # beside this module, written by avatarctl train-model


def load_packaged() -> DecisionModel | None:
    """The model shipped in the package (None when none has been trained yet)."""
    from importlib import resources

    path = resources.files(__package__).joinpath(PACKAGED)
    if not path.is_file():
        return None
    import json

    return DecisionModel.from_dict(json.loads(path.read_text()))
