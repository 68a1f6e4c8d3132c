"""`tfvr restore --model DIR in.mp4 out.mp4`: restore every frame of a video with a window-restoration SavedModel.

    tfvr restore --model runs/demo/sttn_denoise/export noisy.mp4 restored.mp4
    tfvr restore --model saved_models/edvr_sr4x/1 --tile 256 lr.mp4 sr.mp4      # x4: output is 4x the size

Works with any SavedModel whose `serving_default` takes uint8 frames `[B, T, H, W, 3]` (T = 2N+1) and returns the
uint8 restored centre frame `[B, H·s, W·s, 3]` (`tfvr.export.restoration`: STTN-R, EDVR). T and s come from the
model's `assets/tfvr.json`; without it they are read from the signature (T) and one probe call (s).

- Frame i is restored from frames i-N .. i+N; at the start and end of the video the missing neighbours are the
  first / last frame repeated (edge padding), so every output frame has a full window.
- Any frame size: the SavedModel pads to what the network needs and crops inside its graph.
- `--tile S`: frames larger than S×S are cut into S×S tiles overlapping by `--tile-overlap` pixels (all tiles of a
  frame have the same size: the last row/column is flush with the border). Each tile is restored with its
  margin and only its central part is kept (the seams lie in the middle of the overlaps), which bounds memory for
  large frames. Tiles of one frame go through the model in batches of `--tile-batch`.
- Output: same fps and (×s) size as the input. OUT ending in .mp4/.avi/.mkv/.mov/.m4v is a video; anything else is
  a folder that receives lossless PNG frames 00000.png, ... . Written under a temporary name, renamed when
  complete, so a failure leaves nothing half-written. Frames are streamed: memory holds 2N+1 input frames.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tfvr.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", type=Path, help="input video (anything OpenCV reads)")
    p.add_argument("output", type=Path, help="output .mp4 (or .avi/.mkv/.mov/.m4v), or a folder for PNG frames")
    p.add_argument("--model", required=True, type=Path, help="restoration SavedModel folder (`tfvr export`)")
    p.add_argument("--tile", type=int, default=0,
                   help="restore frames in tiles of this size (pixels, input resolution); 0 = whole frames")
    p.add_argument("--tile-overlap", type=int, default=32, help="overlap between neighbouring tiles (32)")
    p.add_argument("--tile-batch", type=int, default=4, help="tiles per model call (4)")
    p.add_argument("--max-frames", type=int, default=None, help="restore only the first N frames")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ---------------------------------------------------------------------------------------------- the model
class WindowModel:
    """A loaded restoration SavedModel: `restore(window uint8 [B, T, h, w, 3]) -> uint8 [B, h·s, w·s, 3]`."""

    def __init__(self, path: Path):
        from tfvr.export.restoration import METADATA_FILE, read_metadata

        path = Path(path)
        if not path.is_dir():
            raise UserError(f"{path}: no such SavedModel folder")
        if not (path / "saved_model.pb").exists():
            raise UserError(f"{path}: not a SavedModel (no saved_model.pb)")
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as e:  # noqa: BLE001 - any load failure is the user's file
            raise UserError(f"{path}: cannot load the SavedModel ({type(e).__name__}: {str(e).splitlines()[0]})")
        if "serving_default" not in loaded.signatures:
            raise UserError(f"{path}: the SavedModel has no serving_default signature")
        self._loaded = loaded  # keeps the variables alive
        self._fn = loaded.signatures["serving_default"]
        _, kwargs = self._fn.structured_input_signature
        if len(kwargs) != 1:
            raise UserError(f"{path}: serving_default takes {sorted(kwargs)}; expected one uint8 frames input")
        (self._arg, spec), = kwargs.items()
        if spec.dtype != tf.uint8 or spec.shape.rank != 5 or spec.shape[-1] != 3:
            raise UserError(f"{path}: serving_default takes {spec.dtype.name} {spec.shape}; "
                            "expected uint8 [B, T, H, W, 3] frames (a window-restoration model)")
        if (path / "assets" / METADATA_FILE).exists():
            meta = read_metadata(str(path))
            self.num_frames, self.scale = int(meta["num_frames"]), int(meta["scale"])
        else:
            if spec.shape[1] is None:
                raise UserError(f"{path}: no assets/{METADATA_FILE} and the signature does not fix T")
            self.num_frames = int(spec.shape[1])
            probe = self.restore(np.zeros([1, self.num_frames, 16, 16, 3], np.uint8))
            self.scale = int(probe.shape[1]) // 16
        if self.num_frames < 1 or self.num_frames % 2 != 1 or self.scale < 1:
            raise UserError(f"{path}: bad model metadata (num_frames={self.num_frames}, scale={self.scale})")

    def restore(self, frames: np.ndarray) -> np.ndarray:
        out = self._fn(**{self._arg: frames})
        if len(out) != 1:
            out = {k: v for k, v in out.items() if k in ("restored", "output")} or out
        return next(iter(out.values())).numpy()


# ---------------------------------------------------------------------------------------------- windows, tiles
def sliding_windows(frames, radius: int) -> Iterator[np.ndarray]:
    """Yields, for every frame i of the iterable `frames`, the stack of frames i-radius .. i+radius `[2r+1, H, W, 3]`
    with indices clamped to the video (edge frames repeated). Holds at most 2r+1 frames."""
    buf: dict[int, np.ndarray] = {}
    centre = 0
    last = -1
    for j, frame in enumerate(frames):
        buf[j] = frame
        last = j
        while centre + radius <= j:
            yield np.stack([buf[min(max(k, 0), last)] for k in range(centre - radius, centre + radius + 1)])
            buf.pop(centre - radius, None)
            centre += 1
    while centre <= last:
        yield np.stack([buf[min(max(k, 0), last)] for k in range(centre - radius, centre + radius + 1)])
        buf.pop(centre - radius, None)
        centre += 1


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of equal tiles covering [0, size): step tile - overlap, the last one flush with the end."""
    if tile >= size:
        return [0]
    step = max(tile - overlap, 1)
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def _owned(starts: list[int], tile: int, size: int) -> list[tuple[int, int]]:
    """[lo, hi) of the output each tile keeps: boundaries in the middle of each overlap."""
    bounds = [0]
    for a, b in zip(starts[:-1], starts[1:]):
        bounds.append((b + a + tile) // 2)  # middle of the overlap [b, a + tile)
    bounds.append(size)
    return [(bounds[i], bounds[i + 1]) for i in range(len(starts))]


def restore_window(model: WindowModel, window: np.ndarray, tile: int = 0, overlap: int = 32,
                   tile_batch: int = 4) -> np.ndarray:
    """The restored centre frame `[H·s, W·s, 3]` of one window `[T, H, W, 3]`, tiled if `tile` > 0."""
    _, h, w, _ = window.shape
    s = model.scale
    if tile <= 0 or (h <= tile and w <= tile):
        return model.restore(window[None])[0]
    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    own_y, own_x = _owned(ys, th, h), _owned(xs, tw, w)
    out = np.empty((h * s, w * s, 3), np.uint8)
    jobs = [(iy, ix) for iy in range(len(ys)) for ix in range(len(xs))]
    for b in range(0, len(jobs), max(tile_batch, 1)):
        chunk = jobs[b:b + max(tile_batch, 1)]
        batch = np.stack([window[:, ys[iy]:ys[iy] + th, xs[ix]:xs[ix] + tw] for iy, ix in chunk])
        res = model.restore(batch)
        for (iy, ix), r in zip(chunk, res):
            (y0, y1), (x0, x1) = own_y[iy], own_x[ix]
            oy, ox = ys[iy], xs[ix]
            out[y0 * s:y1 * s, x0 * s:x1 * s] = r[(y0 - oy) * s:(y1 - oy) * s, (x0 - ox) * s:(x1 - ox) * s]
    return out


# ---------------------------------------------------------------------------------------------- output
def _write_frames(output: Path, frames, fps: float, overwrite: bool) -> Path:
    from tfvr.data.video_io import write_video

    if output.suffix.lower() in VIDEO_SUFFIXES:
        return write_video(output, frames, fps)
    import cv2

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        n = 0
        for n, frame in enumerate(frames, 1):
            if not cv2.imwrite(str(tmp / f"{n - 1:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
                raise UserError(f"{output}: could not write PNG frame {n - 1}")
        if n == 0:
            raise UserError(f"{output}: no frames to write")
        if output.exists():
            shutil.rmtree(output) if output.is_dir() else output.unlink()
        os.replace(tmp, output)
        return output
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def run(args) -> int:
    from tfvr.data.video_io import iter_frames, probe

    video, output = Path(args.video), Path(args.output)
    if args.tile < 0 or args.tile_overlap < 0 or args.tile_batch < 1:
        raise UserError("--tile and --tile-overlap must be >= 0 and --tile-batch >= 1")
    if args.tile and args.tile_overlap >= args.tile:
        raise UserError(f"--tile-overlap ({args.tile_overlap}) must be smaller than --tile ({args.tile})")
    if output.exists() and not args.overwrite:
        raise UserError(f"{output} already exists (pass --overwrite to replace it)")
    if video.exists() and output.exists() and os.path.samefile(video, output):
        raise UserError(f"{output}: the output would overwrite the input video")
    info = probe(video)  # VideoReadError naming the file for missing / empty / non-video input
    model = WindowModel(args.model)
    total = info.num_frames if args.max_frames is None else min(info.num_frames, args.max_frames)
    radius = model.num_frames // 2

    from tqdm import tqdm

    bar = tqdm(total=total, unit="frame", desc=f"restore {video.name}", disable=args.quiet, dynamic_ncols=True)

    count = 0

    def restored():
        nonlocal count
        for window in sliding_windows(iter_frames(video, args.max_frames), radius):
            yield restore_window(model, window, args.tile, args.tile_overlap, args.tile_batch)
            count += 1
            bar.update(1)

    try:
        out = _write_frames(output, restored(), info.fps, args.overwrite)
    finally:
        bar.close()
    print(f"restored {count} frames of {video} ({info.width}x{info.height}, {info.fps:g} fps) -> {out} "
          f"({info.width * model.scale}x{info.height * model.scale})")
    return 0
