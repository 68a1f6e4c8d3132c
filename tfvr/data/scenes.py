"""Real video → training clips: scene split, frame sampling, fade / near-uniform frame filter.

The recipe (the data workflow behind STTN-R):

1. PySceneDetect's content detector splits the video into scenes (`detect_scenes`; HSV-difference threshold,
   default 25). A clip never straddles a cut.
2. Within a scene, frames are sampled every `interval` seconds (`sample_indices`; default 0.1 s, i.e. every 3rd
   frame of a 30 fps video; every frame when the interval is shorter than a frame).
3. Sampled frames in a fade (`fade_flags`: the log mean luminance changes faster than `fade_rate` per second
   around the frame) or nearly uniform (`uniform_fraction`: at least `uniform_max` of the pixels within
   ±`uniform_tol` grey levels of the median — black frames, flat title cards) are dropped.
4. What remains of a scene is split into runs of consecutive kept samples, and each run into non-overlapping
   clips of `clip_len` samples (a run's remainder, and scenes too short for one clip, are dropped).

`video_clips(path, settings)` does all of it in one streaming pass over the decoded frames (memory: about one
clip of frames) and fills a `VideoReport` for the manifest. Cross-dissolves between scenes are not detected.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import cv2
import numpy as np

from tfvr.errors import VideoReadError


@dataclass
class SceneSettings:
    """Settings of the scene split and frame filter (the `tfvr prepare` flags)."""

    # PySceneDetect ContentDetector threshold (higher = fewer cuts).
    threshold: float = 25.0
    # Cuts closer than this many frames are merged (PySceneDetect's min_scene_len). Kept small on purpose: a
    # missed cut puts two scenes into one clip, an extra cut only costs a few frames.
    min_scene_len: int = 3
    # Seconds between sampled frames.
    interval: float = 0.1
    # Sampled frames per clip.
    clip_len: int = 10
    # Samples between the starts of consecutive clips of a run (0 = clip_len: no overlap).
    clip_stride: int = 0
    # A frame is in a fade when |d log(mean luminance) / dt| exceeds this (per second) around it.
    fade_rate: float = 0.5
    # Near-uniform frames: at least `uniform_max` of the pixels within ±`uniform_tol` grey levels of the median.
    uniform_tol: float = 12.0
    uniform_max: float = 0.9
    # Drop fade / near-uniform frames (False keeps every sampled frame).
    filter_frames: bool = True

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class VideoReport:
    """What happened to one source video (one entry of manifest.json's `videos` list)."""

    path: str
    split: str = "train"
    fps: float = 0.0
    num_frames: int = 0
    width: int = 0
    height: int = 0
    scenes: list = field(default_factory=list)  # [start, end) frame pairs, as PySceneDetect reports them
    clips: int = 0
    frames_sampled: int = 0
    frames_kept: int = 0
    dropped_fade: int = 0
    dropped_uniform: int = 0
    dropped_scenes: int = 0  # scenes that gave no clip (too short, or too few consecutive kept frames)
    error: str | None = None

    def as_dict(self) -> dict:
        return {
            "path": self.path, "split": self.split, "fps": self.fps, "num_frames": self.num_frames,
            "width": self.width, "height": self.height, "scenes": [list(map(int, s)) for s in self.scenes],
            "clips": self.clips, "frames_sampled": self.frames_sampled, "frames_kept": self.frames_kept,
            "dropped": {"fade": self.dropped_fade, "uniform": self.dropped_uniform, "scenes": self.dropped_scenes},
            "error": self.error,
        }


@dataclass
class SceneClip:
    """One clip cut from a video: its scene, its index in the video, source frame numbers and RGB frames."""

    scene: int
    clip: int
    indices: list[int]
    frames: list[np.ndarray]


def detect_scenes(path: str | os.PathLike, threshold: float = 25.0, min_scene_len: int = 3) -> list[tuple[int, int]]:
    """[start, end) frame ranges of the scenes of a video (PySceneDetect ContentDetector); the whole video when
    there is no cut. Raises `VideoReadError` naming the file if PySceneDetect cannot read it."""
    import scenedetect
    from scenedetect import ContentDetector

    name = os.fspath(path)
    try:
        scenes = scenedetect.detect(name, ContentDetector(threshold=float(threshold), min_scene_len=int(min_scene_len)),
                                    start_in_scene=True)
    except Exception as e:  # noqa: BLE001 - PySceneDetect raises many types (VideoOpenFailure, OSError, ...)
        raise VideoReadError(f"{name}: scene detection failed: {type(e).__name__}: {e}") from None
    return [(int(a.frame_num), int(b.frame_num)) for a, b in scenes]


def sample_indices(start: int, end: int, fps: float, interval: float) -> list[int]:
    """Frame numbers in [start, end) one `interval` (seconds) apart, starting at `start`."""
    if end <= start:
        return []
    step = interval * fps
    if step <= 1.0:
        return list(range(start, end))
    out: list[int] = []
    k = 0
    while True:
        i = start + int(math.floor(k * step + 0.5))
        if i >= end:
            return out
        if not out or i > out[-1]:
            out.append(i)
        k += 1


def _gray_small(frame: np.ndarray, max_side: int = 96) -> np.ndarray:
    h, w = frame.shape[:2]
    s = max(h, w) / max_side
    if s > 1:
        frame = cv2.resize(frame, (max(1, round(w / s)), max(1, round(h / s))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame


def luminance(frame: np.ndarray) -> float:
    """Mean BT.601 luma of a uint8 RGB frame, 0..255."""
    r, g, b = cv2.mean(frame)[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def uniform_fraction(frame: np.ndarray, tol: float = 12.0) -> float:
    """Fraction of pixels within ±tol grey levels of the frame's median grey level (1.0 for a flat frame)."""
    g = _gray_small(frame).astype(np.float32)
    med = float(np.median(g))
    return float(np.mean(np.abs(g - med) <= tol))


def fade_flags(lum: Sequence[float], fps: float, rate: float = 0.5) -> np.ndarray:
    """Per-frame bool: True where log mean luminance changes faster than `rate` per second.

    `lum` holds the mean luminance of every decoded frame. The derivative is a central difference over ±d frames,
    d ≈ 0.1 s, so single-frame flicker of a real camera does not count.
    """
    lum = np.asarray(lum, np.float64)
    n = len(lum)
    if n < 2:
        return np.zeros(n, bool)
    d = max(1, int(round(0.1 * fps)))
    logl = np.log(lum + 4.0)
    idx = np.arange(n)
    lo, hi = np.maximum(idx - d, 0), np.minimum(idx + d, n - 1)
    rates = np.abs(logl[hi] - logl[lo]) / np.maximum(hi - lo, 1) * fps
    return rates > rate


def runs(keep: Sequence[bool]) -> list[tuple[int, int]]:
    """[a, b) ranges of consecutive True values."""
    out, start = [], None
    for i, k in enumerate(keep):
        if k and start is None:
            start = i
        elif not k and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(keep)))
    return out


def chunk(length: int, clip_len: int, stride: int = 0) -> list[tuple[int, int]]:
    """[a, b) windows of `clip_len` in a run of `length` items, `stride` apart (0 = clip_len); clip_len 0 = one
    window over the whole run."""
    if clip_len <= 0:
        return [(0, length)] if length > 0 else []
    stride = stride or clip_len
    return [(a, a + clip_len) for a in range(0, length - clip_len + 1, stride)]


def _fade_at(lum: list, i: int, a: int, b: int, d: int, fps: float, rate: float) -> bool:
    """`fade_flags` for frame i of the scene [a, b), from the luminance of frames max(i-d, a) .. min(i+d, b-1)."""
    lo, hi = max(i - d, a), min(i + d, b - 1)
    if hi <= lo:
        return False
    return abs(math.log(lum[hi] + 4.0) - math.log(lum[lo] + 4.0)) / (hi - lo) * fps > rate


def video_clips(path: str | os.PathLike, settings: SceneSettings, report: VideoReport | None = None) -> Iterator[SceneClip]:
    """Yields the clips of one video (see the module docstring) and fills `report` as it goes.

    Streams: a sampled frame is judged as soon as the fade check's look-ahead (0.1 s) has been decoded, and a clip
    is yielded as soon as it is complete, so memory holds about one clip of frames (one run of kept frames with
    clip_len 0), whatever the length of the video or its scenes.

    Raises `VideoReadError` naming the file if the video cannot be read (before or after some clips were yielded:
    a caller that must not keep part of a broken video buffers them).
    """
    from collections import deque

    from tfvr.data import video_io

    report = report if report is not None else VideoReport(path=os.fspath(path))
    info = video_io.probe(path)
    report.fps, report.width, report.height = info.fps, info.width, info.height
    scenes = detect_scenes(path, settings.threshold, settings.min_scene_len)
    report.scenes = [list(s) for s in scenes]
    fps = info.fps
    d = max(1, int(round(0.1 * fps)))  # the fade check's reach, in frames
    clip_len = settings.clip_len
    stride = settings.clip_stride or clip_len
    sampled: dict[int, int] = {}  # frame number -> scene index
    for s, (a, b) in enumerate(scenes):
        for i in sample_indices(a, b, fps, settings.interval):
            sampled[i] = s
    lum: list[float] = []
    waiting: deque = deque()  # sampled (frame number, frame, scene) not judged yet
    run: list[tuple[int, np.ndarray]] = []  # consecutive kept samples of the current scene
    st = {"scene": -1, "clip": 0, "made": 0}
    out: list[SceneClip] = []

    def emit(items):
        out.append(SceneClip(scene=st["scene"], clip=st["clip"], indices=[i for i, _ in items],
                             frames=[f for _, f in items]))
        st["clip"] += 1
        st["made"] += 1
        report.clips += 1
        report.frames_kept += len(items)

    def close_run():
        if clip_len <= 0 and run:
            emit(list(run))
        run.clear()

    def end_scene():
        close_run()
        if st["scene"] >= 0 and st["made"] == 0:
            report.dropped_scenes += 1

    def judge(i: int, frame: np.ndarray, s: int, n_decoded: int):
        if s != st["scene"]:
            end_scene()
            st["scene"], st["made"] = s, 0
        report.frames_sampled += 1
        keep = True
        if settings.filter_frames:
            a, b = scenes[s]
            if _fade_at(lum, i, a, min(b, n_decoded), d, fps, settings.fade_rate):
                report.dropped_fade += 1
                keep = False
            elif uniform_fraction(frame, settings.uniform_tol) >= settings.uniform_max:
                report.dropped_uniform += 1
                keep = False
        if not keep:
            close_run()
            return
        run.append((i, frame))
        if clip_len > 0 and len(run) >= clip_len:
            emit(run[:clip_len])
            del run[:stride]

    n = 0
    for i, frame in enumerate(video_io.iter_frames(path)):
        n = i + 1
        lum.append(luminance(frame))
        s = sampled.get(i)
        if s is not None:
            waiting.append((i, frame, s))
        # A sampled frame is judged once the frames its fade check looks at (up to 0.1 s ahead) are decoded.
        while waiting and i >= min(waiting[0][0] + d, scenes[waiting[0][2]][1] - 1):
            judge(*waiting.popleft(), n_decoded=n)
        yield from out
        out.clear()
    report.num_frames = n
    if scenes and scenes[-1][1] > n:  # the container announced more frames than decode (iter_frames raises too)
        scenes[-1] = (scenes[-1][0], n)
        report.scenes[-1][1] = n
    while waiting:
        judge(*waiting.popleft(), n_decoded=n)
    end_scene()
    yield from out
