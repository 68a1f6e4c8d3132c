"""`tfvr evaluate --model M --layout vid4|reds4|vimeo90k DIR`: score a window-restoration model on a benchmark.

    tfvr evaluate --model saved_models/edvr_m/1 --layout reds4 data/REDS
    tfvr evaluate --model edvr_l_vimeo.weights.h5 --layout vid4 data/Vid4 --json vid4.json

Model (`--model`): a restoration SavedModel (`tfvr export`, `train/<family>.py`'s `export/`), a training workdir
(its `export/` if present, else its newest checkpoint), or weights converted with `tfvr convert-weights`
(`X.weights.h5` + `X.config.json`). T = 2N+1 input frames and the scale come from the model.

Layouts (the folder names of the public releases, read with `tfvr.data.layouts`):
  vid4      DIR/GT/<clip>/*.png and DIR/BIx4/<clip> (or BDx4): every clip, every frame.
  reds4     DIR/train_sharp/<clip> and DIR/train_sharp_bicubic/X4/<clip>: the REDS4 clips 000, 011, 015, 020.
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

import numpy as np

from tfvr.errors import UserError

LAYOUTS = ("vid4", "reds4", "vimeo90k")
PADDINGS = ("reflection_circle", "new_info", "replicate", "reflection", "circle")
DEFAULT_Y = {"vid4": True, "reds4": False, "vimeo90k": True}


def frame_indices(center: int, num_frames_in_clip: int, window: int, padding: str = "reflection_circle") -> list[int]:
    """Indices of the `window` frames around `center` in a clip of `num_frames_in_clip` frames (module docstring)."""
    if window % 2 != 1:
        raise ValueError(f"the window must be odd, got {window}")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    last = num_frames_in_clip - 1
    n = window // 2
    out = []
    for i in range(center - n, center + n + 1):
        if i < 0:
            j = {"replicate": 0, "reflection": -i, "reflection_circle": center + n - i, "new_info": center + n - i,
                 "circle": window + i}[padding]
        elif i > last:
            j = {"replicate": last, "reflection": 2 * last - i, "reflection_circle": center - n - (i - last),
                 "new_info": center - n - (i - last), "circle": i - window}[padding]
        else:
            j = i
        out.append(min(max(j, 0), last))  # very short clips: keep every index inside the clip
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", type=Path, help="the benchmark folder (see --layout)")
    p.add_argument("--model", required=True, type=Path,
                   help="restoration SavedModel folder, training workdir, or converted X.weights.h5")
    p.add_argument("--layout", required=True, choices=LAYOUTS)
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
    p.add_argument("--json", type=Path, default=None, help="also write the per-frame and per-clip scores here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--precision", default=None, choices=("float32", "bfloat16", "float16"),
                   help="compute dtype when --model is a workdir or converted weights (tfvr.export.precision); "
                        "a SavedModel keeps the precision it was exported with")


# ---------------------------------------------------------------------------------------------- models
class _InProcessModel:
    """The `tfvr.cli.restore.WindowModel` interface over a Keras model wrapped in a RestorationModule."""

    def __init__(self, module, num_frames: int, scale: int):
        self._module = module
        self.num_frames, self.scale = int(num_frames), int(scale)

    def restore(self, frames: np.ndarray) -> np.ndarray:
        return self._module.serve(frames)["restored"].numpy()


def load_model(path: Path):
    """A model with `.num_frames`, `.scale` and `.restore(uint8 [B, T, h, w, 3]) -> uint8 [B, sh, sw, 3]`."""
    from tfvr.cli.restore import WindowModel

    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").exists():
        return WindowModel(path)
    if path.is_dir() and (path / "config.json").exists():
        if (path / "export" / "saved_model.pb").exists():
            return WindowModel(path / "export")
        return _from_workdir(path)
    if path.name.endswith(".weights.h5"):
        return _from_converted(path)
    if path.is_dir():
        raise UserError(f"{path}: neither a SavedModel (saved_model.pb) nor a training workdir (config.json)")
    raise UserError(f"{path}: no such model (expected a SavedModel folder, a workdir or X.weights.h5)")


def _from_workdir(path: Path):
    import tensorflow as tf

    from tfvr.config import from_dict, read_json
    from tfvr.registry import get_task
    from tfvr.training.loop import Trainer

    data = read_json(path / "config.json")
    if "task" not in data:
        raise UserError(f"{path / 'config.json'}: no \"task\" key (not written by a tfvr training run?)")
    task_cls = get_task(data["task"], data.get("task_module"))
    task = task_cls(from_dict(task_cls.experiment_cls, data, source=str(path / "config.json")))
    trainer = Trainer(task, str(path), strategy=tf.distribute.OneDeviceStrategy("/cpu:0")).build()
    if trainer.restore() is None:
        raise UserError(f"{path / 'checkpoints'}: no readable checkpoint")
    module = trainer.export_module()
    if not hasattr(module, "serve"):
        raise UserError(f"{path}: the {data['task']} task does not export a window-restoration module")
    return _InProcessModel(module, module._num_frames, module._scale)


def _from_converted(path: Path):
    from tfvr.cli.convert_weights import config_path_for, load_converted
    from tfvr.export.restoration import RestorationModule

    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not config_path_for(path).exists():
        raise UserError(f"{path}: no {config_path_for(path).name} beside it (write both with `tfvr convert-weights`)")
    model = load_converted(path)
    for attr in ("num_frame", "scale", "size_multiple"):
        if not hasattr(model, attr):
            raise UserError(f"{path}: {type(model).__name__} is not a window-restoration model (no {attr})")
    module = RestorationModule(model, num_frames=model.num_frame, scale=model.scale, multiple=model.size_multiple)
    return _InProcessModel(module, model.num_frame, model.scale)


# ---------------------------------------------------------------------------------------------- data
def _read_rgb(ref) -> np.ndarray:
    import cv2

    from tfvr.data.layouts import read_frame

    data = np.frombuffer(read_frame(ref), np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"{ref}: not a readable image")
    return img[..., ::-1].copy()


def _clips(root: Path, layout: str):
    """[(clip name, FrameSequence)] of the benchmark."""
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
        return clips
    _, sources = scan(root, "vimeo90k")
    return [(s.name[len("sequences/"):], s) for s in sources if s.split == "val"]


def _lr_frames(seq, gt: list[np.ndarray], scale: int) -> list[np.ndarray]:
    if scale == 1:
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
             progress: bool = False) -> dict:
    """Scores `model` on the benchmark; returns {"clips": [ClipScores...], "settings": {...}}."""
    from tfvr.cli.restore import restore_window
    from tfvr.metrics import psnr, ssim
    from tfvr.metrics.table import ClipScores

    y = DEFAULT_Y[layout] if y_channel is None else bool(y_channel)
    t, s = model.num_frames, model.scale
    n = t // 2
    found = _clips(Path(root), layout)
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

        bar = tqdm(total=len(found), unit="clip", dynamic_ncols=True)
    results = []
    for name, seq in found:
        gt = [_read_rgb(f) for f in seq.frames]
        lq = _lr_frames(seq, gt, s)
        if layout == "vimeo90k":
            targets = [len(gt) // 2]
        else:
            targets = list(range(len(gt)))[: max_frames or None]
        scores = ClipScores(name)
        for i in targets:
            if layout == "vimeo90k":
                idx = frame_indices(i, len(lq), t, padding)
                border = False
            else:
                idx = frame_indices(i, len(lq), t, padding)
                border = i < n or i >= len(gt) - n
            window = np.stack([lq[j] for j in idx])[None]
            out = restore_window(model, window, tile=tile) if tile else model.restore(window)
            out = np.asarray(out)[0]
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
                "num_frames": t, "scale": s, "dir": str(root)}
    return {"clips": results, "settings": settings}


def run(args: argparse.Namespace) -> int:
    from tfvr.metrics.table import format_table, to_json

    if args.crop_border < 0:
        raise UserError(f"--crop-border must be >= 0, got {args.crop_border}")
    if args.json is not None and not args.json.parent.is_dir():
        raise UserError(f"{args.json}: the folder {args.json.parent} does not exist")
    model = load_model(args.model)
    if getattr(args, "precision", None):
        if not isinstance(model, _InProcessModel):
            raise UserError(f"{args.model}: --precision applies to workdirs and converted weights; a SavedModel "
                            "computes in the precision it was exported with (tfvr export --precision)")
        from tfvr.export.precision import apply_to_module

        apply_to_module(model._module, args.precision)
    clips = [c for c in args.clips.split(",") if c]
    res = evaluate(model, args.dir, args.layout, args.padding, args.y_channel, args.crop_border, clips,
                   args.max_frames, args.tile, progress=not args.quiet and os.isatty(2))
    st = res["settings"]
    print(f"{args.layout}: {args.model} ({st['num_frames']} frames, ×{st['scale']}), "
          f"{'Y' if st['y_channel'] else 'RGB'}, crop {st['crop_border']}, padding {st['padding']}")
    print(format_table(res["clips"]))
    if args.json is not None:
        payload = {"settings": st, **to_json(res["clips"])}
        tmp = args.json.with_name(f".tmp-{args.json.name}")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(tmp, args.json)
    return 0
