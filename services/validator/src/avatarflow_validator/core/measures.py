"""Pure measurements on the working image and the main face's landmarks.

Each function returns plain numbers; :mod:`.checks` compares them with thresholds. Sizes are
expressed relative to the face (inter-ocular distance, IOD, or a face crop resampled to a fixed
size) so that the same face measures the same at any resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import landmarks as lm

FACE_CROP_SIZE = 128  # blur is measured on the face resampled to this many pixels square


def grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab as float: L in 0..100, a and b centred on 0."""
    converted = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    converted[..., 0] *= 100.0 / 255.0
    converted[..., 1:] -= 128.0
    return converted


def square_face_crop(image: np.ndarray, landmarks: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """The face oval's bounding square (grown by ``margin`` of its side), clipped to the image."""
    x, y, w, h = lm.face_box(landmarks)
    side = max(w, h) * (1.0 + margin)
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = max(0, round(cx - side / 2)), max(0, round(cy - side / 2))
    x1 = min(image.shape[1], round(cx + side / 2))
    y1 = min(image.shape[0], round(cy + side / 2))
    return image[y0:y1, x0:x1]


def resampled(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    shrinking = max(height, width) > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


def edge_width(grey_face: np.ndarray) -> float:
    """Effective edge width in pixels of the crop, worst direction (larger = blurrier).

    For an edge blurred over w pixels, sum(I')^2 ~ 1/w and sum(I'')^2 ~ 1/w^3, so
    sqrt(sum I'^2 / sum I''^2) ~ w whatever the edge's contrast: exposure does not matter, and
    a horizontal motion blur shows up in the horizontal direction alone.
    """
    image = grey_face.astype(np.float64)
    widths = []
    for axis in (0, 1):
        first = np.diff(image, axis=axis)
        second = np.diff(first, axis=axis)
        energy_first = float((first**2).sum())
        energy_second = float((second**2).sum())
        if energy_second <= 1e-9:
            widths.append(float(image.shape[axis]))
        else:
            widths.append(float(np.sqrt(energy_first / energy_second)))
    return max(widths)


def blockiness(grey_face: np.ndarray, edge_step: float = 6.0) -> float:
    """Share of strong pixel steps that sit on the busiest quarter of columns/rows (0.25..1).

    A picture enlarged by pixel repetition only changes value at block borders, which are the same
    columns in every row: nearly all its steps fall on a few columns. Natural detail is spread
    evenly, so about a quarter to a third of the steps fall on any quarter of the columns.
    """
    image = grey_face.astype(np.float64)
    shares = []
    for axis in (0, 1):
        steps = np.abs(np.diff(image, axis=1 - axis)) > edge_step
        profile = steps.sum(axis=axis).astype(np.float64)
        total = profile.sum()
        if total < 20 or profile.size < 8:
            continue
        top = np.sort(profile)[::-1][: max(1, profile.size // 4)]
        shares.append(float(top.sum() / total))
    return min(shares) if shares else 0.25


@dataclass(frozen=True)
class Lighting:
    median: float  # face luminance median, 0..255
    dark_fraction: float  # share of face pixels at or below 20
    clipped_fraction: float  # share of face pixels at or above 250
    side_balance: float  # darker half / brighter half of the face, mean luminance (1 = even)


def lighting(rgb: np.ndarray, landmarks: np.ndarray) -> Lighting:
    luminance = grey(rgb)
    shape = luminance.shape
    face = lm.polygon_mask(shape, lm.points(landmarks, lm.FACE_OVAL))
    values = luminance[face] if face.any() else luminance.ravel()
    left = luminance[lm.polygon_mask(shape, lm.points(landmarks, lm.FACE_HALF_IMAGE_LEFT))]
    right = luminance[lm.polygon_mask(shape, lm.points(landmarks, lm.FACE_HALF_IMAGE_RIGHT))]
    if left.size and right.size:
        means = sorted([float(left.mean()), float(right.mean())])
        balance = (means[0] + 1.0) / (means[1] + 1.0)
    else:
        balance = 1.0
    return Lighting(
        median=float(np.median(values)),
        dark_fraction=float((values <= 20).mean()),
        clipped_fraction=float((values >= 250).mean()),
        side_balance=balance,
    )


@dataclass(frozen=True)
class Regions:
    """Colour/texture statistics of the facial regions the occlusion checks compare."""

    skin_l: float  # reference skin (forehead + nose bridge) Lab L
    eye_l: float  # eye openings (both), Lab L
    eye_contrast: float  # std of L inside the eye openings
    eye_bright: float  # share of eye-opening pixels brighter than the reference skin (sclera, catchlight)
    lips_redness: float  # lips a* minus skin a*
    lower_delta_e: float  # colour distance lower face (below the nose) vs reference skin
    lower_texture: float  # high-pass energy in the lower face / same in the reference skin
    feature_contrast: float  # min over eyes and mouth of local L std (is each feature drawn at all)
    forehead_delta_e: float  # forehead vs the skin right around the eyes (niqab: forehead covered)
    forehead_lower_delta_e: float  # forehead vs lower face (one fabric over both)


def _median_lab(values: np.ndarray) -> np.ndarray:
    return np.median(values, axis=0) if values.size else np.zeros(3, dtype=np.float32)


def regions(rgb: np.ndarray, landmarks: np.ndarray) -> Regions:
    shape = rgb.shape[:2]
    colours = lab(rgb)
    light = colours[..., 0]
    iod = max(lm.inter_ocular(landmarks), 1.0)
    forehead = lm.disc_mask(shape, landmarks[lm.FOREHEAD, :2], 0.22 * iod)
    bridge = lm.disc_mask(shape, landmarks[168, :2], 0.1 * iod)
    skin = colours[forehead | bridge]
    skin_lab = _median_lab(skin)
    eyes = lm.polygon_mask(shape, lm.points(landmarks, lm.EYE_IMAGE_LEFT)) | lm.polygon_mask(
        shape, lm.points(landmarks, lm.EYE_IMAGE_RIGHT)
    )
    eye_values = light[eyes]
    lips = lm.polygon_mask(shape, lm.points(landmarks, lm.LIPS_OUTER))
    lips_lab = _median_lab(colours[lips])
    lower = lm.polygon_mask(shape, lm.points(landmarks, lm.LOWER_FACE)) & ~lips
    lower_lab = _median_lab(colours[lower])
    high_pass = np.abs(light - cv2.GaussianBlur(light, (0, 0), max(0.8, 0.04 * iod)))
    skin_texture = float(high_pass[forehead | bridge].mean()) if skin.size else 0.0
    lower_texture = float(high_pass[lower].mean()) if lower.any() else 0.0
    # Periocular skin: a ring just below each eye (visible under a niqab, covered by sunglasses).
    below_eyes = lm.disc_mask(shape, landmarks[lm.BELOW_EYE_IMAGE_LEFT, :2], 0.15 * iod) | lm.disc_mask(
        shape, landmarks[lm.BELOW_EYE_IMAGE_RIGHT, :2], 0.15 * iod
    )
    periocular_lab = _median_lab(colours[below_eyes])
    feature_stds = []
    for region in (
        lm.disc_mask(shape, lm.points(landmarks, lm.EYE_IMAGE_LEFT).mean(axis=0), 0.25 * iod),
        lm.disc_mask(shape, lm.points(landmarks, lm.EYE_IMAGE_RIGHT).mean(axis=0), 0.25 * iod),
        lm.disc_mask(shape, lm.points(landmarks, lm.LIPS_OUTER).mean(axis=0), 0.35 * iod),
    ):
        feature_stds.append(float(light[region].std()) if region.any() else 0.0)
    return Regions(
        skin_l=float(skin_lab[0]),
        eye_l=float(eye_values.mean()) if eye_values.size else 0.0,
        eye_contrast=float(eye_values.std()) if eye_values.size else 0.0,
        eye_bright=float((eye_values > skin_lab[0]).mean()) if eye_values.size else 0.0,
        lips_redness=float(lips_lab[1] - skin_lab[1]),
        lower_delta_e=float(np.linalg.norm(lower_lab - skin_lab)),
        lower_texture=lower_texture / max(skin_texture, 0.5),
        feature_contrast=min(feature_stds),
        forehead_delta_e=float(np.linalg.norm(_median_lab(colours[forehead]) - periocular_lab)),
        forehead_lower_delta_e=float(np.linalg.norm(_median_lab(colours[forehead]) - lower_lab)),
    )


def background_edge_density(rgb: np.ndarray, landmarks: np.ndarray) -> float:
    """Share of Canny edge pixels outside the head-and-shoulders region (person excluded)."""
    height, width = rgb.shape[:2]
    small_scale = min(1.0, 512.0 / max(height, width))
    luminance = grey(rgb)
    if small_scale < 1.0:
        luminance = cv2.resize(
            luminance,
            (max(1, round(width * small_scale)), max(1, round(height * small_scale))),
            cv2.INTER_AREA,
        )
    edges = cv2.Canny(cv2.GaussianBlur(luminance, (3, 3), 0), 60, 150) > 0
    x, y, w, h = (v * small_scale for v in lm.face_box(landmarks))
    person = np.zeros(edges.shape, dtype=np.uint8)
    # Head (grown for hair) plus a trapezoid for neck and shoulders down to the bottom edge.
    cx = x + w / 2
    cv2.ellipse(person, (round(cx), round(y + h / 2)), (round(w * 0.85), round(h * 0.9)), 0, 0, 360, 1, -1)
    bottom = edges.shape[0]
    shoulders = np.array(
        [
            [cx - w * 0.6, y + h * 0.9],
            [cx + w * 0.6, y + h * 0.9],
            [cx + w * 1.8, bottom],
            [cx - w * 1.8, bottom],
        ]
    )
    cv2.fillPoly(person, [np.round(shoulders).astype(np.int32)], 1)
    background = person == 0
    if background.sum() < 0.05 * edges.size:
        return 0.0
    return float(edges[background].mean())


def noise_level(grey_face: np.ndarray) -> float:
    """Median absolute Laplacian over the face crop: sensor noise and texture (near 0 when drawn)."""
    laplacian = cv2.Laplacian(grey_face.astype(np.float32), cv2.CV_32F)
    return float(np.median(np.abs(laplacian)))


def face_lstar_percentiles(rgb: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
    """5th and 95th percentile of L* over the face oval (shadows and highlights)."""
    light = lab(rgb)[..., 0]
    face = lm.polygon_mask(light.shape, lm.points(landmarks, lm.FACE_OVAL))
    values = light[face] if face.any() else light.ravel()
    return float(np.percentile(values, 5)), float(np.percentile(values, 95))


def eye_contrast(rgb: np.ndarray, landmarks: np.ndarray) -> float:
    """L* spread (p90-p10) inside both eye openings relative to the face's p95-p5 spread."""
    light = lab(rgb)[..., 0]
    shape = light.shape
    eyes = lm.polygon_mask(shape, lm.points(landmarks, lm.EYE_IMAGE_LEFT)) | lm.polygon_mask(
        shape, lm.points(landmarks, lm.EYE_IMAGE_RIGHT)
    )
    face = lm.polygon_mask(shape, lm.points(landmarks, lm.FACE_OVAL))
    if eyes.sum() < 4 or not face.any():
        return 0.0
    eye_values, face_values = light[eyes], light[face]
    eye_spread = np.percentile(eye_values, 90) - np.percentile(eye_values, 10)
    face_spread = np.percentile(face_values, 95) - np.percentile(face_values, 5)
    return float(eye_spread / (face_spread + 1.0))


def eye_surround_difference(rgb: np.ndarray, landmarks: np.ndarray) -> float:
    """How unlike face skin the surroundings of the eyes are (Delta E, the less covered eye).

    Sunglasses put one surface (a tinted, dark or mirrored lens) over the eye opening AND the skin
    around it: below the lower lid, beyond the outer corner and up to the brow. Around an uncovered
    eye at least one of those patches is skin, which matches the cheek below it or the forehead
    (whichever is nearer in colour: a cap's shadow or a mask can hide one of them). Per eye we take
    the closest patch; the result is the smaller of the two eyes, so both eyes must be covered.
    """
    colours = lab(rgb)
    shape = colours.shape[:2]
    iod = max(lm.inter_ocular(landmarks), 1.0)
    patch = 0.08 * iod

    def median_at(centre: np.ndarray, radius: float) -> np.ndarray | None:
        mask = lm.disc_mask(shape, centre, radius)
        return np.median(colours[mask], axis=0) if mask.any() else None

    forehead = median_at(landmarks[lm.FOREHEAD, :2], 0.22 * iod)
    axis = landmarks[lm.EYE_OUTER_IMAGE_RIGHT, :2] - landmarks[lm.EYE_OUTER_IMAGE_LEFT, :2]
    axis = axis / max(float(np.linalg.norm(axis)), 1e-6)
    per_eye = []
    for below, outer, upper_lid, brow, cheek_index, outward in (
        (
            lm.BELOW_EYE_IMAGE_LEFT,
            lm.EYE_OUTER_IMAGE_LEFT,
            lm.UPPER_LID_IMAGE_LEFT,
            lm.BROW_MIDDLE_IMAGE_LEFT,
            lm.CHEEK_IMAGE_LEFT,
            -1.0,
        ),
        (
            lm.BELOW_EYE_IMAGE_RIGHT,
            lm.EYE_OUTER_IMAGE_RIGHT,
            lm.UPPER_LID_IMAGE_RIGHT,
            lm.BROW_MIDDLE_IMAGE_RIGHT,
            lm.CHEEK_IMAGE_RIGHT,
            1.0,
        ),
    ):
        references = [r for r in (median_at(landmarks[cheek_index, :2], 0.15 * iod), forehead) if r is not None]
        centres = (
            landmarks[below, :2],
            landmarks[outer, :2] + outward * axis * 0.15 * iod,
            (landmarks[upper_lid, :2] + landmarks[brow, :2]) / 2,
        )
        distances = [
            min(float(np.linalg.norm(colour - r)) for r in references)
            for colour in (median_at(c, patch) for c in centres)
            if colour is not None and references
        ]
        if distances:
            per_eye.append(min(distances))
    return min(per_eye, default=0.0)


def mouth_structure(rgb: np.ndarray, landmarks: np.ndarray) -> float:
    """Mean vertical L* gradient over the lips relative to the face's mean vertical gradient."""
    light = lab(rgb)[..., 0]
    shape = light.shape
    vertical = np.abs(cv2.Sobel(light, cv2.CV_32F, 0, 1))
    lips = lm.polygon_mask(shape, lm.points(landmarks, lm.LIPS_OUTER))
    face = lm.polygon_mask(shape, lm.points(landmarks, lm.FACE_OVAL))
    if lips.sum() < 4 or not face.any():
        return 0.0
    return float(vertical[lips].mean() / (vertical[face].mean() + 1e-3))


GRAPHIC_SIZE = 256  # the whole image is reduced to this long side for the graphic-shape measures


@dataclass(frozen=True)
class GraphicShape:
    """Is the image flat artwork showing one compact object on a plain background (an icon)?"""

    palette_share: float  # share of pixels in the 8 commonest colours (16 levels per channel)
    plain_border: float  # share of border pixels within Delta E 10 of the border's median colour
    object_share: float  # largest foreground component / image area
    object_dominance: float  # largest foreground component / all foreground
    solidity: float  # its area / its convex hull's area
    aspect: float  # its bounding box width / height
    centre: tuple[float, float]  # its centroid, relative to the image (0..1)


def graphic_shape(rgb: np.ndarray) -> GraphicShape:
    """Measures of the image as a graphic: palette, plain border, the largest foreground object.

    Foreground is everything more than Delta E 10 from the border's median colour (the background
    of a graphic is what its edges show).
    """
    height, width = rgb.shape[:2]
    factor = min(1.0, GRAPHIC_SIZE / max(height, width, 1))
    small = cv2.resize(
        rgb, (max(1, round(width * factor)), max(1, round(height * factor))), interpolation=cv2.INTER_AREA
    )
    quantised = (small // 16).reshape(-1, 3).astype(np.int32)
    counts = np.bincount(quantised[:, 0] * 256 + quantised[:, 1] * 16 + quantised[:, 2])
    palette_share = float(np.sort(counts)[::-1][:8].sum() / quantised.shape[0])
    colours = lab(small)
    border = np.concatenate([colours[0], colours[-1], colours[:, 0], colours[:, -1]])
    background = np.median(border, axis=0)
    plain_border = float((np.linalg.norm(border - background, axis=1) < 10.0).mean())
    foreground = (np.linalg.norm(colours - background, axis=2) >= 10.0).astype(np.uint8)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(foreground, connectivity=8)
    if count < 2:
        return GraphicShape(palette_share, plain_border, 0.0, 0.0, 0.0, 0.0, (0.5, 0.5))
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = float(stats[largest, cv2.CC_STAT_AREA])
    contours, _ = cv2.findContours((labels == largest).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea)
    hull_area = float(cv2.contourArea(cv2.convexHull(outline)))
    box_width, box_height = stats[largest, cv2.CC_STAT_WIDTH], stats[largest, cv2.CC_STAT_HEIGHT]
    return GraphicShape(
        palette_share=palette_share,
        plain_border=plain_border,
        object_share=area / foreground.size,
        object_dominance=area / float(foreground.sum()),
        solidity=float(cv2.contourArea(outline)) / max(hull_area, 1.0),
        aspect=float(box_width) / max(float(box_height), 1.0),
        centre=(
            float(centroids[largest][0] / foreground.shape[1]),
            float(centroids[largest][1] / foreground.shape[0]),
        ),
    )
