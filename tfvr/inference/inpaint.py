"""Inpainting a video with an STTN-I model (researchmm/STTN `test.py`'s scheme), streaming.

1. Holes: each mask is dilated with a 3x3 cross, `dilate` iterations (4, as released) at the authors' 432x240,
   scaled with the frame size (round(4 * sqrt(H*W / (432*240))) iterations at H x W). Pixels outside that hole
   are returned bit-exactly.
2. Windows (`windows.sttn_plan`): for f = 0, s, 2s, ... the neighbours f-s .. f+s plus the reference frames
   0, r, 2r, ... not among them go through the model together; the neighbours' outputs are kept. `max_refs` > 0
   sub-samples the references evenly (long videos).
3. A frame covered by several windows is blended (`windows.Blend`): "mean" (default) = the equal average of the
   windows' outputs; "authors" = test.py's running 0.5·old + 0.5·new (later windows weigh more) and its final
   truncation to uint8 — what reproduces the authors' results.
4. The model resizes to its size, inpaints, resizes back and composites at full resolution.

Memory: the neighbour frames of the current window (2s+1 frames, decoded in a thread) and their blends; the
reference frames are kept only while they fit `ref_cache_bytes` (short videos), else re-read from the input for
each window. Output through `io.FrameSink` (atomic, checked).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from tfvr.errors import UserError
from tfvr.inference import io, windows

REFERENCE_HW = (240, 432)  # the authors' test.py frame size, at which `dilate` is given
MASK_VIDEO_THRESHOLD = 32  # lossy coding leaves small non-zero values in the black areas of a mask video


# ----------------------------------------------------------------------------------------------- masks
def _mask_image(path: Path) -> np.ndarray:
    import cv2

    img = io.read_image(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        img = img.max(axis=2)
    return img > 0


def dilation_iterations(height: int, width: int, dilate: int = 4) -> int:
    return int(round(dilate * np.sqrt(height * width / float(REFERENCE_HW[0] * REFERENCE_HW[1]))))


def effective_holes(masks: np.ndarray, dilate: int = 4) -> np.ndarray:
    """The holes that get filled (bool [T, H, W]) from the user's masks (bool [T, H, W]): step 1."""
    import cv2

    t, h, w = masks.shape
    iterations = dilation_iterations(h, w, dilate)
    if iterations <= 0:
        return masks.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel, iterations=iterations) > 0 for m in masks])


class MaskSource:
    """Masks for `num_frames` frames of `height` x `width`: a folder of images (one per frame, or one for all), one
    image, or a mask video (pixel >= 32). `user(i)` is the bool mask as given (resized nearest), `hole(i)` the
    dilated hole that gets filled.

    Mask i goes with frame i (the folder's images in name order, as STTN's test.py pairs them). Fewer masks than
    frames is a `UserError` (a frame would have no mask). More masks than frames is `warn(one line)` naming the
    count, and the first `num_frames` are used: STTN's test.py has no rule here (any count but the frames' stops
    it with a PyTorch shape error), a video's frame count is the container's (it may be off by a frame or two
    from what a mask extractor decoded), and with `--max-frames` the extra masks are the rest of the video's."""

    def __init__(self, path, num_frames: int, height: int, width: int, dilate: int = 4, warn=None):
        self.path = Path(path)
        self.t, self.h, self.w, self.dilate = num_frames, height, width, dilate
        self._files = None
        self._single = None
        self._video = None
        p = self.path
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in io.IMAGE_SUFFIXES
                           and not f.name.startswith("."))
            if not files:
                raise UserError(f"{p}: no mask images ({', '.join(io.IMAGE_SUFFIXES)}) in the folder")
            if len(files) == 1:
                self._single = _mask_image(files[0])
            elif len(files) < num_frames:
                raise UserError(f"{p}: {len(files)} mask images for {num_frames} frames (give one per frame, "
                                "or a single mask for all)")
            else:
                if len(files) > num_frames and warn is not None:
                    warn(f"{p}: {len(files)} mask images for {num_frames} frames; the last "
                         f"{len(files) - num_frames} are not used")
                self._files = files[:num_frames]
        elif p.is_file() and p.suffix.lower() in io.IMAGE_SUFFIXES:
            self._single = _mask_image(p)
        elif p.is_file():
            self._video = io.FrameSource(p)  # all its frames counted, so extra ones are said
            n = self._video.num_frames
            if n == 1:
                self._single = self._video.read(0).max(axis=2) >= MASK_VIDEO_THRESHOLD
                self._video.close()
                self._video = None
            elif n < num_frames:
                raise UserError(f"{p}: the mask video has {n} frames, the video {num_frames}")
            elif n > num_frames and warn is not None:
                warn(f"{p}: {n} mask frames for {num_frames} frames; the last {n - num_frames} are not used")
        else:
            raise UserError(f"{p}: no such mask folder, image or video")
        self._cache: "OrderedDict[int, np.ndarray]" = OrderedDict()

    def _fit(self, m: np.ndarray) -> np.ndarray:
        import cv2

        if m.shape != (self.h, self.w):
            m = cv2.resize(m.astype(np.uint8), (self.w, self.h), interpolation=cv2.INTER_NEAREST) > 0
        return m

    def user(self, i: int) -> np.ndarray:
        if self._single is not None:
            return self._fit(self._single)
        if self._files is not None:
            return self._fit(_mask_image(self._files[i]))
        return self._fit(self._video.read(i).max(axis=2) >= MASK_VIDEO_THRESHOLD)

    def hole(self, i: int) -> np.ndarray:
        key = -1 if self._single is not None else i
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        h = effective_holes(self.user(i)[None], self.dilate)[0]
        self._cache[key] = h
        if len(self._cache) > 64:
            self._cache.popitem(last=False)
        return h

    def close(self):
        if self._video is not None:
            self._video.close()


def read_masks(path, num_frames: int, height: int, width: int) -> np.ndarray:
    """bool [T, H, W] user masks (as given, resized) for `num_frames` frames (small videos / tests)."""
    src = MaskSource(path, num_frames, height, width)
    try:
        return np.stack([src.user(i) for i in range(num_frames)])
    finally:
        src.close()


# ----------------------------------------------------------------------------------------------- the scheme
def inpaint_stream(model, frames, num_frames: int, masks: MaskSource, read_frame, *, neighbor_stride: int = 5,
                   ref_length: int = 10, blend: str = "mean", max_refs: int = 0,
                   ref_cache_bytes: int = 1 << 30):
    """Yields the inpainted frames in order (uint8 [H, W, 3]) from the iterable `frames` (sequential) and
    `read_frame(i)` (random access, for the reference frames)."""
    plan = windows.sttn_plan(num_frames, neighbor_stride, ref_length, max_refs)
    it = iter(frames)
    buf: dict[int, np.ndarray] = {}
    blends: dict[int, windows.Blend] = {}
    refs_cache: dict[int, np.ndarray] = {}
    read = 0
    emitted = 0
    frame_bytes = None

    def get_ref(i: int) -> np.ndarray:
        if i in buf:
            return buf[i]
        if i in refs_cache:
            return refs_cache[i]
        f = read_frame(i)
        nonlocal frame_bytes
        frame_bytes = f.nbytes
        if (len(refs_cache) + 1) * frame_bytes <= ref_cache_bytes:
            refs_cache[i] = f
        return f

    for w, (neighbors, refs) in enumerate(plan):
        while read <= neighbors[-1]:
            try:
                buf[read] = next(it)
            except StopIteration:
                raise UserError(f"the video ended after {read} frames, {num_frames} were announced") from None
            read += 1
        ids = neighbors + refs
        batch = np.stack([buf[i] if i in buf else get_ref(i) for i in ids])
        holes = np.stack([masks.hole(i) for i in ids])
        out = model.inpaint(batch, holes.astype(np.uint8)[..., None] * 255)
        for j, idx in enumerate(neighbors):
            blends.setdefault(idx, windows.Blend(blend)).add(out[j])
        done_below = plan[w + 1][0][0] if w + 1 < len(plan) else num_frames
        while emitted < done_below:
            hole = masks.hole(emitted)[..., None]
            result = np.where(hole, blends.pop(emitted).result(), buf.pop(emitted))
            emitted += 1
            yield result
    if emitted != num_frames:
        raise UserError(f"inpainted {emitted} of {num_frames} frames")  # cannot happen: every frame is covered


@dataclass
class InpaintResult:
    frames: int
    size: tuple[int, int]  # (width, height)
    model_size: tuple[int, int]  # (width, height)
    hole_pixels: int
    output: Path


def inpaint_video(model_path, video, masks, output, *, neighbor_stride: int = 5, ref_length: int = 10,
                  dilate: int = 4, blend: str = "mean", max_refs: int = 0, max_frames: Optional[int] = None,
                  fps: Optional[float] = None, overwrite: bool = False, quiet: bool = False,
                  queue_depth: int = 4) -> InpaintResult:
    """`tfvr inpaint`: arguments and output checked first, then the video streams through the model."""
    from tfvr.inference.client import check_model_path, open_model

    if neighbor_stride < 1 or ref_length < 1 or dilate < 0 or max_refs < 0:
        raise UserError("--neighbor-stride and --ref-length must be >= 1, --dilate and --max-refs >= 0")
    if blend not in windows.BLENDS:
        raise UserError(f"--blend must be one of {', '.join(windows.BLENDS)}, got {blend!r}")
    check_model_path(model_path, "inpainting", "`tfvr inpaint`")
    source = io.open_source(video, max_frames)
    info = source.info
    sink = io.FrameSink(output, fps or info.fps, inputs=[video, masks, model_path], overwrite=overwrite,
                        threaded=True, queue_depth=queue_depth).check()
    cut = f" (--max-frames {max_frames})" if max_frames is not None else ""
    mask_src = MaskSource(masks, info.num_frames, info.height, info.width, dilate,
                          warn=lambda m: print(f"tfvr inpaint: warning: {m}{cut}", file=sys.stderr, flush=True))
    model = open_model(model_path, "inpainting", "`tfvr inpaint`")
    bar = io.progress(info.num_frames, f"inpaint {Path(video).name}", quiet)
    holes = 0
    try:
        with sink:
            stream = inpaint_stream(model, io.prefetch(source.frames(), queue_depth), info.num_frames, mask_src,
                                    source.read, neighbor_stride=neighbor_stride, ref_length=ref_length,
                                    blend=blend, max_refs=max_refs)
            for i, frame in enumerate(stream):
                holes += int(mask_src.hole(i).sum())
                sink.write(frame)
                bar.update(1)
    finally:
        bar.close()
        source.close()
        mask_src.close()
    return InpaintResult(sink.count, (info.width, info.height), (model.size[1], model.size[0]), holes, Path(output))
