"""Scoring a window-restoration model on a benchmark layout (Vid4, REDS4, Vimeo-90K-T): `tfvr evaluate`'s body.

Windows: `tfvr.inference.windows.frame_indices` (BasicSR padding); tiles: `tfvr.inference.tiling`; models:
`tfvr.inference.client.open_model(..., "restoration", allow_workdir=True)`. REDS4 input kinds (`lq`):
bicubic (train_sharp_bicubic/X4, ×4 SR), blur (train_blur, ×1 deblurring), blur_comp (train_blur_comp, ×1),
blur_bicubic (train_blur_bicubic/X4, ×4 SR of blurred frames); "auto" = bicubic for ×4 models, blur for ×1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfvr.errors import UserError
from tfvr.inference.windows import frame_indices

LAYOUTS = ("vid4", "reds4", "vimeo90k")
DEFAULT_Y = {"vid4": True, "reds4": False, "vimeo90k": True}
REDS_LQ = ("auto", "bicubic", "blur", "blur_comp", "blur_bicubic")


def load_model(path):
    """A restoration client (`.num_frames`, `.scale`, `.restore`) for a SavedModel, X.weights.h5 or workdir."""
    from tfvr.inference.client import open_model

    return open_model(path, "restoration", "`tfvr evaluate`", allow_workdir=True)


# ---------------------------------------------------------------------------------------------- data
def _read_rgb(ref) -> np.ndarray:
    import cv2

    from tfvr.data.layouts import read_frame

    data = np.frombuffer(read_frame(ref), np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"{ref}: not a readable image")
    return img[..., ::-1].copy()


def _reds_lq(root: Path, lq: str, clip: str):
    """(frames, scale) of one REDS clip's input kind."""
    from tfvr.data.layouts import _images, _lr_dir

    folder, scale = {"blur": (root / "train_blur", 1), "blur_comp": (root / "train_blur_comp", 1)}.get(lq, (None, 0))
    if folder is None:
        base = root / ("train_sharp_bicubic" if lq == "bicubic" else "train_blur_bicubic")
        folder, scale = _lr_dir(base)
        if folder is None:
            if lq == "bicubic":
                return [], 1  # made from the ground truth with MATLAB bicubic
            raise UserError(f"{base}: no such folder (REDS --lq {lq}: {base.name}/X4/<clip>)")
    if not (folder / clip).is_dir():
        raise UserError(f"{folder / clip}: no such folder (REDS --lq {lq})")
    return _images(folder / clip), scale


def _clips(root: Path, layout: str, lq: str = "auto", scale: int = 4):
    """[(clip name, FrameSequence)] of the benchmark."""
    import dataclasses

    from tfvr.data.layouts import REDS4, scan

    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    if layout == "vid4":
        _, sources = scan(root, "vid4")
        return [(Path(s.name).name, s) for s in sources]
    if layout == "reds4":
        if not (root / "train_sharp").is_dir():
            raise UserError(f"{root}: no train_sharp/ folder (REDS layout: train_sharp/<clip>, "
                            "train_sharp_bicubic/X4/<clip>)")
        _, sources = scan(root, "reds")
        clips = [(Path(s.name).name, s) for s in sources if s.name in {f"train_sharp/{c}" for c in REDS4}]
        if not clips:
            raise UserError(f"{root}/train_sharp: none of the REDS4 clips {', '.join(REDS4)}")
        kind = lq if lq != "auto" else ("bicubic" if scale > 1 else "blur")
        out = []
        for name, seq in clips:
            frames, s = _reds_lq(root, kind, name)
            if frames and len(frames) != len(seq.frames):
                raise UserError(f"{root}: clip {name}: {len(frames)} input frames ({kind}) for {len(seq.frames)} "
                                "ground-truth frames")
            out.append((name, dataclasses.replace(seq, lq=frames or None, lq_kind=kind if frames else "",
                                                  lq_scale=s if frames else 1)))
        return out
    _, sources = scan(root, "vimeo90k")
    return [(s.name[len("sequences/"):], s) for s in sources if s.split == "val"]


def _lr_frames(seq, gt: list[np.ndarray], scale: int) -> list[np.ndarray]:
    if scale == 1:
        if seq.lq and seq.lq_scale != 1:
            raise UserError(f"{seq.name}: the input frames are ×{seq.lq_scale} LR, the model is ×1 "
                            "(for REDS pass --lq blur or blur_comp)")
        return [_read_rgb(f) for f in seq.lq] if seq.lq else gt
    if seq.lq:
        if seq.lq_scale != scale:
            raise UserError(f"{seq.name}: LR frames are ×{seq.lq_scale}, the model is ×{scale}")
        return [_read_rgb(f) for f in seq.lq]
    from tfvr.data.degrade import imresize

    out = []
    for img in gt:
        h, w = img.shape[0] // scale * scale, img.shape[1] // scale * scale
        lr = imresize(img[:h, :w].astype(np.float64) / 255.0, 1.0 / scale)
        out.append(np.clip(np.round(lr * 255.0), 0, 255).astype(np.uint8))
    return out


# ---------------------------------------------------------------------------------------------- scoring
def evaluate(model, root: Path, layout: str, padding: str = "reflection_circle", y_channel: bool | None = None,
             crop_border: int = 0, clips: list[str] | None = None, max_frames: int = 0, tile: int = 0,
             progress: bool = False, lq: str = "auto", tile_overlap: int = 32) -> dict:
    """Scores `model` (a `client.RestorationClient`) on the benchmark; returns {"clips": [ClipScores...],
    "settings": {...}}."""
    from tfvr.inference.tiling import restore_window
    from tfvr.metrics import psnr, ssim
    from tfvr.metrics.table import ClipScores

    y = DEFAULT_Y[layout] if y_channel is None else bool(y_channel)
    t, s = model.num_frames, model.scale
    n = t // 2
    if lq != "auto" and layout != "reds4":
        raise UserError(f"--lq {lq}: only the reds4 layout has several input kinds")
    found = _clips(Path(root), layout, lq, s)
    if clips:
        names = {c for c, _ in found}
        missing = [c for c in clips if c not in names]
        if missing:
            raise UserError(f"{root}: no clip(s) {', '.join(missing)} in the {layout} layout")
        found = [(c, seq) for c, seq in found if c in clips]
    if not found:
        raise UserError(f"{root}: no {layout} clips found")
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(found), unit="clip", dynamic_ncols=True, leave=False)
    results = []
    for name, seq in found:
        gt = [_read_rgb(f) for f in seq.frames]
        inputs = _lr_frames(seq, gt, s)
        if layout == "vimeo90k":
            targets = [len(gt) // 2]
        else:
            targets = list(range(len(gt)))[: max_frames or None]
        scores = ClipScores(name)
        for i in targets:
            if layout == "vimeo90k":
                idx = frame_indices(i, len(inputs), t, padding)
                border = False
            else:
                idx = frame_indices(i, len(inputs), t, padding)
                border = i < n or i >= len(gt) - n
            window = np.stack([inputs[j] for j in idx])
            out = restore_window(model.restore, window, s, tile, tile_overlap)
            ref = gt[i][: out.shape[0], : out.shape[1]]
            if out.shape != ref.shape:
                raise UserError(f"{seq.frames[i]}: output {out.shape} does not fit the ground truth {gt[i].shape}")
            scores.add(i, psnr(out, ref, crop_border=crop_border, y_channel=y),
                       ssim(out, ref, crop_border=crop_border, y_channel=y), border=border)
        results.append(scores)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(clip=name, psnr=f"{scores.summary()['psnr_avg']:.2f}", refresh=False)
    if bar is not None:
        bar.close()
    settings = {"layout": layout, "padding": padding, "y_channel": y, "crop_border": crop_border,
                "num_frames": t, "scale": s, "dir": str(root),
                "lq": (lq if lq != "auto" else ("bicubic" if s > 1 else "blur")) if layout == "reds4" else "lr"}
    return {"clips": results, "settings": settings}




# ---------------------------------------------------------------------------------------------- `tfvr eval`
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def _folder_frames(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _folder_clips(root: Path) -> dict[str, list[Path]]:
    if not root.is_dir():
        raise UserError(f"{root}: not a folder")
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and _folder_frames(d))
    if subdirs:
        return {d.name: _folder_frames(d) for d in subdirs}
    frames = _folder_frames(root)
    if not frames:
        raise UserError(f"{root}: no image frames or clip folders found")
    return {root.name: frames}


def _read_scored(path: Path):
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"{path}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def score_folders(pred_root: Path, gt_root: Path, y_channel: bool, crop_border: int, border: int):
    """Scores every clip; returns a list of `tfvr.metrics.table.ClipScores`."""
    from tfvr.metrics import psnr, ssim
    from tfvr.metrics.table import ClipScores

    pred, gt = _folder_clips(pred_root), _folder_clips(gt_root)
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
            a, b = _read_scored(p), _read_scored(g)
            if a.shape != b.shape:
                raise UserError(f"{p}: size {a.shape[1]}x{a.shape[0]} differs from {g} ({b.shape[1]}x{b.shape[0]})")
            scores.add(i, psnr(a, b, crop_border, y_channel), ssim(a, b, crop_border, y_channel),
                       border=i < border or i >= n - border)
        results.append(scores)
    return results
