"""Deterministic procedural videos with ground truth for every task in tfvr (the embedded default data).

A scene is a textured world (sky above a wavy horizon, textured ground below) seen by a moving camera (pan, zoom
and a small rotation) with several textured objects moving in front of it, each with its own translation,
rotation and scale change, drawn back to front so that they occlude one another and the background. Every frame is
rendered at `subframes` instants spread over one frame interval: the centre instant is the sharp frame, the mean of
all of them is the motion-blurred frame (the GoPro recipe: average sharp high-frame-rate frames). Each sharp frame
also gets per-pixel semantic labels (`CLASS_NAMES`) and instance ids. Optional hard cuts start a new, unrelated
scene; optional fades go from and to black.

Textures are made of several octaves of value noise, sinusoidal gratings and random strokes, so they hold detail
up to the pixel frequency (denoising and super-resolution are learnable but not trivial) as well as sharp edges.
Motion is specified in pixels per frame at a 64-pixel frame and scales with the frame size.

    video = generate(seed=0, num_frames=32, height=64, width=64)
    video.frames      # uint8 [T, H, W, 3] sharp RGB frames
    video.blurred     # uint8 [T, H, W, 3] GoPro-style blurred frames
    video.labels      # int32 [T, H, W] class index, see CLASS_NAMES
    video.instances   # int32 [T, H, W] 0 = background, 1.. = object ids (unique across the whole video)
    write_mp4(video, "clip.mp4")

The same (seed, size, options) always gives the same video, on any machine (NumPy's PCG64 + OpenCV warps).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

# Semantic classes. "sky" and "ground" are background ("stuff"); the rest are foreground objects ("things").
CLASS_NAMES: tuple[str, ...] = ("sky", "ground", "ball", "box", "blob")
NUM_CLASSES: int = len(CLASS_NAMES)
BACKGROUND_CLASSES: tuple[int, ...] = (0, 1)
FOREGROUND_CLASSES: tuple[int, ...] = (2, 3, 4)
SKY, GROUND, BALL, BOX, BLOB = range(NUM_CLASSES)


@dataclasses.dataclass
class SyntheticVideo:
    """A generated clip and its ground truth.

    Attributes:
      frames: uint8 [T, H, W, 3] sharp RGB frames.
      blurred: uint8 [T, H, W, 3] mean of the `subframes` sharp sub-frames spread over each frame interval
        (sharp frame = the centre sub-frame), or None when generated with `blur=False`.
      labels: int32 [T, H, W] semantic class per pixel (index into `CLASS_NAMES`).
      instances: int32 [T, H, W] 0 for background, otherwise the object's id (unique across scenes).
      instance_classes: int32 [K + 1] class of each instance id (entry 0, the background, is -1).
      cuts: frame indices where a new scene starts (hard cuts; 0 is not listed).
      fade: float32 [T] brightness factor applied for fades (1 = none, 0 = black).
      fps: the nominal frame rate (used when writing .mp4).
      seed: the seed that made it.
    """

    frames: np.ndarray
    blurred: np.ndarray | None
    labels: np.ndarray
    instances: np.ndarray
    instance_classes: np.ndarray
    cuts: tuple[int, ...]
    fade: np.ndarray
    fps: float
    seed: int

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def scenes(self) -> list[tuple[int, int]]:
        """[start, end) frame ranges of the scenes between cuts."""
        bounds = [0, *self.cuts, self.num_frames]
        return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


# ----------------------------------------------------------------------------------------------------- textures


def _value_noise(rng: np.random.Generator, h: int, w: int, cell: float, channels: int) -> np.ndarray:
    """Smooth random field with features about `cell` pixels wide, zero mean, unit-ish std."""
    gh, gw = max(2, int(math.ceil(h / cell)) + 1), max(2, int(math.ceil(w / cell)) + 1)
    grid = rng.standard_normal((gh, gw, channels)).astype(np.float32)
    interp = cv2.INTER_CUBIC if cell > 1.5 else cv2.INTER_NEAREST
    out = cv2.resize(grid, (w, h), interpolation=interp)
    return out.reshape(h, w, channels)


def _gratings(rng: np.random.Generator, h: int, w: int, count: int, period: tuple[float, float]) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((h, w), np.float32)
    for _ in range(count):
        angle = rng.uniform(0, math.pi)
        freq = 2 * math.pi / rng.uniform(*period)
        phase = rng.uniform(0, 2 * math.pi)
        wave = np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * freq + phase)
        if rng.random() < 0.4:  # square-ish wave: stripes with sharp edges
            wave = np.tanh(4 * wave)
        out += wave * rng.uniform(0.3, 1.0)
    return out / max(1, count)


def _strokes(rng: np.random.Generator, img: np.ndarray, count: int, palette: np.ndarray) -> None:
    """Draws random lines, circles and rectangles in place (sharp edges, thin details)."""
    h, w = img.shape[:2]
    for _ in range(count):
        colour = tuple(float(c) for c in np.clip(palette[rng.integers(len(palette))] + rng.normal(0, 0.12, 3), 0, 1))
        kind = rng.integers(3)
        thickness = int(rng.integers(1, 3)) if rng.random() < 0.7 else -1
        if kind == 0:
            p1 = (int(rng.integers(w)), int(rng.integers(h)))
            p2 = (int(p1[0] + rng.normal(0, w / 4)), int(p1[1] + rng.normal(0, h / 4)))
            cv2.line(img, p1, p2, colour, max(1, thickness), cv2.LINE_AA)
        elif kind == 1:
            c = (int(rng.integers(w)), int(rng.integers(h)))
            r = int(rng.integers(1, max(2, min(h, w) // 8)))
            cv2.circle(img, c, r, colour, thickness, cv2.LINE_AA)
        else:
            p1 = (int(rng.integers(w)), int(rng.integers(h)))
            p2 = (int(p1[0] + rng.integers(2, max(3, w // 6))), int(p1[1] + rng.integers(2, max(3, h // 6))))
            cv2.rectangle(img, p1, p2, colour, thickness, cv2.LINE_AA)


def _palette(rng: np.random.Generator, cls: int) -> np.ndarray:
    """A few RGB colours typical of a class (so labels predict appearance, as vid2vid needs)."""
    hue_ranges = {SKY: (195, 225), GROUND: (25, 130), BALL: (-20, 40), BOX: (180, 260), BLOB: (270, 330)}
    sat = {SKY: (0.25, 0.6), GROUND: (0.35, 0.8), BALL: (0.6, 1.0), BOX: (0.05, 0.45), BLOB: (0.5, 0.9)}[cls]
    val = {SKY: (0.7, 1.0), GROUND: (0.3, 0.7), BALL: (0.6, 1.0), BOX: (0.35, 0.85), BLOB: (0.5, 0.95)}[cls]
    lo, hi = hue_ranges[cls]
    hsv = np.stack([(rng.uniform(lo, hi, 4) % 360) / 2, rng.uniform(*sat, 4) * 255, rng.uniform(*val, 4) * 255], -1)
    rgb = cv2.cvtColor(hsv.astype(np.uint8)[None], cv2.COLOR_HSV2RGB)[0]
    return rgb.astype(np.float32) / 255.0


def _texture(rng: np.random.Generator, h: int, w: int, cls: int, px: float) -> np.ndarray:
    """float32 [h, w, 3] in [0, 1]: class palette modulated by multi-octave noise, gratings and strokes.

    `px` is the size of one output pixel relative to a 64-pixel frame, so detail scales with resolution but
    always reaches the pixel level.
    """
    pal = _palette(rng, cls)
    # Large-scale mixture of the palette colours.
    weights = np.stack([_value_noise(rng, h, w, 24 * px, 1)[..., 0] * 1.5 for _ in range(len(pal))], -1)
    weights = np.exp(weights - weights.max(-1, keepdims=True))
    img = (weights / weights.sum(-1, keepdims=True)) @ pal
    # Detail: octaves down to 1-2 pixels. Smooth classes (sky) get less fine detail, textured ones more.
    fine = {SKY: 0.025, GROUND: 0.11, BALL: 0.07, BOX: 0.06, BLOB: 0.09}[cls]
    lum = np.zeros((h, w), np.float32)
    for cell, amp in ((12.0 * px, 1.0), (6.0 * px, 0.9), (3.0, 0.8), (1.6, 0.7), (1.0, 0.5)):
        lum += amp * _value_noise(rng, h, w, cell, 1)[..., 0]
    lum = lum / 2.0 + _gratings(rng, h, w, 3, (3.0, 16.0 * px)) * 0.8
    chroma = _value_noise(rng, h, w, 4 * px, 3) * 0.35
    img = img + fine * (lum[..., None] + chroma)
    if cls != SKY:
        n = int(rng.integers(4, 10) * max(1.0, h * w / (96 * 96)) ** 0.5)
        _strokes(rng, img, n, pal)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------------- geometry


def _affine(scale: float = 1.0, angle: float = 0.0, tx: float = 0.0, ty: float = 0.0) -> np.ndarray:
    """3x3 matrix of x -> R(angle) * scale * x + t (angle in radians)."""
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return np.array([[c, -s, tx], [s, c, ty], [0, 0, 1]], np.float64)


def _translate(tx: float, ty: float) -> np.ndarray:
    return _affine(1.0, 0.0, tx, ty)


@dataclasses.dataclass
class _Object:
    instance: int
    cls: int
    rgba: np.ndarray  # float32 [s, s, 4], colour premultiplied by alpha
    size: int
    pos: np.ndarray  # world position at t=0
    vel: np.ndarray  # world px per frame
    wobble: np.ndarray  # amplitude (x, y), px
    wobble_freq: float
    wobble_phase: float
    angle0: float
    spin: float  # radians per frame
    scale0: float
    scale_rate: float  # relative scale change per frame
    depth: float

    def matrix(self, t: float) -> np.ndarray:
        """Object patch coordinates -> world coordinates at time t (frames since the scene start)."""
        p = self.pos + self.vel * t + self.wobble * math.sin(self.wobble_freq * t + self.wobble_phase)
        scale = self.scale0 * math.exp(self.scale_rate * t)
        half = (self.size - 1) / 2.0
        return _affine(scale, self.angle0 + self.spin * t, p[0], p[1]) @ _translate(-half, -half)


@dataclasses.dataclass
class _Camera:
    center: np.ndarray
    vel: np.ndarray
    shake: np.ndarray
    shake_freq: float
    zoom_amp: float
    zoom_freq: float
    zoom_phase: float
    zoom_rate: float
    rot_amp: float
    rot_freq: float
    height: int
    width: int

    def matrix(self, t: float) -> np.ndarray:
        """World -> screen coordinates at time t."""
        c = self.center + self.vel * t + self.shake * np.sin(self.shake_freq * t + np.array([0.0, 1.3]))
        zoom = math.exp(self.zoom_rate * t + self.zoom_amp * math.sin(self.zoom_freq * t + self.zoom_phase))
        angle = self.rot_amp * math.sin(self.rot_freq * t)
        to_screen = _translate((self.width - 1) / 2.0, (self.height - 1) / 2.0)
        return to_screen @ _affine(zoom, -angle) @ _translate(-c[0], -c[1])


def _shape_mask(rng: np.random.Generator, cls: int, size: int) -> np.ndarray:
    """float32 [size, size] alpha (anti-aliased) of a class's shape, drawn 4x supersampled."""
    ss = 4
    big = np.zeros((size * ss, size * ss), np.uint8)
    c = (size * ss - 1) / 2.0
    r = size * ss / 2.0 - ss
    if cls == BALL:
        axes = (int(r), int(r * rng.uniform(0.55, 1.0)))
        cv2.ellipse(big, (int(c), int(c)), axes, float(rng.uniform(0, 180)), 0, 360, 255, -1, cv2.LINE_AA)
    elif cls == BOX:
        a, b = r * rng.uniform(0.6, 0.95), r * rng.uniform(0.35, 0.95)
        ang = rng.uniform(0, math.pi)
        pts = np.array([[-a, -b], [a, -b], [a, b], [-a, b]]) @ np.array(
            [[math.cos(ang), math.sin(ang)], [-math.sin(ang), math.cos(ang)]])
        cv2.fillPoly(big, [np.round(pts + c).astype(np.int32)], 255, cv2.LINE_AA)
    else:  # BLOB: a random star-like polygon
        n = int(rng.integers(5, 11))
        angles = np.sort(rng.uniform(0, 2 * math.pi, n))
        radii = r * rng.uniform(0.4, 1.0, n)
        pts = np.stack([c + radii * np.cos(angles), c + radii * np.sin(angles)], -1)
        cv2.fillPoly(big, [np.round(pts).astype(np.int32)], 255, cv2.LINE_AA)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


# ----------------------------------------------------------------------------------------------------- scenes


class _Scene:
    def __init__(self, rng: np.random.Generator, num_frames: int, height: int, width: int, num_objects: int,
                 motion: float, first_instance: int, subframes: int):
        self.h, self.w = height, width
        px = min(height, width) / 64.0  # motions are given at a 64-pixel frame
        speed = motion * px
        self.camera = _Camera(
            center=np.zeros(2),
            vel=rng.normal(0, 1.0, 2) * speed,
            shake=rng.uniform(0, 1.0, 2) * speed,
            shake_freq=rng.uniform(0.2, 0.6),
            zoom_amp=rng.uniform(0.0, 0.08) * min(1.0, motion),
            zoom_freq=rng.uniform(0.05, 0.2),
            zoom_phase=rng.uniform(0, 2 * math.pi),
            zoom_rate=rng.normal(0, 0.006) * min(1.0, motion),
            rot_amp=math.radians(rng.uniform(0, 4)) * min(1.0, motion),
            rot_freq=rng.uniform(0.05, 0.25),
            height=height, width=width,
        )
        # Bounds of everything the camera sees over the scene (incl. the blur sub-frames) -> the world canvas.
        half_exposure = 0.5
        times = np.linspace(-half_exposure, num_frames - 1 + half_exposure, max(2, 2 * num_frames))
        corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]], float).T
        pts = np.concatenate([(np.linalg.inv(self.camera.matrix(t)) @ corners)[:2].T for t in times])
        lo = np.floor(pts.min(0)) - 4
        hi = np.ceil(pts.max(0)) + 4
        self.origin = lo  # world coordinates of canvas pixel (0, 0)
        cw, ch = int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1

        # World: sky above a wavy horizon, ground below. Horizon around the upper third of the first view.
        sky = _texture(rng, ch, cw, SKY, px)
        ground = _texture(rng, ch, cw, GROUND, px)
        xs = np.arange(cw, dtype=np.float32)
        horizon0 = -lo[1] + rng.uniform(-0.35, 0.1) * height  # canvas row of world y = (height frac)
        waves = sum(rng.uniform(0.5, 4.0) * px * np.sin(xs * 2 * math.pi / (rng.uniform(20, 120) * px)
                                                        + rng.uniform(0, 6.3)) for _ in range(3))
        slope = math.tan(math.radians(rng.uniform(-6, 6)))
        horizon = horizon0 + waves + slope * (xs - cw / 2)
        rows = np.arange(ch, dtype=np.float32)[:, None]
        is_sky = rows < horizon[None, :]
        self.canvas = np.where(is_sky[..., None], sky, ground).astype(np.float32)
        self.canvas_labels = np.where(is_sky, SKY, GROUND).astype(np.uint8)

        # Objects: start somewhere in the first view, move at their own pace, drawn back to front.
        self.objects: list[_Object] = []
        start_view = np.linalg.inv(self.camera.matrix(0.0))
        base = min(height, width)
        for k in range(num_objects):
            cls = int(rng.choice(FOREGROUND_CLASSES))
            size = int(max(6, round(base * rng.uniform(0.18, 0.45))))
            alpha = _shape_mask(rng, cls, size)
            rgb = _texture(rng, size, size, cls, px)
            rgba = np.concatenate([rgb * alpha[..., None], alpha[..., None]], -1).astype(np.float32)
            start = start_view @ np.array([rng.uniform(0.1, 0.9) * width, rng.uniform(0.15, 0.95) * height, 1.0])
            direction = rng.uniform(0, 2 * math.pi)
            obj_speed = rng.uniform(0.3, 2.5) * speed
            self.objects.append(_Object(
                instance=first_instance + k, cls=cls, rgba=rgba, size=size, pos=start[:2],
                vel=np.array([math.cos(direction), math.sin(direction)]) * obj_speed,
                wobble=rng.uniform(0, 1.5, 2) * speed, wobble_freq=rng.uniform(0.1, 0.6),
                wobble_phase=rng.uniform(0, 2 * math.pi),
                angle0=rng.uniform(0, 2 * math.pi), spin=math.radians(rng.normal(0, 2.0)) * min(1.0, motion),
                scale0=rng.uniform(0.85, 1.15), scale_rate=rng.normal(0, 0.01) * min(1.0, motion),
                depth=rng.uniform(),
            ))
        self.objects.sort(key=lambda o: o.depth)  # far first
        self.subframes = subframes

    def _canvas_to_screen(self, t: float) -> np.ndarray:
        return self.camera.matrix(t) @ _translate(self.origin[0], self.origin[1])

    def render(self, t: float, with_labels: bool):
        h, w = self.h, self.w
        m = self._canvas_to_screen(t)[:2]
        img = cv2.warpAffine(self.canvas, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        labels = instances = None
        if with_labels:
            labels = cv2.warpAffine(self.canvas_labels, m, (w, h), flags=cv2.INTER_NEAREST,
                                    borderMode=cv2.BORDER_REFLECT).astype(np.int32)
            instances = np.zeros((h, w), np.int32)
        cam = self.camera.matrix(t)
        for obj in self.objects:
            full = cam @ obj.matrix(t)
            s = obj.size
            corners = full @ np.array([[0, s - 1, 0, s - 1], [0, 0, s - 1, s - 1], [1, 1, 1, 1]], float)
            x0 = max(0, int(math.floor(corners[0].min())) - 1)
            y0 = max(0, int(math.floor(corners[1].min())) - 1)
            x1 = min(w, int(math.ceil(corners[0].max())) + 2)
            y1 = min(h, int(math.ceil(corners[1].max())) + 2)
            if x1 <= x0 or y1 <= y0:
                continue  # off screen
            local = _translate(-x0, -y0) @ full
            patch = cv2.warpAffine(obj.rgba, local[:2], (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0, 0))
            a = patch[..., 3:4]
            region = img[y0:y1, x0:x1]
            region *= 1.0 - a
            region += patch[..., :3]
            if with_labels:
                hit = a[..., 0] > 0.5
                labels[y0:y1, x0:x1][hit] = obj.cls
                instances[y0:y1, x0:x1][hit] = obj.instance
        return img, labels, instances


def _scene_bounds(rng: np.random.Generator, num_frames: int, cuts: int | Sequence[int]) -> list[int]:
    if isinstance(cuts, (int, np.integer)):
        n = int(cuts)
        if n < 0:
            raise ValueError(f"cuts must be >= 0, got {n}")
        if n == 0:
            return []
        if num_frames < 2 * (n + 1):
            raise ValueError(f"{n} cuts need at least {2 * (n + 1)} frames (2 per scene), got {num_frames}")
        # Roughly even scenes, jittered, each at least 2 frames long.
        even = np.linspace(0, num_frames, n + 2)[1:-1]
        jitter = rng.uniform(-0.25, 0.25, n) * num_frames / (n + 1)
        bounds = np.clip(np.round(even + jitter).astype(int), 2, num_frames - 2)
        bounds = sorted(set(int(b) for b in bounds))
        out, last = [], 0
        for b in bounds:
            if b - last >= 2 and num_frames - b >= 2:
                out.append(b)
                last = b
        return out
    out = sorted(int(c) for c in cuts)
    if any(c <= 0 or c >= num_frames for c in out) or len(set(out)) != len(out):
        raise ValueError(f"cuts must be distinct frame indices in 1..{num_frames - 1}, got {list(cuts)}")
    return out


def generate(seed: int, num_frames: int, height: int, width: int, *, num_objects: int | tuple[int, int] = (3, 5),
             subframes: int = 7, motion: float = 1.0, cuts: int | Sequence[int] = 0, fade_frames: int = 0,
             blur: bool = True, fps: float = 24.0) -> SyntheticVideo:
    """Renders a procedural video and its ground truth.

    Args:
      seed: any int; the same seed and arguments give the same video.
      num_frames, height, width: output size (any positive sizes; odd ones are fine).
      num_objects: objects per scene, an int or an inclusive (min, max) range drawn per scene.
      subframes: sharp sub-frames rendered per frame interval (the GoPro recipe averages 7 to 13). The sharp
        frame is the centre one (odd counts render no extra instant).
      motion: scales every motion (camera pan/zoom/rotation and objects); 0 gives a still scene. At 1.0 the
        camera pans about 1 px per frame and objects move 0.3 to 2.5 px per frame on a 64-pixel frame,
        proportionally more on larger frames.
      cuts: number of hard scene cuts (placed at random, every scene >= 2 frames) or explicit frame indices.
      fade_frames: if > 0, the video fades in from black over its first `fade_frames` frames and out to black
        over its last `fade_frames`.
      blur: also render the blurred frames (costs `subframes` renders per frame instead of one).
      fps: nominal frame rate stored with the video.

    Returns:
      A `SyntheticVideo`.
    """
    if num_frames < 1 or height < 4 or width < 4:
        raise ValueError(f"need num_frames >= 1 and height, width >= 4; got {num_frames}, {height}, {width}")
    if subframes < 1:
        raise ValueError(f"subframes must be >= 1, got {subframes}")
    rng = np.random.default_rng(seed)
    bounds = _scene_bounds(rng, num_frames, cuts)
    starts = [0, *bounds]
    ends = [*bounds, num_frames]

    frames = np.empty((num_frames, height, width, 3), np.uint8)
    blurred = np.empty_like(frames) if blur else None
    labels = np.empty((num_frames, height, width), np.int32)
    instances = np.empty((num_frames, height, width), np.int32)
    instance_classes = [-1]
    # Sub-frame instants relative to the frame time, spread over one frame interval.
    offsets = (np.arange(subframes) - (subframes - 1) / 2.0) / subframes
    centre = subframes // 2 if subframes % 2 == 1 else None

    for start, end in zip(starts, ends):
        scene_rng = np.random.default_rng(rng.integers(2**63))
        k = num_objects if isinstance(num_objects, (int, np.integer)) else int(
            scene_rng.integers(num_objects[0], num_objects[1] + 1))
        scene = _Scene(scene_rng, end - start, height, width, int(k), motion, len(instance_classes), subframes)
        instance_classes += [o.cls for o in sorted(scene.objects, key=lambda o: o.instance)]
        for i in range(start, end):
            t = float(i - start)
            sharp, lab, ins = scene.render(t, with_labels=True)
            labels[i], instances[i] = lab, ins
            frames[i] = _to_uint8(sharp)
            if blur:
                acc = np.zeros((height, width, 3), np.float64)
                for j, dt in enumerate(offsets):
                    acc += sharp if j == centre else scene.render(t + float(dt), with_labels=False)[0]
                blurred[i] = _to_uint8(acc / subframes)

    fade = np.ones(num_frames, np.float32)
    if fade_frames > 0:
        ramp = (np.arange(min(fade_frames, num_frames), dtype=np.float32) + 1) / (fade_frames + 1)
        fade[: len(ramp)] = np.minimum(fade[: len(ramp)], ramp)
        fade[num_frames - len(ramp):] = np.minimum(fade[num_frames - len(ramp):], ramp[::-1])
        for arr in (frames, blurred):
            if arr is not None:
                arr[:] = _to_uint8(arr.astype(np.float32) / 255.0 * fade[:, None, None, None])

    return SyntheticVideo(frames=frames, blurred=blurred, labels=labels, instances=instances,
                          instance_classes=np.asarray(instance_classes, np.int32), cuts=tuple(bounds),
                          fade=fade, fps=float(fps), seed=int(seed))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)


def write_mp4(video: SyntheticVideo | np.ndarray, path: str | os.PathLike, which: str = "frames",
              fps: float | None = None) -> Path:
    """Writes `video.frames` (or `video.blurred` with which="blurred", or a uint8 [T, H, W, 3] array) as .mp4.

    Goes through `tfvr.data.video_io.write_video` (atomic; odd sizes padded to even). Returns the path.
    """
    from tfvr.data import video_io

    if isinstance(video, SyntheticVideo):
        frames = getattr(video, which)
        if frames is None:
            raise ValueError(f"this video has no {which!r} frames (generated with blur=False?)")
        fps = video.fps if fps is None else fps
    else:
        frames = video
    return video_io.write_video(path, frames, fps=24.0 if fps is None else fps)


def colorize_labels(labels: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] RGB picture of a label map (one fixed colour per class), for summaries and debugging."""
    table = np.array([[110, 160, 230], [90, 140, 60], [230, 80, 40], [150, 150, 170], [190, 70, 200]], np.uint8)
    return table[np.clip(labels, 0, NUM_CLASSES - 1)]
