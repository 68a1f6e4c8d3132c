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
import os
from pathlib import Path

from tfvr.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pred", type=Path, required=True, help="predicted frames: folder of clip folders or of frames")
    p.add_argument("--gt", type=Path, required=True, help="ground-truth frames, same layout as --pred")
    p.add_argument("--y", action="store_true", help="score the MATLAB BT.601 Y channel (test_y_channel)")
    p.add_argument("--crop-border", type=int, default=0, help="pixels cut from each side before scoring")
    p.add_argument("--border", type=int, default=2, help="frames at each clip end counted as border frames (2)")
    p.add_argument("--json", type=Path, default=None, help="also write the scores as JSON here")


def _frames(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _clips(root: Path) -> dict[str, list[Path]]:
    if not root.is_dir():
        raise UserError(f"{root}: not a folder")
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and _frames(d))
    if subdirs:
        return {d.name: _frames(d) for d in subdirs}
    frames = _frames(root)
    if not frames:
        raise UserError(f"{root}: no image frames or clip folders found")
    return {root.name: frames}


def _read(path: Path):
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"{path}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def score(pred_root: Path, gt_root: Path, y_channel: bool, crop_border: int, border: int):
    """Scores every clip; returns a list of `tfvr.metrics.table.ClipScores`."""
    from tfvr.metrics import psnr, ssim
    from tfvr.metrics.table import ClipScores

    pred, gt = _clips(pred_root), _clips(gt_root)
    if len(pred) == 1 and len(gt) == 1:  # single-clip folders pair up whatever their names
        pred = {next(iter(gt)): next(iter(pred.values()))}
    results = []
    for name, gt_frames in gt.items():
        if name not in pred:
            raise UserError(f"{pred_root}: no predictions for clip {name!r} (expected {pred_root / name})")
        by_name = {f.stem: f for f in pred[name]}
        scores = ClipScores(name)
        n = len(gt_frames)
        for i, g in enumerate(gt_frames):
            p = by_name.get(g.stem)
            if p is None:
                raise UserError(f"{pred_root}: frame {g.stem} of clip {name!r} is missing (ground truth {g})")
            a, b = _read(p), _read(g)
            if a.shape != b.shape:
                raise UserError(f"{p}: size {a.shape[1]}x{a.shape[0]} differs from {g} ({b.shape[1]}x{b.shape[0]})")
            scores.add(i, psnr(a, b, crop_border, y_channel), ssim(a, b, crop_border, y_channel),
                       border=i < border or i >= n - border)
        results.append(scores)
    return results


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
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(f".tmp-{args.json.name}")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(tmp, args.json)
    return 0
