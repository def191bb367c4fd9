"""The evidence sheets pick their crops by numbers (src/avatarflow/cli/matting_sheets.py)."""

from __future__ import annotations

import numpy as np

from avatarflow.cli.matting_sheets import TILE, _backgrounds, _best_windows, _over


def test_windows_go_to_the_largest_scores_and_do_not_overlap():
    score = np.zeros((600, 600), np.float32)
    score[100:140, 400:440] = 1.0  # the worst spot
    score[450:470, 100:120] = 1.0  # a smaller one elsewhere
    score[110:150, 380:420] = 0.5  # next to the worst: would overlap it
    first, second = _best_windows(score, 2, [])
    y, x = first
    assert y <= 100 and y + TILE >= 140 and x <= 400 and x + TILE >= 440
    assert abs(second[0] - first[0]) >= TILE // 2 or abs(second[1] - first[1]) >= TILE // 2
    assert second[0] <= 450 and second[0] + TILE >= 470  # the other spot, not the overlapping one
    # Windows already taken are avoided too, and an empty score gives none.
    (third,) = _best_windows(score, 1, [first])
    assert third != first
    assert _best_windows(np.zeros_like(score), 1, []) == []


def test_composites_are_straight_alpha_over_each_background():
    rgba = np.zeros((TILE, TILE, 4), np.float32)
    rgba[..., :3] = (255, 0, 0)
    rgba[: TILE // 2, :, 3] = 255  # top half opaque red, bottom half transparent
    grey, green, checker = _backgrounds(TILE)
    top = _over(rgba, green)
    assert (top[0, 0] == (255, 0, 0)).all() and (top[-1, 0] == green[-1, 0]).all()
    assert len(np.unique(checker.reshape(-1, 3), axis=0)) == 2 and (grey == 128).all()
