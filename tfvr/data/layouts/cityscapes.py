"""Reader for Cityscapes-style label-to-video sequence folders (NVIDIA/vid2vid's `datasets/Cityscapes` layout).

    <root>/<split>_A/<sequence>/*.png      label maps, one per frame, pixel = class id (8- or 16-bit, 1 channel)
    <root>/<split>_B/<sequence>/*.png      the frames (RGB; .png or .jpg)
    <root>/<split>_inst/<sequence>/*.png   optional instance-id maps (Cityscapes `instanceIds`, 16-bit)

Files of a sequence pair up in file-name order (the three folders must hold the same number of images).
`build_dataset` gives what `tfvr.data.pipeline` gives for `task="label2video"`: batches of
`{"frames": float32 [B, T, H, W, 3] in [0, 1], "labels": int32 [B, T, H, W], "instances": int32 [B, T, H, W]}`
(instances are zeros without an `_inst` folder), so `Vid2VidTask` trains on either.

Training: endless; every sequence contributes windows of T consecutive frames at random starts, with one random
crop (`crop_size`: n, or HxW; 0 = whole frames) and a random horizontal flip shared by every frame and map of the
window. Evaluation (`training=False`): each sequence once, its first T frames, whole frames, in order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfvr.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


@dataclass
class Sequence:
    name: str
    labels: list[str]
    frames: list[str]
    instances: list[str] | None


def _images(folder: Path) -> list[str]:
    return sorted(str(f) for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))


def list_sequences(root: str | os.PathLike, split: str = "train") -> list[Sequence]:
    """The sequences of `<root>/<split>_A|_B[|_inst]`; `UserError` naming the folder for layout problems."""
    root = Path(root)
    a_dir, b_dir, i_dir = root / f"{split}_A", root / f"{split}_B", root / f"{split}_inst"
    for d in (a_dir, b_dir):
        if not d.is_dir():
            raise UserError(f"{root}: no {d.name}/ folder (expected {split}_A/ label maps and {split}_B/ frames, "
                            "one sub-folder per sequence)")
    seqs = []
    for seq_dir in sorted(p for p in a_dir.iterdir() if p.is_dir()):
        labels = _images(seq_dir)
        frames_dir = b_dir / seq_dir.name
        if not frames_dir.is_dir():
            raise UserError(f"{frames_dir}: missing (the frames of label sequence {seq_dir})")
        frames = _images(frames_dir)
        if len(frames) != len(labels):
            raise UserError(f"{seq_dir.name}: {len(labels)} label maps in {seq_dir} but {len(frames)} frames in "
                            f"{frames_dir}")
        instances = None
        if (i_dir / seq_dir.name).is_dir():
            instances = _images(i_dir / seq_dir.name)
            if len(instances) != len(labels):
                raise UserError(f"{i_dir / seq_dir.name}: {len(instances)} instance maps for {len(labels)} frames")
        if labels:
            seqs.append(Sequence(seq_dir.name, labels, frames, instances))
    if not seqs:
        raise UserError(f"{a_dir}: no sequence folders with label maps")
    return seqs


def _read(path: bytes, kind: str) -> np.ndarray:
    import cv2

    p = path.decode()
    img = cv2.imread(p, cv2.IMREAD_UNCHANGED if kind != "frame" else cv2.IMREAD_COLOR)
    if img is None:
        raise UserError(f"{p}: not a readable image")
    if kind == "frame":
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if img.ndim == 3:
        raise UserError(f"{p}: {kind} maps must be single-channel id images, got {img.shape[2]} channels")
    return img.astype(np.int32)


def _load_window(labels, frames, instances):
    """[T] paths each → (frames uint8 [T, H, W, 3], labels int32 [T, H, W], instances int32 [T, H, W])."""
    lab = np.stack([_read(p, "label") for p in labels])
    fr = np.stack([_read(p, "frame") for p in frames])
    if fr.shape[1:3] != lab.shape[1:3]:
        raise UserError(f"{frames[0].decode()}: frame size {fr.shape[2]}x{fr.shape[1]} differs from its label map "
                        f"{lab.shape[2]}x{lab.shape[1]}")
    inst = np.stack([_read(p, "instance") for p in instances]) if len(instances) and instances[0] else \
        np.zeros_like(lab)
    return fr, lab, inst


def load_sequence(seq: Sequence, num_frames: int | None = None):
    """The first `num_frames` frames of a sequence: (frames uint8 [T, H, W, 3], labels int32, instances int32)."""
    n = len(seq.labels) if num_frames is None else min(num_frames, len(seq.labels))
    enc = lambda paths: [p.encode() for p in paths[:n]]  # noqa: E731
    return _load_window(enc(seq.labels), enc(seq.frames), enc(seq.instances) if seq.instances else [b""] * n)


def build_dataset(root: str | os.PathLike, split: str = "train", *, num_frames: int = 9, crop_size=0,
                  batch_size: int = 1, seed: int = 0, training: bool = True, hflip: bool = True,
                  input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """Batches of label-to-video windows (see the module docstring). `crop_size`: 0 (whole frames), an int
    (square) or (height, width) / "HxW" (e.g. 256x512 for label2city_512)."""
    from tfvr.data.config import parse_size

    crop_h, crop_w = parse_size(crop_size)
    seqs = [s for s in list_sequences(root, split) if len(s.labels) >= num_frames]
    if not seqs:
        raise UserError(f"{root}/{split}_A: no sequence has {num_frames} frames")
    if input_context is not None and input_context.num_input_pipelines > 1:
        seqs = seqs[input_context.input_pipeline_id::input_context.num_input_pipelines] or seqs
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    t = num_frames
    windows = []  # (labels, frames, instances) path lists of every possible window
    for s in seqs:
        starts = range(len(s.labels) - t + 1) if training else [0]
        for i in starts:
            inst = s.instances[i:i + t] if s.instances else [""] * t
            windows.append((s.labels[i:i + t], s.frames[i:i + t], inst))
    lab, fr, ins = (tf.constant([w[k] for w in windows]) for k in range(3))
    ds = tf.data.Dataset.from_tensor_slices((lab, fr, ins))
    if training:
        ds = ds.shuffle(len(windows), seed=seed, reshuffle_each_iteration=True).repeat()
    ds = ds.enumerate()

    def load(index, paths):
        frames, labels, instances = tf.numpy_function(_load_window, list(paths), (tf.uint8, tf.int32, tf.int32),
                                                      stateful=False)
        frames = tf.ensure_shape(frames, [t, None, None, 3])
        labels = tf.ensure_shape(labels, [t, None, None])
        instances = tf.ensure_shape(instances, [t, None, None])
        if training:
            s = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), index]), 3)
            h, w = tf.shape(labels)[1], tf.shape(labels)[2]
            if crop_h and crop_w:
                y = tf.random.stateless_uniform([], s[0], 0, h - crop_h + 1, tf.int32)
                x = tf.random.stateless_uniform([], s[1], 0, w - crop_w + 1, tf.int32)
                frames = frames[:, y:y + crop_h, x:x + crop_w]
                labels = labels[:, y:y + crop_h, x:x + crop_w]
                instances = instances[:, y:y + crop_h, x:x + crop_w]
            if hflip:
                flip = tf.random.stateless_uniform([], s[2]) < 0.5
                frames, labels, instances = (tf.cond(flip, lambda v=v: tf.reverse(v, [2]), lambda v=v: v)
                                             for v in (frames, labels, instances))
        return {"frames": tf.cast(frames, tf.float32) / 255.0, "labels": labels, "instances": instances}

    # traced as written (no AutoGraph conversion: seconds per pipeline)
    ds = ds.map(tf.autograph.experimental.do_not_convert(load), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=not training)
    ds = ds.batch(batch_size, drop_remainder=training)
    return ds.prefetch(tf.data.AUTOTUNE)
