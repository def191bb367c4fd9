"""Unit tests of the animator's pieces: text -> visemes, manifest maps, the ONNX graph."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from avatarflow_animator.graph import OPSET, build_warp_graph
from avatarflow_animator.poses import VISEME_POSES
from avatarflow_animator.renderer import _runs
from avatarflow_animator.timeline import idle_poses
from avatarflow_animator.visemes import letter_to_sound, text_to_visemes
from avatarflow_contracts.manifest import AZURE_VISEME_TO_OVR, OVR_VISEMES, POLLY_VISEME_TO_OVR


def test_track_is_contiguous_frame_aligned_and_framed_by_silence():
    fps = 25
    track = text_to_visemes("Hello, world! I'm Zorblax.", fps)
    assert track[0][0] == "sil" and track[-1][0] == "sil"
    assert track[0][1] == 0.0
    for (_, _, end), (_, start, _) in itertools.pairwise(track):
        assert end == start
    for viseme, start, end in track:
        assert viseme in OVR_VISEMES
        assert end - start >= 1 / fps - 1e-9
        assert abs(start * fps - round(start * fps)) < 1e-6
    assert all(a[0] != b[0] for a, b in itertools.pairwise(track))  # repeats merged


@pytest.mark.parametrize(
    ("text", "expected"),
    [("mama", "PP"), ("you", "ou"), ("father", "aa"), ("see", "SS"), ("five", "FF"), ("think", "TH")],
)
def test_words_produce_their_characteristic_visemes(text, expected):
    assert expected in [v for v, _, _ in text_to_visemes(text, 25)]


def test_unknown_words_fall_back_to_letter_to_sound():
    assert letter_to_sound("Zorblax") == ["Z", "AA1", "R", "B", "L", "AE1", "K", "S"]
    assert len(text_to_visemes("Qwzxyk", 25)) > 2


def test_speech_rate_is_conversational():
    track = text_to_visemes("The quick brown fox jumps over the lazy dog.", 25)
    seconds = track[-1][2]
    assert 2.0 < seconds < 4.5  # 11 syllables of ordinary speech plus pauses


def test_tts_maps_cover_their_inventories_and_land_on_ovr():
    assert sorted(AZURE_VISEME_TO_OVR) == list(range(22))
    polly_codes = {"sil", "p", "t", "S", "T", "f", "k", "i", "r", "s", "u", "@", "a", "e", "E", "o", "O"}
    assert set(POLLY_VISEME_TO_OVR) == polly_codes
    assert set(AZURE_VISEME_TO_OVR.values()) <= set(OVR_VISEMES)
    assert set(POLLY_VISEME_TO_OVR.values()) <= set(OVR_VISEMES)
    assert set(VISEME_POSES) == set(OVR_VISEMES)


def test_graph_is_a_valid_gridsample_graph():
    model = build_warp_graph()
    onnx.checker.check_model(model, full_check=True)
    assert OPSET >= 16
    assert "GridSample" in {node.op_type for node in model.graph.node}


@pytest.mark.parametrize("count", [1, 2, 8, 9, 17, 23])
def test_graph_runs_cover_every_frame_in_order_and_never_one_frame_alone(count):
    runs = _runs(list(range(count)), 8)
    assert [i for run in runs for i in dict.fromkeys(run)] == list(range(count))
    assert all(2 <= len(run) <= 8 for run in runs)


def test_idle_loop_is_periodic():
    poses, blinks = idle_poses(25, 4.0)
    assert len(poses) == 100 and len(blinks) == 1
    closed = blinks[0].closed_frames
    assert all(poses[i].blink == 1.0 for i in closed)
    # The pose after the last frame (t = 4 s) is the first frame's: no seam by construction.
    rolls = np.array([p.head_roll_deg for p in poses])
    step = np.abs(np.diff(rolls)).max()
    assert abs(rolls[-1] - rolls[0]) <= step + 1e-9


def test_idle_loop_starts_at_its_slowest_moment():
    # The loop point (last frame -> key frame 0) carries the key frame's coding difference, so it
    # sits where the head moves least: the seam's pose step is the smallest step of the loop.
    poses, _ = idle_poses(25, 4.0)
    heads = np.array([(p.head_roll_deg, p.head_dx, p.head_dy) for p in poses])
    steps = np.linalg.norm(np.diff(np.vstack([heads, heads[:1]]), axis=0), axis=1)
    assert steps[-1] <= np.percentile(steps, 10)
