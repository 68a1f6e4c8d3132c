"""`tfvr inpaint --model M VIDEO --masks MASKS OUT`: remove the masked objects from a video with STTN-I.

    tfvr inpaint --model saved_models/sttn_inpaint/1 video.mp4 --masks masks/ out.mp4      # or out/ (PNG frames)
    tfvr inpaint --model sttn.weights.h5 --blend authors video.mp4 --masks masks/ out/    # the authors' blend

`--model`: an STTN-I SavedModel (`tfvr export`, old exports included) or converted weights (`X.weights.h5` +
`X.config.json`; built at the released 432x240). MASKS is a folder of images (sorted by name; one per frame, or a
single one for every frame), a mask video, or one image file. A pixel is hole where the mask is > 0 (image files)
or >= 32 (a mask video: lossy coding leaves small values in the black areas). Masks of another size are resized
to the video's (nearest). Extra mask images are ignored with a note.

The authors' scheme (researchmm/STTN `test.py`; details in `tfvr.inference.inpaint`): masks dilated with a 3x3
cross (`--dilate` at 432x240, scaled with the frame size); windows of neighbours f-s .. f+s (s =
`--neighbor-stride`) plus reference frames every `--ref-length` frames (`--max-refs K` keeps at most K, evenly
spread, for long videos); a frame covered by several windows is blended with `--blend`:
  mean     (default) the equal average of the windows' outputs: every window counts the same;
  authors  test.py's running 0.5·old + 0.5·new and final truncation: what reproduces the authors' output.
Pixels outside the dilated hole are returned bit-exactly. Frames stream (only the current window's frames are in
memory; reference frames are re-read from the input when the video is long).
OUT ending in .mp4/.avi/.mkv/.mov/.m4v is a video, anything else a folder of PNG frames; written atomically and
checked. An output that is the input video, the masks, or lies inside / contains them is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tfvr.cli import video_args
from tfvr.inference.inpaint import REFERENCE_HW, effective_holes, read_masks  # noqa: F401  (re-exported)
from tfvr.inference.windows import BLENDS, sttn_plan


def windows(num_frames: int, neighbor_stride: int = 5, ref_length: int = 10):
    """[(neighbour ids, reference ids)] of the authors' `test.py` (`tfvr.inference.windows.sttn_plan`)."""
    return sttn_plan(num_frames, neighbor_stride, ref_length)


def add_arguments(p: argparse.ArgumentParser) -> None:
    video_args.add_io(p, "video", "input video or a folder of frames",
                      "output .mp4 (or .avi/.mkv/.mov), or a folder for lossless PNG frames",
                      "STTN-I SavedModel folder (`tfvr export`) or converted X.weights.h5")
    p.add_argument("--masks", required=True, type=Path,
                   help="folder of mask images (one per frame in name order, or one for all), a mask video, or one "
                        "image; more masks than frames: a warning, the first ones are used")
    p.add_argument("--neighbor-stride", type=int, default=5, help="local window half-width and step (5)")
    p.add_argument("--ref-length", type=int, default=10, help="a reference frame every N frames (10)")
    p.add_argument("--max-refs", type=int, default=0,
                   help="at most this many reference frames per window, evenly spread (0 = all, as released)")
    p.add_argument("--blend", default="mean", choices=BLENDS,
                   help="frames covered by several windows: mean (equal average, default) or authors "
                        "(test.py's running 0.5/0.5)")
    p.add_argument("--dilate", type=int, default=4,
                   help="3x3-cross dilations of the mask at 432x240, scaled with the frame size (4)")
    video_args.add_run_options(p, "process only the first N frames", "output fps (default: the input's)")


def run(args: argparse.Namespace) -> int:
    from tfvr.inference.inpaint import inpaint_video

    r = inpaint_video(args.model, args.video, args.masks, args.output, neighbor_stride=args.neighbor_stride,
                      ref_length=args.ref_length, dilate=args.dilate, blend=args.blend, max_refs=args.max_refs,
                      max_frames=args.max_frames, fps=args.fps, overwrite=args.overwrite, quiet=args.quiet)
    print(f"{args.video}: {r.frames} frames {r.size[0]}x{r.size[1]}, {r.hole_pixels} hole pixels filled (model size "
          f"{r.model_size[0]}x{r.model_size[1]}, blend {args.blend}) -> {r.output}")
    return 0
