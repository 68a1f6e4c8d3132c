"""Random moving polygon masks for video inpainting, as STTN-I trains with.

A port of researchmm/STTN `core/utils.py::create_random_shape_with_random_motion` without matplotlib: a random
closed shape of `edge_num` (6–8) cubic Bézier segments whose control points lie on a circle with radii jittered
by `ratio`, rasterised at a random size between a third of the frame and the whole frame, placed at a random
position. With probability `stationary_prob` (0.5, as the authors) the same mask is used for every frame;
otherwise it moves with a random velocity (speed ≤ `max_speed` px/frame) that takes a Gaussian random walk and is
redrawn whenever the shape would leave the frame.

Masks are uint8 `[T, H, W]` with 1 = hole, 0 = known pixel.
"""

from __future__ import annotations

import cv2
import numpy as np


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def random_shape(rng: np.random.Generator, height: int, width: int, edge_num: int = 7, ratio: float = 0.7) -> np.ndarray:
    """A random smooth closed shape filling a `height` × `width` box, cropped to its bounding box (uint8 0/1)."""
    points_num = edge_num * 3 + 1
    angles = np.linspace(0, 2 * np.pi, points_num)
    radii = 2 * ratio * rng.random(points_num) + 1 - ratio
    verts = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]
    verts[-1] = verts[0]
    # Sample each cubic Bézier segment (p0, c1, c2, p3) densely: the PathPatch(CURVE4) the authors draw.
    t = np.linspace(0, 1, 16)[:, None]
    curve = []
    for s in range(edge_num):
        p0, c1, c2, p3 = verts[3 * s : 3 * s + 4]
        curve.append((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * c1 + 3 * (1 - t) * t**2 * c2 + t**3 * p3)
    curve = np.concatenate(curve)
    lo, hi = curve.min(axis=0), curve.max(axis=0)
    scale = np.array([width - 1, height - 1]) / np.maximum(hi - lo, 1e-6)
    pts = np.round((curve - lo) * scale).astype(np.int32)
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillPoly(canvas, [pts.reshape(-1, 1, 2)], 1)
    ys, xs = np.nonzero(canvas)
    return canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def moving_polygon_masks(
    num_frames: int,
    height: int,
    width: int,
    seed=None,
    max_speed: float = 3.0,
    stationary_prob: float = 0.5,
) -> np.ndarray:
    """Random polygon masks for a clip: uint8 `[num_frames, height, width]`, 1 = hole.

    Args:
      num_frames, height, width: the clip's size.
      seed: int, None or a `np.random.Generator`; the same seed gives the same masks.
      max_speed: initial speed bound in pixels per frame (the authors use 3).
      stationary_prob: probability that the mask does not move (the authors use 0.5).
    """
    if height < 3 or width < 3:
        raise ValueError(f"mask size must be at least 3x3, got {height}x{width}")
    rng = _rng(seed)
    shape_h = int(rng.integers(height // 3, height)) if height // 3 < height - 1 else height - 1
    shape_w = int(rng.integers(width // 3, width)) if width // 3 < width - 1 else width - 1
    region = random_shape(rng, max(shape_h, 2), max(shape_w, 2), int(rng.integers(6, 9)), int(rng.integers(6, 9)) / 10)
    rh, rw = region.shape
    y = int(rng.integers(0, height - rh + 1))
    x = int(rng.integers(0, width - rw + 1))
    masks = np.zeros((num_frames, height, width), np.uint8)
    if rng.uniform() < stationary_prob:
        masks[:, y : y + rh, x : x + rw] = region
        return masks
    speed, angle = rng.uniform(0, max_speed), rng.uniform(0, 2 * np.pi)
    for t in range(num_frames):
        masks[t, y : y + rh, x : x + rw] = region
        y += int(speed * np.sin(angle))
        x += int(speed * np.cos(angle))
        speed, angle = speed + rng.normal(0, 3 / 2), angle + rng.normal(0, 0.5 / 2)
        if y > height - rh or y < 0 or x > width - rw or x < 0:
            # The authors' get_random_velocity(dist="guassian"): |N(0, max/2)| speed, uniform direction.
            speed, angle = abs(rng.normal(0, max_speed / 2)), rng.uniform(0, 2 * np.pi)
        y = int(np.clip(y, 0, height - rh))
        x = int(np.clip(x, 0, width - rw))
    return masks

