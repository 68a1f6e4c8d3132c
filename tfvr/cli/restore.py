"""`tfvr restore --model M in.mp4 out.mp4`: restore every frame of a video with a window-restoration model.

    tfvr restore --model runs/demo/sttn_denoise/export noisy.mp4 restored.mp4
    tfvr restore --model saved_models/edvr_sr4x/1 --tile 256 lr.mp4 sr.mp4      # x4: output is 4x the size
    tfvr restore --model edvr_m.weights.h5 lr_frames/ sr_frames/                # converted weights, PNG folders

`--model`: any `kind: restoration` tfvr SavedModel (STTN-R, EDVR: `tfvr export`) or converted weights
(`X.weights.h5` + `X.config.json`, `tfvr convert-weights`). T = 2N+1 and the scale s come from the model.
Input: a video file or a folder of frames (sorted by name).

- Frame i is restored from the window i-N .. i+N; indices outside the video follow `--padding`, BasicSR's
  `generate_frame_indices` modes (default reflection_circle, BasicSR's video test setting; `replicate` repeats
  the first / last frame).
- Any frame size: the model pads to what the network needs and crops inside its graph.
- `--tile S`: frames larger than S×S are cut into S×S tiles overlapping by `--tile-overlap` pixels; each tile keeps
  its central part (seams in the middle of the overlaps). Tiles go through the model `--tile-batch` at a time.
- Output: same fps and (×s) size. OUT ending in .mp4/.avi/.mkv/.mov/.m4v is a video; anything else a folder of
  lossless PNG frames 00000.png, ... . Written into a temporary sibling, checked (a video is re-opened and its
  frames counted), then renamed; an output that is, contains or lies inside the input is refused, and
  `--overwrite` replaces only a file or a folder tfvr wrote. Frames stream (decode and encode run in threads
  beside the model): memory holds 4N+1 input frames and two short queues. Implementation: `tfvr.inference`.
"""

from __future__ import annotations

import argparse

from tfvr.cli import video_args
from tfvr.inference.tiling import owned as _owned  # noqa: F401  (kept for callers of the old module)
from tfvr.inference.tiling import tile_starts  # noqa: F401
from tfvr.inference.windows import PADDINGS, sliding_windows  # noqa: F401


def add_arguments(p: argparse.ArgumentParser) -> None:
    video_args.add_io(p, "video", "input video (anything OpenCV reads) or a folder of frames",
                      "output .mp4 (or .avi/.mkv/.mov/.m4v), or a folder for PNG frames",
                      "restoration SavedModel folder (`tfvr export`) or converted X.weights.h5")
    p.add_argument("--padding", default="reflection_circle", choices=PADDINGS,
                   help="frames outside the video at its ends (BasicSR modes; default reflection_circle)")
    p.add_argument("--tile", type=int, default=0,
                   help="restore frames in tiles of this size (pixels, input resolution); 0 = whole frames")
    p.add_argument("--tile-overlap", type=int, default=32, help="overlap between neighbouring tiles (32)")
    p.add_argument("--tile-batch", type=int, default=4, help="tiles per model call (4)")
    video_args.add_run_options(p, "restore only the first N frames", "output fps (default: the input's; 25 for folders)")


def run(args) -> int:
    from tfvr.inference.restore import restore_video

    r = restore_video(args.model, args.video, args.output, padding=args.padding, tile=args.tile,
                      tile_overlap=args.tile_overlap, tile_batch=args.tile_batch, max_frames=args.max_frames,
                      overwrite=args.overwrite, fps=args.fps, quiet=args.quiet)
    print(f"restored {r.frames} frames of {args.video} ({r.input_size[0]}x{r.input_size[1]}, {r.fps:g} fps) -> "
          f"{r.output} ({r.output_size[0]}x{r.output_size[1]})")
    return 0
