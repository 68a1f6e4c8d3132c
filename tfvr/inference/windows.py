"""Temporal windowing, in one place: BasicSR's padding modes, STTN-I's neighbour/reference plan and blends, and
vid2vid's streaming rule. Used by `tfvr restore`, `tfvr evaluate`, `tfvr inpaint`, `tfvr synthesize`.

BasicSR padding (`basicsr.data.data_util.generate_frame_indices`; legacy EDVR `index_generation` calls
reflection_circle "new_info"), e.g. centre 0 with 5 frames:

    replicate [0, 0, 0, 1, 2]   reflection [2, 1, 0, 1, 2]   reflection_circle [4, 3, 0, 1, 2]   circle [3, 4, 0, 1, 2]

Every index lies within 2N of the centre, so `sliding_windows` streams with a buffer of at most 4N+1 frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Optional

import numpy as np

PADDINGS = ("reflection_circle", "reflection", "replicate", "circle", "new_info")
BLENDS = ("mean", "authors")


def frame_indices(center: int, num_frames_in_clip: int, window: int, padding: str = "reflection_circle") -> list[int]:
    """Indices of the `window` frames around `center` in a clip of `num_frames_in_clip` frames, exactly as
    BasicSR's `generate_frame_indices(crt_idx, max_frame_num, num_frames, padding)` (clamped into the clip for clips
    shorter than the window, where BasicSR would index outside)."""
    if window % 2 != 1:
        raise ValueError(f"the window must be odd, got {window}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    last = num_frames_in_clip - 1
    n = window // 2
    out = []
    for i in range(center - n, center + n + 1):
        if i < 0:
            j = {"replicate": 0, "reflection": -i, "reflection_circle": center + n - i, "new_info": center + n - i,
                 "circle": window + i}[padding]
        elif i > last:
            j = {"replicate": last, "reflection": 2 * last - i, "reflection_circle": center - n - (i - last),
                 "new_info": center - n - (i - last), "circle": i - window}[padding]
        else:
            j = i
        out.append(min(max(j, 0), last))
    return out


def sliding_windows(frames: Iterable[np.ndarray], radius: int, padding: str = "replicate") -> Iterator[np.ndarray]:
    """Yields, for every frame i of the iterable `frames`, the window `[2r+1, H, W, 3]` of `frame_indices(i, T, 2r+1,
    padding)`, streaming: at most 4r+1 frames are held (T is known only when the stream ends, and no window needs
    it before frames within 2r of the end are reached)."""
    window = 2 * radius + 1
    it = iter(frames)
    buf: dict[int, np.ndarray] = {}
    read = 0  # frames read so far
    done = False
    centre = 0
    while True:
        while not done and read <= centre + 2 * radius:
            try:
                buf[read] = next(it)
                read += 1
            except StopIteration:
                done = True
        if centre >= read:
            return
        total = read if done else 1 << 62  # the end is not in reach of this window yet
        idx = frame_indices(centre, total, window, padding)
        yield np.stack([buf[j] for j in idx])
        buf.pop(centre - 2 * radius, None)
        centre += 1


# ---------------------------------------------------------------------------------------------- STTN-I
def sttn_plan(num_frames: int, neighbor_stride: int = 5, ref_length: int = 10,
              max_refs: int = 0) -> list[tuple[list[int], list[int]]]:
    """[(neighbour ids, reference ids)] of researchmm/STTN `test.py`: for f = 0, s, 2s, ... the neighbours
    f-s .. f+s and the reference frames 0, r, 2r, ... not among them. `max_refs` > 0 keeps at most that many
    references per window, evenly spread over the video (bounded cost for long videos; 0 = all, as released)."""
    out = []
    for f in range(0, num_frames, neighbor_stride):
        neighbors = list(range(max(0, f - neighbor_stride), min(num_frames, f + neighbor_stride + 1)))
        refs = [i for i in range(0, num_frames, ref_length) if i not in neighbors]
        if max_refs and len(refs) > max_refs:
            pick = np.linspace(0, len(refs) - 1, max_refs).round().astype(int)
            refs = [refs[k] for k in sorted(set(pick.tolist()))]
        out.append((neighbors, refs))
    return out


def reference_ids(plan) -> list[int]:
    """Every frame used as a reference by some window of `plan` (sorted)."""
    return sorted({i for _, refs in plan for i in refs})


class Blend:
    """Accumulates the outputs of the windows covering one frame.

    mode "mean": the equal average of every window's output (rounded); "authors": researchmm/STTN test.py's
    running `0.5 * old + 0.5 * new` in float32 (later windows weigh more) and its final `astype(uint8)`
    (truncation)."""

    def __init__(self, mode: str = "mean"):
        if mode not in BLENDS:
            raise ValueError(f"blend must be one of {BLENDS}, got {mode!r}")
        self.mode = mode
        self._acc: Optional[np.ndarray] = None
        self.count = 0

    def add(self, image: np.ndarray) -> None:
        if self._acc is None:
            self._acc = image.astype(np.float64 if self.mode == "mean" else np.float32)
        elif self.mode == "mean":
            self._acc += image
        else:
            self._acc = self._acc.astype(np.float32) * np.float32(0.5) + image.astype(np.float32) * np.float32(0.5)
        self.count += 1

    def result(self) -> np.ndarray:
        if self._acc is None:
            raise ValueError("no window covered this frame")
        if self.mode == "mean":
            return np.round(self._acc / self.count).astype(np.uint8)
        return self._acc.astype(np.uint8)


def last_window_of(frame: int, num_frames: int, neighbor_stride: int) -> int:
    """Index (in `sttn_plan`) of the last window whose neighbours include `frame`."""
    n_windows = (num_frames + neighbor_stride - 1) // neighbor_stride
    return min((frame + neighbor_stride) // neighbor_stride, n_windows - 1)


# ---------------------------------------------------------------------------------------------- vid2vid
class Vid2VidStream:
    """vid2vid's streaming rule for one video: `step(labels [H, W], instances)` returns the model inputs of the
    next frame — labels of frames t-n+1..t (frames before 0 repeat frame 0), the last n-1 generated frames (zeros
    where they do not exist yet) and num_prev = min(t, n-1) — and `push(frame)` records the generated frame."""

    def __init__(self, n: int, dtype=np.uint8):
        self.n = int(n)
        self.dtype = dtype  # uint8 frames, or float32 in [-1, 1] (a client with float feedback)
        self.t = 0
        self._labels: list[np.ndarray] = []
        self._insts: list[np.ndarray] = []
        self._outputs: list[np.ndarray] = []

    def step(self, labels: np.ndarray, instances: Optional[np.ndarray] = None):
        n = self.n
        self._labels = (self._labels + [labels])[-n:]
        window = np.stack([self._labels[0]] * (n - len(self._labels)) + self._labels)
        inst_window = None
        if instances is not None:
            self._insts = (self._insts + [instances])[-n:]
            inst_window = np.stack([self._insts[0]] * (n - len(self._insts)) + self._insts)
        h, w = labels.shape[:2]
        prev = self._outputs[-(n - 1):] if n > 1 else []
        prev = [np.zeros((h, w, 3), self.dtype)] * (n - 1 - len(prev)) + prev
        prev = np.stack(prev) if prev else np.zeros((0, h, w, 3), self.dtype)
        return window, prev, min(self.t, n - 1), inst_window

    def push(self, frame: np.ndarray) -> None:
        if self.n > 1:
            self._outputs = (self._outputs + [frame])[-(self.n - 1):]
        self.t += 1
