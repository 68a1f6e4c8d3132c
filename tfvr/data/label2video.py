"""Label-to-video data for a training run: the training stream and the held-out videos, from one of three sources.

- `train_dataset(data, sequence_root, seed, input_context)`: batches `{"frames", "labels", "instances"}` (see
  `tfvr.data.pipeline`, `task="label2video"`) from a Cityscapes-style folder (`sequence_root`,
  `tfvr.data.layouts.cityscapes`) or else from `data` (`tfvr.data.pipeline.build_dataset`).
- `eval_videos(data, sequence_root, num_videos, num_frames, multiple)`: whole held-out videos
  `(frames uint8 [T, H, W, 3], labels int32 [T, H, W], instances int32 [T, H, W])`, cut down to a multiple of
  `multiple` (both sides): the `val` sequences of `sequence_root` when set (their first `num_frames` frames),
  else `num_videos` synthetic videos (`synthetic_eval_videos`, seeds disjoint from the training videos'), else
  (`num_videos` = 0) the clips of the `val` split of `data`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfvr.errors import UserError

__all__ = ["train_dataset", "eval_videos", "cityscapes_eval_videos", "synthetic_eval_videos", "split_eval_videos"]


def train_dataset(data, sequence_root: str, seed: int, input_context=None):
    """The training stream (a `tf.data.Dataset` of dict batches) of `data` (a `DataConfig`), or of the Cityscapes
    folder `sequence_root` with `data`'s clip length, crop, batch size and flip."""
    if sequence_root:
        from tfvr.data.layouts import cityscapes

        return cityscapes.build_dataset(sequence_root, "train", num_frames=data.num_frames, crop_size=data.crop_size,
                                        batch_size=data.batch_size, seed=int(seed), hflip=data.hflip,
                                        input_context=input_context)
    from tfvr.data import pipeline

    return pipeline.build_dataset(dataclasses.replace(data, seed=int(seed)), "train", input_context)


def cityscapes_eval_videos(root: str, num_frames: int) -> list:
    """The first `num_frames` frames of every `val` sequence of a Cityscapes-style folder."""
    from tfvr.data.layouts import cityscapes

    return [cityscapes.load_sequence(seq, min(len(seq.labels), num_frames))
            for seq in cityscapes.list_sequences(root, "val")]


def synthetic_eval_videos(synthetic_cfg, num_videos: int, num_frames: int) -> list:
    """`num_videos` held-out synthetic videos (`synthetic.generate`, no cuts, no blur) of `synthetic_cfg`'s size,
    seeds from the evaluation range (`synthetic_records.EVAL_SEED_OFFSET`)."""
    from tfvr.data import synthetic
    from tfvr.data.synthetic_records import EVAL_SEED_OFFSET

    s = synthetic_cfg
    out = []
    for j in range(num_videos):
        v = synthetic.generate(s.seed + EVAL_SEED_OFFSET + j, num_frames, s.height, s.width, cuts=0, blur=False)
        out.append((v.frames, v.labels, v.instances))
    return out


def split_eval_videos(data) -> list:
    """Every clip of `data`'s evaluation split (`pipeline.build_eval_dataset`), frames back to uint8."""
    from tfvr.data import pipeline

    out = []
    for batch in pipeline.build_eval_dataset(data):
        for i in range(batch["frames"].shape[0]):
            f = np.clip(np.rint(batch["frames"][i].numpy() * 255), 0, 255).astype(np.uint8)
            out.append((f, batch["labels"][i].numpy(), batch["instances"][i].numpy()))
    return out


def eval_videos(data, sequence_root: str, num_videos: int, num_frames: int, multiple: int = 1,
                what: str = "evaluation") -> list:
    """The held-out videos (see the module docstring); `UserError` when there are none."""
    if sequence_root:
        vids = cityscapes_eval_videos(sequence_root, num_frames)
    elif num_videos > 0:
        vids = synthetic_eval_videos(data.synthetic, num_videos, num_frames)
    else:
        vids = split_eval_videos(data)
    out = []
    for f, lab, ins in vids:
        h, w = f.shape[1] // multiple * multiple, f.shape[2] // multiple * multiple
        out.append((f[:, :h, :w], lab[:, :h, :w], ins[:, :h, :w]))
    if not out:
        raise UserError(f"{what}: no held-out videos (eval_videos = 0 and the val split is empty)")
    return out
