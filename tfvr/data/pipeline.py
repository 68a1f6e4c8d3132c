"""The tf.data input pipeline: prepared TFRecord clips → degraded, cropped, augmented, batched samples.

    ds = build_dataset(cfg.data, "train", input_context)    # endless, shuffled, augmented, per-replica batches
    ds = build_eval_dataset(cfg.data)                       # held-out clips: deterministic, no augmentation

Batches are dicts (float32 images in [0, 1], T = cfg.num_frames = 2N+1, the restored frame is the centre T // 2):

    denoise / deblur / sr   {"lq": [B, T, h, w, 3], "gt": [B, T, H, W, 3]}      h, w = H / scale for sr, else H, W
    inpaint                 {"frames": [B, T, H, W, 3], "masks": [B, T, H, W, 1]}   (mask 1 = hole)
    label2video             {"frames": [B, T, H, W, 3], "labels": int32 [B, T, H, W], "instances": int32 [B, T, H, W]}

Per clip (training): a random temporal window of T consecutive frames (or, with probability
`random_frames_prob`, T sorted random frames of the clip), decode only those frames, a random crop of
`crop_size` (square "n" or rectangular "HxW", e.g. 360x640; for SR on the LR pixel grid, so LR and HR stay
aligned), flips / rot90 / temporal reverse (each with probability 1/2, identical for every tensor of the sample;
rot90 only for square crops, as it swaps height and width), then the task's degradation made on the fly:

    denoise      gt + N(0, sigma / 255) (sigma fixed, or uniform in [noise_sigma, noise_sigma_max]), clipped
    deblur       the records' paired blurry frames (GoPro, synthetic), else the mean of `blur_frames` consecutive
                 frames around each frame (the window reads blur_frames - 1 extra frames)
    sr           the records' LR frames when they are LR of this scale (REDS, Vid4, Vimeo-90K), else MATLAB
                 bicubic down-sampling with antialiasing (`tfvr.data.degrade.tf_imresize`)
    inpaint      STTN-I's moving polygon masks (`tfvr.data.masks`)

With `degradations` set (e.g. ("blur", "down", "noise")), that chain of steps (`tfvr.data.degrade_chain`, settings
in `cfg.degrade`) replaces the task's single degradation: one kernel / noise level per clip, every frame alike.
`lq_kind` other than "auto" selects a paired input the records must hold ("blur", "blur_comp", "lr", "blur_lr":
REDS's train_blur, train_blur_comp, train_sharp_bicubic, train_blur_bicubic).

On-the-fly degraded inputs are rounded to 8-bit levels when `quantize` (what a model served uint8 video sees).

Randomness is stateless: every random choice of a clip is a function of (seed, input pipeline, position of the
clip in the stream), so parallel decoding does not change the samples, and `deterministic=True` (fixed order,
ordered parallel maps) gives the same batches on every run. With an `input_context`, shards are split between
input pipelines by file (`Dataset.shard(num_input_pipelines, input_pipeline_id)` on the file list; by record when
there are fewer files than pipelines) and batches are per replica.

The evaluation dataset reads `cfg.eval.split` in file order, takes `eval.windows_per_clip` evenly spaced windows of
each of the first `eval.num_clips` clips, centre-crops to `eval.crop_size` (0: whole frames, cut to a multiple of
`scale` for SR) and degrades with the fixed seed `eval.seed`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfvr.data import records
from tfvr.data.config import DataConfig
from tfvr.errors import UserError

log = logging.getLogger(__name__)
AUTOTUNE = tf.data.AUTOTUNE

# Sub-seed slots of one clip's stateless seed (tf.random.experimental.stateless_split).
_S_WINDOW, _S_RANDFRAMES, _S_CROP, _S_AUG, _S_DEGRADE, _S_SIGMA, _S_MASK, _S_PICK = range(8)
_NUM_SUBSEEDS = 8


# ---------------------------------------------------------------------------------------------------------------
# Transforms (each works eagerly and inside Dataset.map; tensors are [T, H, W, C])


def subseeds(seed) -> tf.Tensor:
    """[8, 2] int64 stateless sub-seeds of one clip seed (shape [2])."""
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), _NUM_SUBSEEDS)


def window_indices(num_clip_frames, length: int, seed=None, *, window=None, num_windows: int = 1,
                   random_frames_prob: float = 0.0):
    """int32 [length] frame indices into a clip of `num_clip_frames` frames.

    Training (`seed` given, `window` None): a random start, T consecutive frames; with probability
    `random_frames_prob` (and a clip long enough) `length` sorted random distinct frames instead. Evaluation
    (`window` = k in 0..num_windows-1): the k-th of `num_windows` evenly spaced windows (k=0 of 1: the centre one).
    Clips shorter than `length` repeat their last frame.
    """
    n = tf.cast(num_clip_frames, tf.int32)
    span = tf.maximum(n - length, 0)
    if window is None:
        s = subseeds(seed)
        start = tf.random.stateless_uniform([], s[_S_WINDOW], 0, span + 1, dtype=tf.int32)
        idx = start + tf.range(length, dtype=tf.int32)
        if random_frames_prob > 0:
            use_random = tf.logical_and(
                tf.random.stateless_uniform([], s[_S_PICK]) < random_frames_prob, n >= length)

            def random_sorted():
                order = tf.argsort(tf.random.stateless_uniform(tf.reshape(n, [1]), s[_S_RANDFRAMES]))
                return tf.sort(tf.cast(order[:length], tf.int32))

            idx = tf.cond(use_random, random_sorted, lambda: idx)
    else:
        if num_windows > 1:
            start = tf.cast(tf.round(tf.cast(window, tf.float32) * tf.cast(span, tf.float32) / (num_windows - 1)),
                            tf.int32)
        else:
            start = span // 2
        idx = start + tf.range(length, dtype=tf.int32)
    return tf.minimum(idx, n - 1)


def _hw(crop_size) -> tuple[int, int]:
    """(height, width) of a crop size given as an int (square), a (h, w) pair or "HxW" text."""
    from tfvr.data.config import parse_size

    return parse_size(crop_size)


def crop_offsets(height, width, crop_size, scale: int = 1, seed=None):
    """(y, x) of a `crop_size` crop (int: square; (h, w) or "HxW": rectangular) on the `scale` pixel grid:
    random with `seed`, else centred."""
    ch, cw = _hw(crop_size)
    lr_h, lr_w = tf.cast(height, tf.int32) // scale, tf.cast(width, tf.int32) // scale
    max_y, max_x = tf.maximum(lr_h - ch // scale, 0), tf.maximum(lr_w - cw // scale, 0)
    if seed is None:
        y, x = max_y // 2, max_x // 2
    else:
        s = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        y = tf.random.stateless_uniform([], s[0], 0, max_y + 1, dtype=tf.int32)
        x = tf.random.stateless_uniform([], s[1], 0, max_x + 1, dtype=tf.int32)
    return y * scale, x * scale


def paired_crop(hr: dict, lr: dict, y, x, crop_size, scale: int = 1) -> tuple[dict, dict]:
    """Crops every HR tensor [T, H, W, ...] at (y, x) to crop_size (int: square; (h, w) / "HxW") and every LR
    tensor at (y, x) / scale to crop_size / scale: the LR crop covers exactly the HR crop."""
    ch, cw = _hw(crop_size)
    hr = {k: tf.convert_to_tensor(v) for k, v in hr.items()}
    lr = {k: tf.convert_to_tensor(v) for k, v in lr.items()}
    hr_out = {k: v[:, y:y + ch, x:x + cw] for k, v in hr.items()}
    lh, lw = ch // scale, cw // scale
    lr_out = {k: v[:, y // scale:y // scale + lh, x // scale:x // scale + lw] for k, v in lr.items()}
    return hr_out, lr_out


def paired_random_crop(hr: dict, lr: dict, crop_size, scale: int, seed) -> tuple[dict, dict]:
    """A random `crop_size` HR crop (on the LR grid) and the matching LR crop; see `paired_crop`."""
    first = next(iter(hr.values()))
    shape = tf.shape(first)
    y, x = crop_offsets(shape[1], shape[2], crop_size, scale, seed)
    return paired_crop(hr, lr, y, x, crop_size, scale)


def _spatial(x, fn):
    """Applies an image op written for [N, H, W, C] to [T, H, W] or [T, H, W, C]."""
    if x.shape.rank == 3:
        return fn(x[..., None])[..., 0]
    return fn(x)


def augment(tensors: dict, seed, *, hflip: bool = True, vflip: bool = True, rot90: bool = True,
            temporal_reverse: bool = True) -> dict:
    """The same random horizontal / vertical flip, 90° rotation (k = 0..3) and time reversal for every tensor
    ([T, H, W] or [T, H, W, C]) of one sample. Each switch off leaves that transform out.

    With flips and rot90 all on, the 8 symmetries of the square are drawn uniformly as (transpose?, hflip?, vflip?):
    the same distribution as flip × flip × rot90, with one cheap branch instead of a 4-way rotation switch."""
    s = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    coin = [tf.random.stateless_uniform([], s[i]) < 0.5 for i in range(4)]
    dihedral = hflip and vflip and rot90
    k = tf.random.stateless_uniform([], s[2], 0, 4, dtype=tf.int32)
    out = {}
    for name, x in tensors.items():
        x = tf.convert_to_tensor(x)
        if dihedral:
            perm = [0, 2, 1] + list(range(3, x.shape.rank))
            x = tf.cond(coin[2], lambda x=x: tf.transpose(x, perm), lambda x=x: x)
        if hflip:
            x = tf.cond(coin[0], lambda x=x: tf.reverse(x, [2]), lambda x=x: x)
        if vflip:
            x = tf.cond(coin[1], lambda x=x: tf.reverse(x, [1]), lambda x=x: x)
        if rot90 and not dihedral:
            x = _spatial(x, lambda v: tf.image.rot90(v, k))
        if temporal_reverse:
            x = tf.cond(coin[3], lambda x=x: tf.reverse(x, [0]), lambda x=x: x)
        out[name] = x
    return out


def quantize(x):
    """Rounds [0, 1] floats to 8-bit levels."""
    return tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0) / 255.0


def add_noise(x, sigma, seed, clip: bool = True):
    """x + N(0, (sigma / 255)^2) (`degrade.tf_add_gaussian_noise`), sigma on the 0-255 scale; clipped to [0, 1]
    when `clip`."""
    from tfvr.data import degrade

    y = degrade.tf_add_gaussian_noise(tf.convert_to_tensor(x), sigma, seed)
    return tf.clip_by_value(y, 0.0, 1.0) if clip else y


def temporal_blur(frames, k: int):
    """[L, H, W, C] → [L - k + 1, H, W, C]: frame t is the mean of frames t .. t + k - 1
    (`degrade.tf_temporal_blur`)."""
    from tfvr.data import degrade

    frames = tf.convert_to_tensor(frames)
    return frames if k <= 1 else degrade.tf_temporal_blur(frames, k)


def downscale(frames, scale: int):
    """[T, H, W, C] → [T, H / scale, W / scale, C], MATLAB bicubic with antialiasing.

    `degrade.tf_imresize` (matrix products) when H and W are known at trace time, as after a crop; otherwise (whole
    frames of varying size, evaluation only) the NumPy `degrade.imresize` through `tf.numpy_function`.
    """
    from tfvr.data import degrade

    frames = tf.convert_to_tensor(frames)
    if frames.shape[-3] is not None and frames.shape[-2] is not None:
        return degrade.tf_imresize(frames, 1.0 / scale, antialiasing=True)

    def resize(x):
        return np.stack([degrade.imresize(f, 1.0 / scale) for f in x]).astype(np.float32)

    out = tf.numpy_function(resize, [frames], tf.float32, stateful=False)
    shape = tf.shape(frames)
    return tf.reshape(out, tf.stack([shape[0], -(-shape[1] // scale), -(-shape[2] // scale), shape[3]]))


def polygon_masks(num_frames: int, height, width, seed, stationary_prob: float = 0.5):
    """float32 [T, H, W, 1] STTN-I moving polygon masks (1 = hole) from `tfvr.data.masks`, seeded statelessly."""
    from tfvr.data import masks

    int_seed = tf.random.stateless_uniform([], tf.cast(seed, tf.int64), 0, 2**31 - 1, dtype=tf.int64)

    def make(h, w, s):
        return masks.moving_polygon_masks(num_frames, int(h), int(w), seed=int(s),
                                          stationary_prob=stationary_prob).astype("uint8")

    m = tf.numpy_function(make, [tf.cast(height, tf.int64), tf.cast(width, tf.int64), int_seed], tf.uint8,
                          stateful=False)
    m = tf.reshape(m, tf.stack([num_frames, tf.cast(height, tf.int32), tf.cast(width, tf.int32), 1]))
    return tf.cast(m > 0, tf.float32)


# ---------------------------------------------------------------------------------------------------------------
# One clip → one sample


def _split_info(manifest: dict, split: str, records_dir) -> dict:
    info = manifest.get("splits", {}).get(split)
    if info is None:
        raise UserError(f"{records_dir}: the manifest has no {split!r} split (it has: "
                        f"{', '.join(manifest.get('splits', {})) or 'none'})")
    if info.get("clips", 0) == 0:
        raise UserError(f"{records_dir}: the {split!r} split holds no clips")
    return info


class _ClipMapper:
    """The per-clip function of one dataset (training or evaluation)."""

    def __init__(self, cfg: DataConfig, info: dict, training: bool, records_dir, split: str):
        self.cfg = cfg
        self.training = training
        self.task = cfg.task
        self.T = cfg.num_frames
        lq_kind, lq_scale = info.get("lq_kind", ""), int(info.get("lq_scale", 1) or 1)
        self.chain = tuple(cfg.degradations)
        if cfg.lq_kind == "auto":
            self.paired = not self.chain and (
                (self.task == "deblur" and lq_kind == "blur")
                or (self.task == "sr" and lq_kind == "lr" and lq_scale == cfg.scale))
        else:  # an explicit input kind (REDS: blur, blur_comp, lr, blur_lr) must be in the records
            if lq_kind != cfg.lq_kind:
                raise UserError(f"{records_dir}: data.lq_kind={cfg.lq_kind!r}, but the {split!r} clips hold "
                                f"{('lq_kind=' + repr(lq_kind)) if lq_kind else 'no paired input frames'} (REDS: "
                                "`tfvr prepare --layout reds --reds-input ...` picks which input is stored)")
            if lq_kind in ("lr", "blur_lr") and lq_scale != cfg.scale:
                raise UserError(f"{records_dir}: the {split!r} LR frames are x{lq_scale}, data.scale={cfg.scale}")
            self.paired = True
        if self.task == "label2video" and not info.get("labels"):
            raise UserError(f"{records_dir}: task=label2video needs label maps, but the {split!r} clips have none "
                            "(only the synthetic data and label-video layouts provide them)")
        self.scale = cfg.scale if self.task == "sr" else 1
        if self.chain:
            from tfvr.data.degrade_chain import extra_frames

            self.extra = extra_frames(self.chain, cfg.degrade)
        else:
            self.extra = cfg.blur_frames - 1 if (self.task == "deblur" and not self.paired) else 0
        self.length = self.T + self.extra
        ch, cw = cfg.crop_hw if training else cfg.eval.crop_hw
        crop = (ch, cw) if ch and cw else None
        self.crop = crop
        min_h, min_w = int(info.get("min_height", 0)), int(info.get("min_width", 0))
        if crop and (min_h < ch or min_w < cw):
            which = "crop_size" if training else "eval.crop_size"
            from tfvr.data.config import format_size

            raise UserError(f"{records_dir}: data.{which}={format_size(crop)} is larger than the smallest {split!r} "
                            f"frames ({min_h}x{min_w}, height x width)")
        if self.task == "sr" and self.paired and crop and (min_h // cfg.scale < ch // cfg.scale
                                                           or min_w // cfg.scale < cw // cfg.scale):
            raise UserError(f"{records_dir}: LR frames too small for crop {ch}x{cw} at scale {cfg.scale}")
        # Frame size known when the graph is built: the crop, or whole frames of a split whose frames all have one
        # size (then `tf_imresize` and batching need no dynamic shapes).
        sc = self.scale
        if crop:
            self.static_hw = crop
        elif min_h == int(info.get("max_height", -1)) and min_w == int(info.get("max_width", -1)) and min_h:
            self.static_hw = (min_h // sc * sc, min_w // sc * sc)
        else:
            self.static_hw = None
        if int(info.get("min_clip_len", self.length)) < self.length:
            log.warning("%s: some %s clips have %s frames, fewer than the %s a sample needs; their last frame is "
                        "repeated", records_dir, split, info.get("min_clip_len"), self.length)

    def __call__(self, index, serialized, seed_base, window=None, num_windows=1):
        cfg = self.cfg
        seed = tf.stack([tf.cast(seed_base, tf.int64), tf.cast(index, tf.int64)])
        s = subseeds(seed)
        ex = records.parse_example(serialized)
        n = tf.shape(ex["frames"])[0]
        if self.training:
            idx = window_indices(n, self.length, seed,
                                 random_frames_prob=cfg.random_frames_prob if self.extra == 0 else 0.0)
        else:
            idx = window_indices(n, self.length, window=window, num_windows=num_windows)
        h, w = ex["height"], ex["width"]
        # Only the window's frames are decoded; images stay uint8 (labels uint16) until after crop + augment.
        L = self.length
        hr = {"gt": records.decode_frames(tf.gather(ex["frames"], idx), h, w, num=L)}
        lr = {}
        if self.paired:
            lq = records.decode_frames(tf.gather(ex["lq"], idx), ex["lq_height"], ex["lq_width"], num=L)
            (lr if self.task == "sr" else hr)["lq"] = lq
        if self.task == "label2video":
            for key in ("labels", "instances"):
                hr[key] = records.decode_frames(tf.gather(ex[key], idx), h, w, 1, tf.uint16, num=L)[..., 0]

        # Crop (HR pixels; SR: on the LR grid so the paired LR crop matches).
        if self.training:
            y, x = crop_offsets(h, w, self.crop, self.scale, s[_S_CROP])
            hr, lr = paired_crop(hr, lr, y, x, self.crop, self.scale)
        elif self.crop:
            y, x = crop_offsets(h, w, self.crop, self.scale)
            hr, lr = paired_crop(hr, lr, y, x, self.crop, self.scale)
        elif self.scale > 1:  # whole frames, cut to a multiple of the scale
            hh = tf.cast(h, tf.int32) // self.scale * self.scale
            ww = tf.cast(w, tf.int32) // self.scale * self.scale
            hr = {k: v[:, :hh, :ww] for k, v in hr.items()}
            lr = {k: v[:, :hh // self.scale, :ww // self.scale] for k, v in lr.items()}

        if self.static_hw is not None:
            hh, ww = self.static_hw
            hr = {k: tf.ensure_shape(v, [self.length, hh, ww, *v.shape[3:]]) for k, v in hr.items()}
            lr = {k: tf.ensure_shape(v, [self.length, hh // self.scale, ww // self.scale, *v.shape[3:]])
                  for k, v in lr.items()}

        if self.training:
            both = {**{f"hr/{k}": v for k, v in hr.items()}, **{f"lr/{k}": v for k, v in lr.items()}}
            # A 90° rotation / transpose swaps H and W: only for square crops (a rectangular crop keeps flips).
            square = self.static_hw is not None and self.static_hw[0] == self.static_hw[1]
            both = augment(both, s[_S_AUG], hflip=cfg.hflip, vflip=cfg.vflip, rot90=cfg.rot90 and square,
                           temporal_reverse=cfg.temporal_reverse)
            hr = {k[3:]: v for k, v in both.items() if k.startswith("hr/")}
            lr = {k[3:]: v for k, v in both.items() if k.startswith("lr/")}

        to_float = {tf.uint8: lambda v: tf.image.convert_image_dtype(v, tf.float32),
                    tf.uint16: lambda v: tf.cast(v, tf.int32)}
        hr = {k: to_float[v.dtype](v) for k, v in hr.items()}
        lr = {k: to_float[v.dtype](v) for k, v in lr.items()}
        out = self._degrade(hr, lr, s)
        return self._set_shapes(out)

    def _degrade(self, hr: dict, lr: dict, s) -> dict:
        cfg = self.cfg
        gt = hr["gt"]
        task = self.task
        if self.chain:
            from tfvr.data.degrade_chain import apply_chain

            lq = apply_chain(gt, self.chain, cfg.degrade, cfg.scale, s[_S_DEGRADE])
            c = self.extra // 2
            gt = gt[c:c + self.T]
            lq = quantize(lq) if cfg.quantize else tf.clip_by_value(lq, 0.0, 1.0)
            return {"lq": lq, "gt": gt}
        if task == "denoise":
            if cfg.noise_sigma <= 0 and cfg.noise_sigma_max <= 0:  # sigma 0: no noise to draw (costly on CPU)
                return {"lq": gt, "gt": gt}
            sigma = tf.constant(cfg.noise_sigma, tf.float32)
            if cfg.noise_sigma_max > cfg.noise_sigma:
                sigma = tf.random.stateless_uniform([], s[_S_SIGMA], cfg.noise_sigma, cfg.noise_sigma_max)
            lq = add_noise(gt, sigma, s[_S_DEGRADE], clip=cfg.clip_noise)
            return {"lq": quantize(lq) if cfg.quantize else lq, "gt": gt}
        if task == "deblur":
            if self.paired:
                return {"lq": hr["lq"], "gt": gt}
            lq = temporal_blur(gt, cfg.blur_frames)
            c = self.extra // 2
            gt = gt[c:c + self.T]
            return {"lq": quantize(lq) if cfg.quantize else lq, "gt": gt}
        if task == "sr":
            if self.paired:
                return {"lq": lr["lq"], "gt": gt}
            lq = downscale(gt, cfg.scale)
            return {"lq": quantize(lq) if cfg.quantize else tf.clip_by_value(lq, 0.0, 1.0), "gt": gt}
        if task == "inpaint":
            shape = tf.shape(gt)
            masks = polygon_masks(self.T, shape[1], shape[2], s[_S_MASK], cfg.mask_stationary_prob)
            return {"frames": gt, "masks": masks}
        # label2video
        return {"frames": gt, "labels": hr["labels"], "instances": hr["instances"]}

    def _set_shapes(self, out: dict) -> dict:
        hw = list(self.static_hw) if self.static_hw else [None, None]
        lhw = [d // self.scale for d in self.static_hw] if self.static_hw else [None, None]
        shapes = {"lq": [self.T, *lhw, 3], "gt": [self.T, *hw, 3], "frames": [self.T, *hw, 3],
                  "masks": [self.T, *hw, 1], "labels": [self.T, *hw], "instances": [self.T, *hw]}
        return {k: tf.ensure_shape(v, shapes[k]) for k, v in out.items()}


# ---------------------------------------------------------------------------------------------------------------
# Datasets


def resolve_source(cfg: DataConfig) -> str:
    """The prepared records folder of `cfg.source` (generating and caching the synthetic set when "synthetic")."""
    if cfg.source == "synthetic":
        from tfvr.data import synthetic_records

        return str(synthetic_records.ensure(cfg))
    path = Path(os.path.expanduser(cfg.source))
    if not path.is_dir():
        raise UserError(f"data.source={cfg.source!r}: no such directory (use 'synthetic' or a folder written by "
                        "`tfvr prepare`)")
    return str(path)


def _options(deterministic: bool) -> tf.data.Options:
    opts = tf.data.Options()
    opts.deterministic = bool(deterministic)
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return opts


def _plain(fn):
    """`fn` traced as it is written, without AutoGraph's source conversion (what tf.data applies to a map function by
    default): the mappers use graph ops for every data-dependent choice, and the conversion cost seconds per
    pipeline (docs/performance.md, "Start-up")."""
    return tf.autograph.experimental.do_not_convert(fn)


def build_dataset(cfg: DataConfig, split: str = "train", input_context: tf.distribute.InputContext | None = None,
                  *, training: bool | None = None, records_dir: str | os.PathLike | None = None) -> tf.data.Dataset:
    """The dataset of `split` (see the module docstring). `training` defaults to split == "train": endless,
    shuffled, randomly cropped and augmented; otherwise the deterministic evaluation set (`cfg.eval`).
    `records_dir` overrides `cfg.source`. Raises `UserError` / `RecordError` naming the folder or shard."""
    from tfvr.data.prepare import load_manifest

    cfg.validate()
    training = (split == "train") if training is None else training
    root = str(records_dir) if records_dir is not None else resolve_source(cfg)
    manifest = load_manifest(root)
    info = _split_info(manifest, split, root)
    files = records.list_shards(root, split)
    for f in files:
        records.verify_shard(f)
    mapper = _ClipMapper(cfg, info, training, root, split)

    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    by_file = num_pipelines > 1 and len(files) >= num_pipelines
    if num_pipelines > 1 and not by_file:
        log.warning("%s: %d %s shards for %d input pipelines: sharding by record (every pipeline reads every file)",
                    root, len(files), split, num_pipelines)
    seed = int(cfg.seed if training else cfg.eval.seed) % (1 << 62)
    # Different pipelines draw different crops / noise for their clips.
    seed_base = (seed * 1_000_003 + pipeline_id) % (1 << 62)
    parallel = AUTOTUNE if cfg.num_parallel_calls < 0 else max(1, cfg.num_parallel_calls)

    ds = tf.data.Dataset.from_tensor_slices(files)
    if by_file:
        ds = ds.shard(num_pipelines, pipeline_id)
    n_files = -(-len(files) // num_pipelines) if by_file else len(files)
    if training:
        ds = ds.shuffle(max(n_files, 1), seed=seed, reshuffle_each_iteration=True).repeat()
        ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(n_files, 8)), block_length=1,
                           num_parallel_calls=parallel, deterministic=cfg.deterministic)
        if num_pipelines > 1 and not by_file:
            ds = ds.shard(num_pipelines, pipeline_id)
        if cfg.shuffle_buffer > 1:
            ds = ds.shuffle(cfg.shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=True)
        ds = ds.enumerate()
        ds = ds.map(_plain(lambda i, s: mapper(i, s, seed_base)), num_parallel_calls=parallel,
                    deterministic=cfg.deterministic)
        batch = input_context.get_per_replica_batch_size(cfg.batch_size) if input_context else cfg.batch_size
        ds = ds.batch(batch, drop_remainder=True)
    else:
        ds = tf.data.TFRecordDataset(ds)  # file order: the same clips every time
        if num_pipelines > 1 and not by_file:
            ds = ds.shard(num_pipelines, pipeline_id)
        if cfg.eval.num_clips > 0:
            ds = ds.take(cfg.eval.num_clips)
        w = cfg.eval.windows_per_clip
        ds = ds.flat_map(_plain(lambda s: tf.data.Dataset.from_tensors(s).repeat(w).enumerate()))
        ds = ds.enumerate()
        ds = ds.map(_plain(lambda i, ks: mapper(i, ks[1], seed_base, window=ks[0], num_windows=w)),
                    num_parallel_calls=parallel, deterministic=True)
        batch = (input_context.get_per_replica_batch_size(cfg.eval.batch_size) if input_context
                 else cfg.eval.batch_size)
        ds = ds.batch(batch, drop_remainder=False)
    ds = ds.prefetch(AUTOTUNE)
    return ds.with_options(_options(cfg.deterministic or not training))


def build_eval_dataset(cfg: DataConfig, input_context: tf.distribute.InputContext | None = None, *,
                       records_dir: str | os.PathLike | None = None) -> tf.data.Dataset:
    """The held-out evaluation dataset (`cfg.eval`): deterministic, no augmentation, fixed degradation seed."""
    return build_dataset(cfg, cfg.eval.split, input_context, training=False, records_dir=records_dir)
