"""Renderer-agnostic animation controls: what a frame should look like, not how to draw it.

A :class:`FacePose` is the contract between the timeline (idle loop, visemes, preview) and any
renderer: the landmark-warp renderer here turns it into displacement fields; a neural renderer
would turn the same numbers into its own keypoint offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class FacePose:
    """One frame's controls. Mouth and eyelid values are 0..1 (1 = the pose's full extent)."""

    jaw_open: float = 0.0  # lower lip and jaw drop; 1 = a wide "aa"
    lip_spread: float = 0.0  # mouth corners pulled out and slightly up (E, ih)
    lip_round: float = 0.0  # corners pulled in, lips narrowed (ou, oh)
    lip_press: float = 0.0  # lips pressed together and thinned (PP)
    lip_close: float = 0.0  # lips meet at the mouth line even where the photo shows teeth (PP)
    blink: float = 0.0  # 0 open, 0.5 half closed, 1 closed
    head_roll_deg: float = 0.0  # in-plane head tilt about the neck, degrees (positive = clockwise)
    head_dx: float = 0.0  # head shift in canvas pixels (shoulders stay)
    head_dy: float = 0.0
    head_yaw_deg: float = 0.0  # 3D turn from the face mesh's depth (positive: nose to image right)
    head_pitch_deg: float = 0.0  # 3D nod (positive: nose down)

    def with_head(self, other: FacePose) -> FacePose:
        """This pose's mouth with ``other``'s eyes and head (layering speech over idle motion)."""
        return replace(
            self,
            blink=other.blink,
            head_roll_deg=other.head_roll_deg,
            head_dx=other.head_dx,
            head_dy=other.head_dy,
            head_yaw_deg=other.head_yaw_deg,
            head_pitch_deg=other.head_pitch_deg,
        )


REST = FacePose()

# Mouth shape per OVR viseme. The numbers describe articulation (how open, spread, rounded,
# pressed) so the same table can drive any renderer.
VISEME_POSES: dict[str, FacePose] = {
    "sil": REST,
    "PP": FacePose(lip_press=1.0, lip_close=1.0),
    "FF": FacePose(jaw_open=0.12, lip_spread=0.25, lip_press=0.35),
    "TH": FacePose(jaw_open=0.22, lip_spread=0.15),
    "DD": FacePose(jaw_open=0.25, lip_spread=0.25),
    "kk": FacePose(jaw_open=0.32, lip_spread=0.15),
    "CH": FacePose(jaw_open=0.22, lip_round=0.55),
    "SS": FacePose(jaw_open=0.1, lip_spread=0.5),
    "nn": FacePose(jaw_open=0.2, lip_spread=0.2),
    "RR": FacePose(jaw_open=0.22, lip_round=0.6),
    "aa": FacePose(jaw_open=1.0),
    "E": FacePose(jaw_open=0.42, lip_spread=1.0),
    "ih": FacePose(jaw_open=0.3, lip_spread=0.75),
    "oh": FacePose(jaw_open=0.75, lip_round=0.8),
    "ou": FacePose(jaw_open=0.32, lip_round=1.0),
}


def blend(a: FacePose, b: FacePose, weight: float) -> FacePose:
    """Linear blend: ``weight`` 0 gives ``a``, 1 gives ``b``."""
    keep = 1.0 - weight
    return FacePose(
        jaw_open=a.jaw_open * keep + b.jaw_open * weight,
        lip_spread=a.lip_spread * keep + b.lip_spread * weight,
        lip_round=a.lip_round * keep + b.lip_round * weight,
        lip_press=a.lip_press * keep + b.lip_press * weight,
        lip_close=a.lip_close * keep + b.lip_close * weight,
        blink=a.blink * keep + b.blink * weight,
        head_roll_deg=a.head_roll_deg * keep + b.head_roll_deg * weight,
        head_dx=a.head_dx * keep + b.head_dx * weight,
        head_dy=a.head_dy * keep + b.head_dy * weight,
        head_yaw_deg=a.head_yaw_deg * keep + b.head_yaw_deg * weight,
        head_pitch_deg=a.head_pitch_deg * keep + b.head_pitch_deg * weight,
    )
