"""`tfvr inpaint --model DIR VIDEO --masks MASKS OUT`: remove the masked objects from a video with STTN-I.

    tfvr inpaint --model saved_models/sttn_inpaint/1 video.mp4 --masks masks/ out.mp4      # or out/ (PNG frames)

MASKS is a folder of images (sorted by name; one per frame, or a single one used for every frame), a mask video,
or one image file. A pixel is hole where the mask is > 0 (image files; 8-bit, any number of channels) or >= 32 (a
mask video: lossy coding leaves small non-zero values in the black areas). Masks of another size are resized to the video's (nearest).
OUT ending in .mp4/.avi/.mkv/.mov is a video (mp4v); anything else is a folder that receives lossless PNG frames
`00000.png`, ... . Outputs are written under a temporary name and renamed when complete.

The authors' inference scheme (researchmm/STTN `test.py`), at any input size:
1. Holes: each mask is dilated with a 3x3 cross, `--dilate` iterations (4, as released) at the authors' 432x240,
   scaled with the frame size (round(4 * sqrt(H*W / (432*240))) iterations at H x W), so the margin around the
   object is the same share of the frame whatever the video's or the model's size. Pixels outside that hole are
   returned bit-exactly. (The SavedModel marks a model-size pixel as hole when any full-size pixel under it is.)
2. Windows: for f = 0, s, 2s, ... (s = `--neighbor-stride`, 5), the neighbours f-s .. f+s plus the reference frames
   0, r, 2r, ... (r = `--ref-length`, 10) not among them go through the SavedModel together (the transformer attends
   over all of them); the neighbours' outputs are kept.
3. A frame covered by several windows gets the mean of their outputs (the authors' code blends pairwise, 0.5
   old + 0.5 new, which weighs later windows more; the mean weighs them equally).
4. The SavedModel resizes to its size, inpaints, resizes the output back and composites at full resolution.
All frames are held in memory (the reference frames span the whole video).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tfvr.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
REFERENCE_HW = (240, 432)  # the authors' test.py frame size, at which --dilate is given


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", type=Path, help="input video")
    p.add_argument("output", type=Path, help="output .mp4 (or .avi/.mkv/.mov), or a folder for lossless PNG frames")
    p.add_argument("--model", required=True, type=Path, help="STTN-I SavedModel folder (`tfvr export`)")
    p.add_argument("--masks", required=True, type=Path,
                   help="folder of mask images (one per frame, or one for all), a mask video, or one image")
    p.add_argument("--neighbor-stride", type=int, default=5, help="local window half-width and step (5)")
    p.add_argument("--ref-length", type=int, default=10, help="a reference frame every N frames (10)")
    p.add_argument("--dilate", type=int, default=4,
                   help="3x3-cross dilations of the mask at 432x240, scaled with the frame size (4)")
    p.add_argument("--max-frames", type=int, default=None, help="process only the first N frames")
    p.add_argument("--fps", type=float, default=None, help="output fps (default: the input's)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ----------------------------------------------------------------------------------------------- masks
def _read_mask_image(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserError(f"{path}: not a readable image")
    if img.ndim == 3:
        img = img.max(axis=2)
    return img > 0


def read_masks(path: Path, num_frames: int, height: int, width: int) -> np.ndarray:
    """bool [T, H, W] holes for `num_frames` frames of `height` x `width`."""
    import cv2

    from tfvr.data.video_io import read_video

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(f"{path}: no mask images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
        if len(files) == 1:
            masks = [_read_mask_image(files[0])] * num_frames
        elif len(files) < num_frames:
            raise UserError(f"{path}: {len(files)} mask images for {num_frames} frames (give one per frame, "
                            "or a single mask for all)")
        else:
            masks = [_read_mask_image(f) for f in files[:num_frames]]
    elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        masks = [_read_mask_image(path)] * num_frames
    elif path.is_file():
        video = read_video(path, max_frames=num_frames).frames
        if len(video) < num_frames and len(video) != 1:
            raise UserError(f"{path}: the mask video has {len(video)} frames, the video {num_frames}")
        masks = [f.max(axis=2) >= 32 for f in video]
        if len(masks) == 1:
            masks = masks * num_frames
    else:
        raise UserError(f"{path}: no such mask folder, image or video")
    out = np.empty((num_frames, height, width), bool)
    for i, m in enumerate(masks):
        if m.shape != (height, width):
            m = cv2.resize(m.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
        out[i] = m
    return out


def effective_holes(masks: np.ndarray, dilate: int = 4) -> np.ndarray:
    """The holes that get filled (bool [T, H, W]): step 1 of the module docstring."""
    import cv2

    t, h, w = masks.shape
    iterations = int(round(dilate * np.sqrt(h * w / float(REFERENCE_HW[0] * REFERENCE_HW[1]))))
    if iterations <= 0:
        return masks.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel, iterations=iterations) > 0 for m in masks])


# ----------------------------------------------------------------------------------------------- windows
def windows(num_frames: int, neighbor_stride: int = 5, ref_length: int = 10):
    """[(neighbour ids, reference ids)] of the authors' `test.py`."""
    out = []
    for f in range(0, num_frames, neighbor_stride):
        neighbors = list(range(max(0, f - neighbor_stride), min(num_frames, f + neighbor_stride + 1)))
        refs = [i for i in range(0, num_frames, ref_length) if i not in neighbors]
        out.append((neighbors, refs))
    return out


def load_model(path: Path):
    """(serving function, (height, width)) of an STTN-I SavedModel."""
    import tensorflow as tf

    if not (Path(path) / "saved_model.pb").is_file():
        raise UserError(f"{path}: not a SavedModel folder (no saved_model.pb)")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as e:  # noqa: BLE001 - any load failure is the user's file
        raise UserError(f"{path}: cannot load the SavedModel ({type(e).__name__}: {e})") from None
    fn = loaded.signatures.get("serving_default")
    if fn is None or not hasattr(loaded, "model_height"):
        raise UserError(f"{path}: not an STTN-I SavedModel (needs serving_default(frames, masks) and a model size)")
    names = set(fn.structured_input_signature[1])
    if names != {"frames", "masks"}:
        raise UserError(f"{path}: serving_default takes {sorted(names)}, expected frames and masks")
    size = (int(loaded.model_height.numpy()), int(loaded.model_width.numpy()))
    return loaded, fn, size


def inpaint_video(fn, frames: np.ndarray, holes: np.ndarray, neighbor_stride: int = 5, ref_length: int = 10,
                  progress: bool = True) -> np.ndarray:
    """uint8 [T, H, W, 3] frames, bool [T, H, W] holes -> inpainted uint8 [T, H, W, 3] (steps 2-3)."""
    import tensorflow as tf
    from tqdm import tqdm

    t = len(frames)
    acc = np.zeros(frames.shape, np.float64)
    count = np.zeros([t], np.int64)
    hole_u8 = holes.astype(np.uint8)[..., None] * 255
    plan = windows(t, neighbor_stride, ref_length)
    bar = tqdm(plan, desc="inpaint", unit="window", disable=not progress or None, leave=False)
    for neighbors, refs in bar:
        ids = neighbors + refs
        out = fn(frames=tf.constant(frames[ids]), masks=tf.constant(hole_u8[ids]))["frames"].numpy()
        for j, idx in enumerate(neighbors):
            acc[idx] += out[j]
            count[idx] += 1
    mean = np.round(acc / count[:, None, None, None]).astype(np.uint8)
    return np.where(holes[..., None], mean, frames)


# ----------------------------------------------------------------------------------------------- output
def _is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def write_png_folder(path: Path, frames: np.ndarray, overwrite: bool = False) -> Path:
    """Lossless PNG frames 00000.png ... into `path`, written to a temporary sibling folder and renamed."""
    import cv2

    path = Path(path)
    if path.exists() and not overwrite and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"{path} already exists (pass --overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        for i, frame in enumerate(frames):
            if not cv2.imwrite(str(tmp / f"{i:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
                raise UserError(f"{path}: could not write frame {i}")
        if path.exists():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def run(args: argparse.Namespace) -> int:
    from tfvr.data.video_io import read_video, write_video

    if args.neighbor_stride < 1 or args.ref_length < 1 or args.dilate < 0:
        raise UserError("--neighbor-stride and --ref-length must be >= 1, --dilate >= 0")
    out = Path(args.output)
    if _is_video_path(out) and out.exists() and not args.overwrite:
        raise UserError(f"{out} already exists (pass --overwrite to replace it)")
    if not _is_video_path(out) and out.suffix and out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    video = read_video(args.video, max_frames=args.max_frames)
    frames = video.frames
    t, h, w = frames.shape[:3]
    masks = read_masks(args.masks, t, h, w)
    _, fn, model_hw = load_model(args.model)
    holes = effective_holes(masks, args.dilate)
    result = inpaint_video(fn, frames, holes, args.neighbor_stride, args.ref_length, progress=not args.quiet)
    if _is_video_path(out):
        write_video(out, result, fps=args.fps or video.fps)
    else:
        write_png_folder(out, result, overwrite=args.overwrite)
    print(f"{args.video}: {t} frames {w}x{h}, {int(holes.sum())} hole pixels filled (model size "
          f"{model_hw[1]}x{model_hw[0]}) -> {out}")
    return 0
