"""`tfvr make-synthetic` (formerly `tfvr synth-video`): write a procedural video (tfvr's embedded default data), optionally degraded, as a file.

    tfvr make-synthetic --seed 7 --frames 24 --size 203x157 --noise 25 noisy.mp4 --clean-out clean.mp4

Gives a test input for `tfvr restore` / `tfvr inpaint` without any download. The output is a video (.mp4, .avi)
or, for a path without a video extension, a folder of lossless PNG frames.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from tfvr.errors import UserError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov"}


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 320x180 (WxH), got {text!r}") from None
    if w < 4 or h < 4:
        raise argparse.ArgumentTypeError(f"size must be at least 4x4, got {text!r}")
    return w, h


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", type=Path, help="output .mp4/.avi file, or a folder for PNG frames")
    p.add_argument("--seed", type=int, default=0, help="generator seed (same seed, same video)")
    p.add_argument("--frames", type=int, default=32, help="number of frames (default 32)")
    p.add_argument("--size", type=_size, default=(256, 144), help="WxH (default 256x144; odd sizes are fine)")
    p.add_argument("--fps", type=float, default=24.0, help="frame rate (default 24)")
    p.add_argument("--cuts", type=int, default=0, help="number of hard scene cuts (default 0)")
    p.add_argument("--blur", action="store_true", help="write the motion-blurred frames (GoPro-style averaging)")
    p.add_argument("--noise", type=float, default=0.0, help="add Gaussian noise, sigma on the 0-255 scale")
    p.add_argument("--clean-out", type=Path, default=None, help="also write the clean (sharp, noise-free) frames here")


def _write(path: Path, frames: np.ndarray, fps: float) -> None:
    from tfvr.data import video_io

    if path.suffix.lower() in VIDEO_SUFFIXES:
        video_io.write_video(path, frames, fps=fps)
        return
    import os
    import shutil
    import tempfile

    import cv2

    if path.exists() and any(path.iterdir()):
        raise UserError(f"{path}: folder exists and is not empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        for i, f in enumerate(frames):
            if not cv2.imwrite(str(tmp / f"{i:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR)):
                raise UserError(f"{path}: could not write PNG frame {i}")
        if path.exists():
            path.rmdir()
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def run(args: argparse.Namespace) -> int:
    from tfvr.data import degrade, synthetic

    if args.frames < 1:
        raise UserError(f"--frames must be >= 1, got {args.frames}")
    if args.noise < 0:
        raise UserError(f"--noise must be >= 0, got {args.noise}")
    w, h = args.size
    video = synthetic.generate(args.seed, args.frames, h, w, cuts=args.cuts, blur=args.blur, fps=args.fps)
    frames = video.blurred if args.blur else video.frames
    if args.noise > 0:
        noisy = degrade.add_gaussian_noise(frames.astype(np.float32) / 255.0, args.noise, seed=args.seed)
        frames = np.clip(np.round(noisy * 255.0), 0, 255).astype(np.uint8)
    _write(args.out, frames, args.fps)
    if args.clean_out is not None:
        _write(args.clean_out, video.frames, args.fps)
    print(f"wrote {args.out} ({args.frames} frames, {w}x{h}, {args.fps:g} fps"
          f"{', blurred' if args.blur else ''}{f', noise sigma {args.noise:g}' if args.noise else ''})")
    return 0
