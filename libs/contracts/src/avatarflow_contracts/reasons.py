"""Reason codes the validator (and later stages) report, with the message an editor sees.

The set of codes is part of the public contract: analytics groups rejections by them and the
notifier turns them into the editor's prompt. Adding a code is a minor (additive) change;
renaming or removing one is a major change.
"""

from __future__ import annotations

from enum import StrEnum


class ReasonCode(StrEnum):
    NO_FACE = "no_face"
    MULTIPLE_FACES = "multiple_faces"
    LOW_RESOLUTION = "low_resolution"
    BLURRY = "blurry"
    NOT_FRONTAL = "not_frontal"
    POOR_LIGHTING = "poor_lighting"
    EYES_OCCLUDED = "eyes_occluded"
    MOUTH_OCCLUDED = "mouth_occluded"
    FACE_COVERING = "face_covering"
    FEATURES_MISSING = "features_missing"
    # Added in schema 1.1: the product guide names them as rejections of their own.
    FACE_PAINT = "face_paint"
    HELMET = "helmet"
    UNREADABLE_IMAGE = "unreadable_image"


class WarningCode(StrEnum):
    BUSY_BACKGROUND = "busy_background"
    # Added in schema 1.1: focus between the old hand-set bar and the fitted one: accepted, told.
    SOFT_FOCUS = "soft_focus"
    # Raised by matting when the cut-out's edge confidence is low.
    LOW_MATTE_CONFIDENCE = "low_matte_confidence"


SUPPORT_TICKET_URL = "https://support.avatarflow.example/tickets/new?topic=avatar-face-covering"

# What went wrong and what to do about it, in the editor's words.
EDITOR_MESSAGES: dict[str, str] = {
    ReasonCode.NO_FACE: (
        "We couldn't find a face in this image. Upload a photo or illustration that shows one "
        "person's face, looking at the camera."
    ),
    ReasonCode.MULTIPLE_FACES: (
        "This image shows more than one person. Upload an image with just one face, or crop it "
        "to the person who should become the avatar."
    ),
    ReasonCode.LOW_RESOLUTION: (
        "The face in this image is too small or the image is too low-resolution. Upload a larger "
        "image where the face fills more of the frame (at least 512 pixels wide)."
    ),
    ReasonCode.BLURRY: (
        "The face in this image is blurry or pixelated. Upload a sharp, in-focus photo that has "
        "not been enlarged from a small picture."
    ),
    ReasonCode.NOT_FRONTAL: (
        "The face is turned away from the camera. Upload an image where the person looks "
        "straight into the camera, with both eyes visible."
    ),
    ReasonCode.POOR_LIGHTING: (
        "The face is too dark, too bright or half in shadow. Upload a photo taken in even, soft "
        "light that falls on the whole face."
    ),
    ReasonCode.EYES_OCCLUDED: (
        "The eyes are hidden (for example by sunglasses). Upload an image where both eyes are "
        "clearly visible; ordinary clear glasses are fine."
    ),
    ReasonCode.MOUTH_OCCLUDED: (
        "The mouth is covered (for example by a mask or a hand). The avatar needs visible lips "
        "to speak: upload an image with the mouth uncovered."
    ),
    ReasonCode.FACE_COVERING: (
        "The avatar needs visible lips to lip-sync, and this image shows a face covering. "
        "We respect that choice: please open a support ticket and we will help you find an "
        f"avatar option that works for you ({SUPPORT_TICKET_URL})."
    ),
    ReasonCode.FEATURES_MISSING: (
        "We found a face shape but not clear eyes, nose and mouth (for example a robot, an emoji "
        "or a mask). Upload an image where the facial features are clearly visible."
    ),
    ReasonCode.FACE_PAINT: (
        "Heavy face paint or make-up hides the shape of the eyes, nose and mouth, so the avatar "
        "can't follow them. Upload a photo without face paint, where the skin and lips show."
    ),
    ReasonCode.HELMET: (
        "A helmet or visor hides part of the face. Upload a photo with the helmet off, where the "
        "eyes, nose and mouth are all visible."
    ),
    ReasonCode.UNREADABLE_IMAGE: (
        "We couldn't read this file as an image. Upload a JPEG, PNG, WebP or HEIC image that "
        "opens correctly on your device."
    ),
    WarningCode.BUSY_BACKGROUND: (
        "The background is busy, which can leave a faint outline around the avatar. A plain, "
        "light-coloured background gives the cleanest result."
    ),
    WarningCode.SOFT_FOCUS: (
        "The face looks slightly soft. We accepted it, but a sharper, in-focus photo gives a crisper avatar."
    ),
    WarningCode.LOW_MATTE_CONFIDENCE: (
        "We weren't fully sure where the person ends and the background begins. If the avatar "
        "edges look rough, try a photo with a plain, light-coloured background."
    ),
}

# Most actionable first: the first reason is the one the editor can act on first. A wrong file or
# picture comes before anything about the photo; then what the person in it must change (look at
# the camera, take off sunglasses, mask, helmet or face paint), because a new photo that fixes
# those also gets a new size, focus and light, whereas a larger copy of a profile photo is still a
# profile; the camera's quality (resolution, focus, light) comes after. face_covering comes last
# because the fix is a support ticket, not a new photo.
REASON_PRIORITY: tuple[ReasonCode, ...] = (
    ReasonCode.UNREADABLE_IMAGE,
    ReasonCode.NO_FACE,
    ReasonCode.MULTIPLE_FACES,
    ReasonCode.NOT_FRONTAL,
    ReasonCode.HELMET,
    ReasonCode.EYES_OCCLUDED,
    ReasonCode.MOUTH_OCCLUDED,
    ReasonCode.FACE_PAINT,
    ReasonCode.FEATURES_MISSING,
    ReasonCode.LOW_RESOLUTION,
    ReasonCode.BLURRY,
    ReasonCode.POOR_LIGHTING,
    ReasonCode.FACE_COVERING,
)


def editor_message(code: str) -> str:
    """The editor-facing message for a reason or warning code."""
    return EDITOR_MESSAGES[code]


def order_reasons(codes: list[ReasonCode] | set[ReasonCode]) -> list[ReasonCode]:
    """Deduplicate and sort reason codes, most actionable first."""
    unique = {ReasonCode(c) for c in codes}
    return [c for c in REASON_PRIORITY if c in unique]
