"""shared/bad-inputs through Validator.validate_bytes, as expected.csv's `final` column says."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from avatarflow_contracts import ReasonCode
from avatarflow_validator.core import Validator


def _rows(shared_dir: Path) -> list[dict[str, str]]:
    with (shared_dir / "bad-inputs" / "expected.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_files_reaching_the_validator_get_their_final_outcome(validator: Validator, shared_dir: Path) -> None:
    wrong = []
    for row in _rows(shared_dir):
        if row["ingest"] not in ("accept", "either"):
            continue
        outcome = validator.validate_bytes((shared_dir / "bad-inputs" / row["file"]).read_bytes())
        if row["final"] == "accept":
            if not outcome.accepted:
                wrong.append(f"{row['file']}: rejected {outcome.reasons}")
        else:
            allowed = {ReasonCode(r) for r in row["reasons"].split(";") if r}
            if outcome.accepted or not (set(outcome.reasons) & allowed):
                wrong.append(f"{row['file']}: {outcome.accepted} {outcome.reasons}, allowed {allowed}")
    assert not wrong


@pytest.mark.parametrize("name", ["portrait.tif", "zero-byte.jpg", "decompression-bomb.png", "svg-face.svg"])
def test_refused_files_never_raise(validator: Validator, shared_dir: Path, name: str) -> None:
    outcome = validator.validate_bytes((shared_dir / "bad-inputs" / name).read_bytes())
    assert not outcome.accepted and outcome.reasons == [ReasonCode.UNREADABLE_IMAGE]
    assert outcome.image is None


def test_same_bytes_same_outcome(validator: Validator, shared_dir: Path) -> None:
    data = (shared_dir / "avatar-images" / "accept_photo__obama-office-flags.jpg").read_bytes()
    first, second = validator.validate_bytes(data), validator.validate_bytes(data)
    assert first.comparable() == second.comparable()
    assert first.accepted and first.face is not None
    assert len(first.face.landmarks) == 478
    crop = first.face.suggested_crop
    assert crop.x >= 0 and crop.x + crop.width <= first.face.image_width + 1e-6
    assert first.face.image_width == first.image.rgb.shape[1]
