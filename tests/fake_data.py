"""Small fake copies of public data layouts (REDS, Vimeo-90K, GoPro) for tests: the folder structure and file names
of the real releases, procedural content (`tfvr.data.synthetic`), degraded inputs made the way the releases were
(bicubic x4 LR, GoPro-style blur, blur + JPEG for blur_comp).

    make_reds(root, clips=("000", "001"), num_frames=6, height=64, width=96)
    make_vimeo(root, num_train=2, num_val=1, height=64, width=112)
    make_gopro(root, seqs=("GOPR0001",), num_frames=6, height=64, width=96)
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tfvr.data import degrade, synthetic


def _png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])):
        raise OSError(f"could not write {path}")


def _bicubic_x4(frame: np.ndarray) -> np.ndarray:
    lr = degrade.imresize(frame.astype(np.float64) / 255.0, 0.25)
    return np.clip(np.round(lr * 255.0), 0, 255).astype(np.uint8)


def _jpeg(frame: np.ndarray, quality: int = 60) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def make_reds(root, clips=("000", "001"), num_frames: int = 6, height: int = 64, width: int = 96,
              inputs=("sharp_bicubic", "blur", "blur_comp", "blur_bicubic"), seed: int = 0) -> Path:
    """A REDS copy: train_sharp/<clip>/%08d.png and the requested inputs (train_blur, train_blur_comp,
    train_sharp_bicubic/X4, train_blur_bicubic/X4). Height and width must be multiples of 4."""
    root = Path(root)
    for k, clip in enumerate(clips):
        v = synthetic.generate(seed + k, num_frames, height, width, cuts=0, subframes=7)
        for i in range(num_frames):
            sharp, blur = v.frames[i], v.blurred[i]
            name = f"{i:08d}.png"
            _png(root / "train_sharp" / clip / name, sharp)
            if "blur" in inputs:
                _png(root / "train_blur" / clip / name, blur)
            if "blur_comp" in inputs:
                _png(root / "train_blur_comp" / clip / name, _jpeg(blur))
            if "sharp_bicubic" in inputs:
                _png(root / "train_sharp_bicubic" / "X4" / clip / name, _bicubic_x4(sharp))
            if "blur_bicubic" in inputs:
                _png(root / "train_blur_bicubic" / "X4" / clip / name, _bicubic_x4(blur))
    return root


def make_vimeo(root, num_train: int = 2, num_val: int = 1, height: int = 64, width: int = 112, seed: int = 0) -> Path:
    """A Vimeo-90K septuplet copy: sequences/<a>/<b>/im1..im7.png, sep_trainlist.txt / sep_testlist.txt and the
    bicubic x4 LR in vimeo_septuplet_matlabLRx4/sequences beside it (`root` is vimeo_septuplet/)."""
    root = Path(root)
    lr_root = root.parent / "vimeo_septuplet_matlabLRx4" / "sequences"
    lists = {"sep_trainlist.txt": [], "sep_testlist.txt": []}
    for k in range(num_train + num_val):
        key = f"{k // 2 + 1:05d}/{k % 2 + 1:04d}"
        v = synthetic.generate(seed + k, 7, height, width, cuts=0, blur=False)
        for i in range(7):
            _png(root / "sequences" / key / f"im{i + 1}.png", v.frames[i])
            _png(lr_root / key / f"im{i + 1}.png", _bicubic_x4(v.frames[i]))
        lists["sep_trainlist.txt" if k < num_train else "sep_testlist.txt"].append(key)
    for name, keys in lists.items():
        (root / name).write_text("".join(f"{key}\n" for key in keys))
    return root


def make_gopro(root, train=("GOPR0001",), test=("GOPR0002",), num_frames: int = 6, height: int = 64,
               width: int = 96, seed: int = 0) -> Path:
    """A GOPRO_Large copy: {train,test}/<seq>/{blur,sharp}/%06d.png."""
    root = Path(root)
    for k, (part, seq) in enumerate([("train", s) for s in train] + [("test", s) for s in test]):
        v = synthetic.generate(seed + k, num_frames, height, width, cuts=0, subframes=7)
        for i in range(num_frames):
            _png(root / part / seq / "sharp" / f"{i:06d}.png", v.frames[i])
            _png(root / part / seq / "blur" / f"{i:06d}.png", v.blurred[i])
    return root


def make_cityscapes(root, height: int = 256, width: int = 512, num_frames: int = 4, seed: int = 0) -> Path:
    """A Cityscapes sequence-folder copy in NVIDIA/vid2vid's layout (train_A label ids, train_B frames,
    train_inst instance ids; val_A / val_B), one sequence per split at `height` x `width`."""
    root = Path(root)
    for k, (split, name) in enumerate((("train", "seq0000"), ("val", "stuttgart_00"))):
        v = synthetic.generate(seed + k, num_frames, height, width, blur=False)
        for i in range(num_frames):
            stem = f"{name}_000000_{i:06d}"
            for sub in ("A", "B", "inst"):
                (root / f"{split}_{sub}" / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / f"{split}_A" / name / f"{stem}_labelIds.png"), v.labels[i].astype(np.uint8))
            cv2.imwrite(str(root / f"{split}_B" / name / f"{stem}_leftImg8bit.png"),
                        np.ascontiguousarray(v.frames[i][..., ::-1]))
            cv2.imwrite(str(root / f"{split}_inst" / name / f"{stem}_instanceIds.png"),
                        (v.instances[i] + 24000).astype(np.uint16))
    return root
