"""Clip sources for MemVSR's next-frame prediction: synthetic videos, HumanEva and Charades_v1_480 (seed layouts).

A source is a list of `VideoEntry`s (a name and a way to read frame i); `sample_clip` cuts a clip of
`num_inputs` frames `interval` apart plus the frame after them (the target), resized to `width × height`,
float32 RGB in [0, 1]. `build_train_dataset` / `eval_clips` turn a `NextFrameDataConfig` into a `tf.data`
stream of `{"frames": [B, T, H, W, 3], "target": [B, H, W, 3]}` / a fixed list of held-out clips.

Layouts (seed 004):

    HumanEva/                                Charades_v1_480_img/
      image/S1_Box_1_(C1)/000000.jpg ...       0A8CF/0000000.jpg ...
      video/S1/Box_1_(C1).avi ...              0A8ZT/...
      train_list.csv, val_list.csv, test_list.csv

HumanEva CSVs: one clip per row, first column (a header row whose first cell is not a clip is skipped); a clip
is an image-folder name (`S1_Box_1_(C1)`, read from `image/`) or a video path relative to `video/`
(`S1/Box_1_(C1).avi`); a name with no image folder is looked up as `video/<subject>/<rest>.avi`. Charades: every
sub-folder with frames is a clip; `Charades_v1_train.csv` / `Charades_v1_test.csv` (official, `id` column) choose
the split when present, else the sorted clips are split 90 % / 10 % (train / val = test).
Frames inside a folder are ordered by the number in their names (any number of digits).
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from tfvr.errors import UserError

__all__ = ["VideoEntry", "humaneva_videos", "charades_videos", "synthetic_videos", "videos_for",
           "sample_clip", "eval_clips", "build_train_dataset"]

_IMG_EXT = (".jpg", ".jpeg", ".png", ".bmp")
_SPLIT_FILES = {"train": "train_list.csv", "val": "val_list.csv", "test": "test_list.csv"}


@dataclass
class VideoEntry:
    """One video: `name`, `num_frames`, `read(i) -> uint8 [H, W, 3] RGB`."""

    name: str
    num_frames: int
    read: Callable[[int], np.ndarray]


def _frame_number(p: Path) -> int:
    m = re.findall(r"\d+", p.stem)
    return int(m[-1]) if m else -1


def _image_folder(folder: Path) -> Optional[VideoEntry]:
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in _IMG_EXT), key=lambda p: (_frame_number(p), p.name))
    if not files:
        return None

    def read(i, files=files):
        import cv2

        img = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise UserError(f"{files[i]}: cannot read this image (missing or corrupt)")
        return img[..., ::-1]

    return VideoEntry(folder.name, len(files), read)


def _video_file(path: Path) -> VideoEntry:
    from tfvr.data import video_io

    info = video_io.probe(path)
    cache: dict = {}

    def read(i, path=path):
        # Decode up to the frame needed once; clips read increasing indices of the same video.
        frames = cache.get("frames")
        if frames is None or i >= len(frames):
            frames = video_io.read_video(path).frames
            cache["frames"] = frames
        if i >= len(frames):
            raise UserError(f"{path}: frame {i} requested, the video has {len(frames)}")
        return frames[i]

    return VideoEntry(str(path), int(info.num_frames), read)


def _csv_names(path: Path) -> list[str]:
    names = []
    with open(path, newline="") as f:
        for row in csv.reader(f):
            if row and row[0].strip():
                names.append(row[0].strip())
    return names


def humaneva_videos(root: str, split: str) -> list[VideoEntry]:
    """The clips of HumanEva's `<split>_list.csv` (split: train / val / test)."""
    root_p = Path(root)
    if split not in _SPLIT_FILES:
        raise ValueError(f"split must be one of {sorted(_SPLIT_FILES)}, got {split!r}")
    csv_path = root_p / _SPLIT_FILES[split]
    if not csv_path.is_file():
        raise UserError(f"{csv_path}: missing (HumanEva layout: image/, video/, train_list.csv, val_list.csv, "
                        "test_list.csv)")
    out = []
    for k, name in enumerate(_csv_names(csv_path)):
        folder = root_p / "image" / name
        if folder.is_dir():
            entry = _image_folder(folder)
            if entry is None:
                raise UserError(f"{folder}: no frames ({', '.join(_IMG_EXT)}) in this clip folder")
            out.append(entry)
            continue
        video = root_p / "video" / name
        if not video.suffix:
            subject, _, rest = name.partition("_")
            video = root_p / "video" / subject / f"{rest}.avi"
        if video.is_file():
            out.append(_video_file(video))
        elif k == 0:
            continue  # a header row
        else:
            raise UserError(f"{csv_path}: clip {name!r} is neither {folder} nor {video}")
    if not out:
        raise UserError(f"{csv_path}: lists no clip found under {root_p / 'image'} or {root_p / 'video'}")
    return out


def charades_videos(root: str, split: str) -> list[VideoEntry]:
    """Charades_v1_480 frame folders; split "train" or "val"/"test"."""
    root_p = Path(root)
    if not root_p.is_dir():
        raise UserError(f"{root_p}: not a folder (Charades_v1_480_img/<clip>/<frame>.jpg)")
    folders = sorted(p for p in root_p.iterdir() if p.is_dir())
    official = root_p / ("Charades_v1_train.csv" if split == "train" else "Charades_v1_test.csv")
    if official.is_file():
        with open(official, newline="") as f:
            rows = list(csv.DictReader(f))
        if rows and "id" not in rows[0]:
            raise UserError(f"{official}: no 'id' column")
        ids = {r["id"] for r in rows}
        chosen = [p for p in folders if p.name in ids]
    else:
        n_val = max(1, len(folders) // 10) if len(folders) > 1 else 0
        chosen = folders[len(folders) - n_val:] if split != "train" else folders[:len(folders) - n_val]
    out = [e for e in (_image_folder(p) for p in chosen) if e is not None]
    if not out:
        raise UserError(f"{root_p}: no {split} clip folder with frames")
    return out


def synthetic_videos(cfg, split: str) -> list[VideoEntry]:
    """Procedural videos (`tfvr.data.synthetic.generate`, no blur rendering); train and held-out videos use
    disjoint seeds and do not depend on the data stream's seed."""
    from tfvr.data import synthetic

    count = cfg.num_train_videos if split == "train" else cfg.num_eval_videos
    base = 10_000 if split == "train" else 90_000
    out = []
    for i in range(count):
        frames = synthetic.generate(base + i, cfg.synthetic_frames, cfg.video_height, cfg.video_width,
                                    motion=cfg.motion, blur=False).frames
        out.append(VideoEntry(f"synthetic_{split}_{i}", len(frames), lambda j, f=frames: f[j]))
    return out


def videos_for(cfg, split: str) -> list[VideoEntry]:
    """The videos of `cfg.dataset` for split "train" / "val" / "test"."""
    if cfg.dataset == "synthetic":
        return synthetic_videos(cfg, split)
    if cfg.dataset == "humaneva":
        return humaneva_videos(cfg.root, split)
    if cfg.dataset == "charades":
        return charades_videos(cfg.root, split)
    raise UserError(f"nextframe_data.dataset: unknown dataset {cfg.dataset!r}")


def _resize(img: np.ndarray, width: int, height: int) -> np.ndarray:
    if img.shape[0] == height and img.shape[1] == width:
        return img
    import cv2

    return cv2.resize(np.ascontiguousarray(img), (width, height), interpolation=cv2.INTER_AREA)


def sample_clip(video: VideoEntry, start: int, interval: int, num_inputs: int, width: int, height: int):
    """(frames float32 [num_inputs, H, W, 3], target float32 [H, W, 3]) from frames start, start + interval, …"""
    idx = [start + k * interval for k in range(num_inputs + 1)]
    if idx[-1] >= video.num_frames:
        raise UserError(f"{video.name}: a clip needs frame {idx[-1]}, the video has {video.num_frames}")
    imgs = np.stack([_resize(video.read(i), width, height) for i in idx]).astype(np.float32) / 255.0
    return imgs[:-1], imgs[-1]


def _usable(videos, span, where):
    ok = [v for v in videos if v.num_frames >= span]
    if not ok:
        raise UserError(f"{where}: no video has the {span} frames a clip needs (input_size × frame_interval + 1)")
    return ok


def eval_clips(cfg, num_inputs: int, split: str = "val"):
    """Held-out clips at fixed positions: (frames [N, T, H, W, 3], targets [N, H, W, 3]) float32."""
    span = num_inputs * cfg.frame_interval + 1
    videos = _usable(videos_for(cfg, split), span, f"nextframe_data ({cfg.dataset}, {split})")
    frames, targets = [], []
    for v in videos:
        last_start = v.num_frames - span
        for s in np.linspace(0, last_start, cfg.eval_clips_per_video).round().astype(int):
            f, t = sample_clip(v, int(s), cfg.frame_interval, num_inputs, cfg.width, cfg.height)
            frames.append(f)
            targets.append(t)
    return np.stack(frames), np.stack(targets)


def build_train_dataset(cfg, num_inputs: int, batch_size: int, seed: int, shard: tuple[int, int] = (0, 1)):
    """Endless `tf.data.Dataset` of {"frames": [B, T, H, W, 3], "target": [B, H, W, 3]} random clips (random
    video, start and, with `random_interval`, interval in [1, frame_interval])."""
    import tensorflow as tf

    videos = _usable(videos_for(cfg, "train"), num_inputs * cfg.frame_interval + 1,
                     f"nextframe_data ({cfg.dataset}, train)")
    shard_id, num_shards = shard

    def gen():
        rng = np.random.default_rng([int(seed), shard_id])
        while True:
            v = videos[int(rng.integers(len(videos)))]
            interval = int(rng.integers(1, cfg.frame_interval + 1)) if cfg.random_interval else cfg.frame_interval
            start = int(rng.integers(0, v.num_frames - num_inputs * interval))
            f, t = sample_clip(v, start, interval, num_inputs, cfg.width, cfg.height)
            yield {"frames": f, "target": t}

    sig = {"frames": tf.TensorSpec([num_inputs, cfg.height, cfg.width, 3], tf.float32),
           "target": tf.TensorSpec([cfg.height, cfg.width, 3], tf.float32)}
    ds = tf.data.Dataset.from_generator(gen, output_signature=sig)
    return ds.batch(batch_size, drop_remainder=True).prefetch(2)
