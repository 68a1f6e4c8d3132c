"""`tfvr evaluate --model M --layout vid4|reds4|vimeo90k DIR`: score a window-restoration model on a benchmark.

    tfvr evaluate --model saved_models/edvr_m/1 --layout reds4 data/REDS
    tfvr evaluate --model edvr_l_vimeo.weights.h5 --layout vid4 data/Vid4 --json vid4.json

Model (`--model`): a restoration SavedModel (`tfvr export`, `train/<family>.py`'s `export/`), a training workdir
(its `export/` if present, else its newest checkpoint), or weights converted with `tfvr convert-weights`
(`X.weights.h5` + `X.config.json`). T = 2N+1 input frames and the scale come from the model; any family
(EDVR SR or deblur, STTN-R, ...).

Layouts (the folder names of the public releases, read with `tfvr.data.layouts`):
  vid4      DIR/GT/<clip>/*.png and DIR/BIx4/<clip> (or BDx4): every clip, every frame.
  reds4     DIR/train_sharp/<clip> (ground truth) and the input kind of `--lq`: bicubic =
            train_sharp_bicubic/X4/<clip> (×4 SR), blur = train_blur/<clip> and blur_comp = train_blur_comp/<clip>
            (×1 deblurring, hr_in models), blur_bicubic = train_blur_bicubic/X4/<clip> (×4 SR of blurred
            frames); default: bicubic for ×4 models, blur for ×1. The REDS4 clips 000, 011, 015, 020.
  vimeo90k  DIR/sequences/<a>/<b>/im1..im7.png listed in DIR/sep_testlist.txt, LR in a *LR*x4*/sequences folder
            beside or inside DIR: **only the centre frame (im4) is scored** (Vimeo-90K-T's protocol); its input
            window is im4 ± N (7 frames for a 7-frame model).
Without LR frames, LR = MATLAB bicubic ×1/s of the ground truth (cut to a multiple of s first), as the BI
benchmark sets were made.

Frame i is restored from frames i-N .. i+N; indices outside the clip follow `--padding` (BasicSR
`generate_frame_indices` / legacy EDVR `index_generation`; e.g. centre 0 with 5 frames):
  replicate [0, 0, 0, 1, 2]   reflection [2, 1, 0, 1, 2]   reflection_circle [4, 3, 0, 1, 2]   circle [3, 4, 0, 1, 2]
  new_info  legacy EDVR's name for reflection_circle (the same indices).

Scores: PSNR / SSIM on uint8 RGB (or BT.601 Y with `--y-channel`) after cropping `--crop-border` pixels, BasicSR's
conventions (`tfvr.metrics`). Per clip: the average over all scored frames, over the centre frames and over the
border frames (the first and last N frames of the clip, whose windows are padded), as the EDVR test scripts print
them; then the average over clips. Defaults per layout: REDS4 RGB, Vid4 and Vimeo-90K-T Y channel (the convention
the video-SR tables use, e.g. mmagic's "RGB channels for REDS4 and Y channel for others"); padding
reflection_circle (BasicSR's REDS4 test option).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from tfvr.errors import UserError
from tfvr.inference.evaluate import DEFAULT_Y, LAYOUTS, REDS_LQ, evaluate, load_model  # noqa: F401
from tfvr.inference.windows import PADDINGS, frame_indices  # noqa: F401  (re-exported)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="the benchmark folder (see --layout)")
    p.add_argument("--model", required=True, type=Path,
                   help="restoration SavedModel folder, training workdir, or converted X.weights.h5")
    p.add_argument("--layout", required=True, choices=LAYOUTS)
    p.add_argument("--lq", default="auto", choices=REDS_LQ,
                   help="reds4 input frames: bicubic (X4 LR), blur, blur_comp, blur_bicubic (default: bicubic for "
                        "x4 models, blur for x1)")
    p.add_argument("--padding", default="reflection_circle", choices=PADDINGS,
                   help="how windows at the clip boundaries are filled (default reflection_circle)")
    y = p.add_mutually_exclusive_group()
    y.add_argument("--y-channel", dest="y_channel", action="store_true", default=None,
                   help="score the BT.601 Y channel (default for vid4, vimeo90k)")
    y.add_argument("--rgb", dest="y_channel", action="store_false", help="score RGB (default for reds4)")
    p.add_argument("--crop-border", type=int, default=0, help="pixels cropped from each border before scoring (0)")
    p.add_argument("--clips", default="", help="comma-separated clip names to score (default: all)")
    p.add_argument("--max-frames", type=int, default=0, help="score only the first N frames of each clip")
    p.add_argument("--tile", type=int, default=0, help="restore in tiles of this size (LR pixels); 0 = whole frames")
    p.add_argument("--tile-overlap", type=int, default=32, help="overlap between neighbouring tiles (32)")
    p.add_argument("--json", type=Path, default=None, help="also write the per-frame and per-clip scores here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--precision", default=None, choices=("float32", "bfloat16", "float16"),
                   help="compute dtype when --model is a workdir or converted weights (tfvr.export.precision); "
                        "a SavedModel keeps the precision it was exported with")


def run(args: argparse.Namespace) -> int:
    from tfvr import safety
    from tfvr.inference.tiling import check_tiling
    from tfvr.metrics.table import format_table, to_json

    if args.crop_border < 0:
        raise UserError(f"--crop-border must be >= 0, got {args.crop_border}")
    check_tiling(args.tile, args.tile_overlap)
    if args.json is not None:
        if not args.json.parent.is_dir():
            raise UserError(f"{args.json}: the folder {args.json.parent} does not exist")
        safety.check_output(args.json, [args.dir, args.model], overwrite=True, what="--json file")
    model = load_model(args.model)
    if getattr(args, "precision", None):
        if not isinstance(model, _InProcessModel):
            raise UserError(f"{args.model}: --precision applies to workdirs and converted weights; a SavedModel "
                            "computes in the precision it was exported with (tfvr export --precision)")
        from tfvr.export.precision import apply_to_module

        apply_to_module(model._module, args.precision)
    clips = [c for c in args.clips.split(",") if c]
    res = evaluate(model, args.dir, args.layout, args.padding, args.y_channel, args.crop_border, clips,
                   args.max_frames, args.tile, progress=not args.quiet and os.isatty(2), lq=args.lq,
                   tile_overlap=args.tile_overlap)
    st = res["settings"]
    print(f"{args.layout}: {args.model} ({st['num_frames']} frames, ×{st['scale']}), "
          f"{'Y' if st['y_channel'] else 'RGB'}, crop {st['crop_border']}, padding {st['padding']}"
          + (f", input {st['lq']}" if args.layout == "reds4" else ""))
    print(format_table(res["clips"]))
    if args.json is not None:
        payload = {"settings": st, **to_json(res["clips"])}
        safety.write_text(args.json, json.dumps(payload, indent=2) + "\n")
    return 0
