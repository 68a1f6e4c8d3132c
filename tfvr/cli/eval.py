"""`tfvr eval`: PSNR/SSIM of predicted frames against ground truth, in the per-clip table of the EDVR paper.

    tfvr eval --pred results/ --gt Vid4/GT --y --crop-border 4 --json scores.json

`--pred` and `--gt` are either folders of clip folders (`calendar/00000.png`, …) or one folder of frames (a
single clip). Frames pair up by file name (any image OpenCV reads); a frame missing on either side is an error
that names it. Border frames are the first and last `--border N` frames of each clip (those whose 2N+1 windows
were padded; N = 2 for 5-frame models, 3 for 7-frame ones).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tfvr.errors import UserError
from tfvr.inference.evaluate import score_folders as score  # noqa: F401  (re-exported)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pred", type=Path, required=True, help="predicted frames: folder of clip folders or of frames")
    p.add_argument("--gt", type=Path, required=True, help="ground-truth frames, same layout as --pred")
    p.add_argument("--y", action="store_true", help="score the MATLAB BT.601 Y channel (test_y_channel)")
    p.add_argument("--crop-border", type=int, default=0, help="pixels cut from each side before scoring")
    p.add_argument("--border", type=int, default=2, help="frames at each clip end counted as border frames (2)")
    p.add_argument("--json", type=Path, default=None, help="also write the scores as JSON here")


def run(args: argparse.Namespace) -> int:
    from tfvr.metrics.table import format_table, to_json

    if args.crop_border < 0 or args.border < 0:
        raise UserError("--crop-border and --border must be >= 0")
    clips = score(args.pred, args.gt, args.y, args.crop_border, args.border)
    print(f"{'Y' if args.y else 'RGB'}, crop border {args.crop_border}, border frames {args.border} per end")
    print(format_table(clips))
    if args.json is not None:
        payload = {"settings": {"y_channel": args.y, "crop_border": args.crop_border, "border": args.border,
                                "pred": str(args.pred), "gt": str(args.gt)}, **to_json(clips)}
        from tfvr import safety

        safety.check_output(args.json, [args.pred, args.gt], overwrite=True, what="--json file")
        safety.write_text(args.json, json.dumps(payload, indent=2) + "\n")
    return 0
