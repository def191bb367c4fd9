"""Unit tests of the animator's pieces: text -> visemes, manifest maps, the ONNX graph."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from avatarflow_animator.adapters.onnx_graph import OPSET, build_warp_graph
from avatarflow_animator.core.poses import REST, VISEME_POSES, FacePose
from avatarflow_animator.core.rig import (
    BROWS_LOWER,
    CHIN,
    FOREHEAD_TOP,
    INNER_LIP_LOWER,
    INNER_LIP_UPPER,
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    LOWER_LID_RISE_OF_OPENING,
    NOSE_BASE,
    OUTER_LIP_LOWER,
    OUTER_LIP_UPPER,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
    FaceRig,
)
from avatarflow_animator.core.timeline import ROLL_LEVER_PX, TURN_LEVER_PX, idle_poses
from avatarflow_animator.core.visemes import letter_to_sound, text_to_visemes
from avatarflow_animator.core.warp import _runs
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


def test_idle_loop_is_periodic_and_blinks_naturally():
    poses, blinks = idle_poses(25, 8.0)
    assert len(poses) == 200 and len(blinks) >= 2
    for blink in blinks:
        assert all(poses[i].blink == 1.0 for i in blink.closed_frames)
        assert 0.1 <= (blink.end_frame - blink.start_frame + 1) / 25 <= 0.15  # closed-to-open cycle
    starts = [b.start_frame for b in blinks]
    intervals = np.diff([*starts, starts[0] + len(poses)])
    assert intervals.min() != intervals.max()  # irregular, not a metronome
    # The pose after the last frame (t = 4 s) is the first frame's: no seam by construction.
    rolls = np.array([p.head_roll_deg for p in poses])
    step = np.abs(np.diff(rolls)).max()
    assert abs(rolls[-1] - rolls[0]) <= step + 1e-9


def test_idle_loop_starts_at_its_slowest_moment():
    # The loop point (last frame -> key frame 0) carries the key frame's coding difference, so it
    # sits where the head moves least: the seam's pose step is the smallest step of the loop.
    poses, _ = idle_poses(25, 8.0)
    # In canvas pixels, as the timeline measures it (roll through its lever on the face).
    heads = np.array(
        [
            (
                np.radians(p.head_roll_deg) * ROLL_LEVER_PX,
                np.radians(p.head_yaw_deg) * TURN_LEVER_PX,
                np.radians(p.head_pitch_deg) * TURN_LEVER_PX,
                p.head_dx,
                p.head_dy,
            )
            for p in poses
        ]
    )
    steps = np.linalg.norm(np.diff(np.vstack([heads, heads[:1]]), axis=0), axis=1)
    assert steps[-1] <= np.percentile(steps, 10)


def synthetic_face(teeth_gap: float = 0.0) -> np.ndarray:
    """(478, 2) landmarks of a frontal face drawn from the indices the rig uses (512 canvas):
    eyes 60 px apart, lips whose inner edges are ``teeth_gap`` px apart (a teeth smile)."""
    points = np.full((478, 2), 256.0)
    points[FOREHEAD_TOP], points[CHIN], points[NOSE_BASE] = (256, 150), (256, 350), (256, 270)
    for upper, lower, brow, centre in (
        (RIGHT_EYE_UPPER, RIGHT_EYE_LOWER, BROWS_LOWER[0], 226.0),
        (LEFT_EYE_UPPER, LEFT_EYE_LOWER, BROWS_LOWER[1], 286.0),
    ):
        xs = np.linspace(centre - 14, centre + 14, len(upper))
        bulge = np.sqrt(np.clip(1 - ((xs - centre) / 14) ** 2, 0, 1))
        points[list(upper)] = np.stack([xs, 220 - 5 * bulge], -1)
        points[list(lower)] = np.stack([xs, 220 + 4 * bulge], -1)
        points[list(brow)] = np.stack([np.linspace(centre - 16, centre + 16, len(brow)), np.full(len(brow), 200)], -1)
    xs = np.linspace(226, 286, len(INNER_LIP_UPPER))
    bulge = np.sqrt(np.clip(1 - ((xs - 256) / 30) ** 2, 0, 1))
    points[list(INNER_LIP_UPPER)] = np.stack([xs, 300 - 0.5 * teeth_gap * bulge], -1)
    points[list(INNER_LIP_LOWER)] = np.stack([xs, 300 + 0.5 * teeth_gap * bulge], -1)
    points[list(OUTER_LIP_UPPER)] = np.stack([xs, 300 - (0.5 * teeth_gap + 7) * bulge], -1)
    points[list(OUTER_LIP_LOWER)] = np.stack([xs, 300 + (0.5 * teeth_gap + 9) * bulge], -1)
    return points


def _inner_gap(rig: FaceRig, pose: FacePose) -> float:
    ids = [13, 14]  # inner-lip middle, upper and lower
    moved = rig.moved(rig.landmarks[ids], rig.coefficients(pose), np.array([-1.0, 1.0]))
    return float(moved[1, 1] - moved[0, 1])


def test_pp_closes_the_lips_over_a_teeth_smile_and_aa_opens_them():
    rig = FaceRig(synthetic_face(teeth_gap=12.0), 512)
    assert _inner_gap(rig, REST) == pytest.approx(12.0, abs=0.01)
    assert abs(_inner_gap(rig, VISEME_POSES["PP"])) < 0.5  # lips meet over the teeth
    assert _inner_gap(rig, VISEME_POSES["aa"]) > 12.0 + 0.06 * rig.face_height  # jaw drop opens


def test_ou_narrows_the_mouth():
    rig = FaceRig(synthetic_face(), 512)
    corners = rig.landmarks[[61, 291]]
    moved = rig.moved(corners, rig.coefficients(VISEME_POSES["ou"]), np.zeros(2))
    assert np.ptp(moved[:, 0]) <= 0.8 * np.ptp(corners[:, 0])


def _column_samples(rig: FaceRig, x: float, ys: np.ndarray, pose: FacePose) -> np.ndarray:
    """Source rows that the output pixels (x, ys) show in ``pose`` (backward fields)."""
    fields = rig.fields(np.stack([np.full_like(ys, x), ys], axis=-1))
    return ys - np.tensordot(rig.coefficients(pose), fields, axes=1)[:, 1]


def test_blink_slides_the_upper_lid_down_over_the_eye_onto_the_risen_lower_lid():
    rig = FaceRig(synthetic_face(), 512)
    x, up, low = float(rig.landmarks[159, 0]), float(rig.landmarks[159, 1]), float(rig.landmarks[145, 1])
    ys = np.arange(up - 20, low + 20, 0.25)
    assert np.allclose(_column_samples(rig, x, ys, FacePose(blink=0.0)), ys)
    closed = _column_samples(rig, x, ys, FacePose(blink=1.0))
    # Closed: no output pixel shows the eye opening; the lid above, the lower lid below.
    assert not np.any((closed > up + 0.5) & (closed < low - 0.5))
    meet = ys[np.argmax(closed > low - 0.5)]  # the first row showing the lower lid
    assert up < meet < low - LOWER_LID_RISE_OF_OPENING * (low - up) + 0.5  # the lower lid rose a little
    assert np.all(np.diff(closed[ys < meet]) > 0)  # the lid skin is stretched, never folded
    # Half closed: rows above the lid's edge show lid skin, the eye under the edge stays put (the
    # iris is covered, not slid).
    half = _column_samples(rig, x, ys, FacePose(blink=0.5))
    edge = up + 0.5 * (low - up) * (1 - 0.5 * LOWER_LID_RISE_OF_OPENING)
    assert np.all(half[(ys > up) & (ys < edge - 0.5)] <= up + 0.5)
    still = (ys > edge + 1.0) & (ys < low - 1.5)
    assert still.any() and np.allclose(half[still], ys[still])
    # Nothing moves at the brows.
    brow = float(rig.landmarks[list(BROWS_LOWER[0]), 1].max())
    assert np.allclose(closed[ys <= brow + 1.0], ys[ys <= brow + 1.0])
