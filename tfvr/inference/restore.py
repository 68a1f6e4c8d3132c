"""Restoring a video with a window-restoration model (STTN-R, EDVR, any `kind: restoration` export), streaming.

decode (thread) → sliding windows (BasicSR padding) → model (tiled) → encode (thread): memory holds at most
4N+1 input frames plus the two bounded queues, whatever the video's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tfvr.inference import io, tiling, windows


@dataclass
class RestoreResult:
    frames: int
    input_size: tuple[int, int]  # (width, height)
    output_size: tuple[int, int]
    fps: float
    output: Path


def restore_frames(model, frames, *, padding: str = "reflection_circle", tile: int = 0, tile_overlap: int = 32,
                   tile_batch: int = 4):
    """Yields the restored frames of an iterable of uint8 [H, W, 3] frames (streaming)."""
    for window in windows.sliding_windows(frames, model.num_frames // 2, padding):
        yield tiling.restore_window(model.restore, window, model.scale, tile, tile_overlap, tile_batch)


def restore_video(model_path, video, output, *, padding: str = "reflection_circle", tile: int = 0,
                  tile_overlap: int = 32, tile_batch: int = 4, max_frames: Optional[int] = None,
                  overwrite: bool = False, fps: Optional[float] = None, quiet: bool = False,
                  queue_depth: int = 4) -> RestoreResult:
    """`tfvr restore`: checks the arguments and the output first, then streams `video` through the model into
    `output` (video file or PNG folder, written atomically and verified)."""
    from tfvr.inference.client import check_model_path, open_model

    tiling.check_tiling(tile, tile_overlap, tile_batch)
    if padding not in windows.PADDINGS:
        raise ValueError(padding)
    check_model_path(model_path, "restoration", "`tfvr restore`")
    source = io.open_source(video, max_frames)
    info = source.info
    sink = io.FrameSink(output, fps or info.fps, inputs=[video, model_path], overwrite=overwrite, threaded=True,
                        queue_depth=queue_depth).check()
    model = open_model(model_path, "restoration", "`tfvr restore`")
    bar = io.progress(info.num_frames, f"restore {Path(video).name}", quiet)
    try:
        with sink:
            for frame in restore_frames(model, io.prefetch(source.frames(), queue_depth), padding=padding,
                                        tile=tile, tile_overlap=tile_overlap, tile_batch=tile_batch):
                sink.write(frame)
                bar.update(1)
    finally:
        bar.close()
    s = model.scale
    return RestoreResult(sink.count, (info.width, info.height), (info.width * s, info.height * s),
                         sink.fps, Path(output))
