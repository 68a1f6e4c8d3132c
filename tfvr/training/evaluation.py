"""The one held-out evaluator of the restoration families (STTN-R, EDVR, EDVR stage 2, MemVSR in both modes).

A family declares what its model is scored against, and its Task's `eval_step` / `reduce_aggregated` (the
evaluation contract of `tfvr.training.task`) call this evaluator:

    self.evaluator = RestorationEvaluator(
        model="edvr", target=lambda batch: batch["gt"][:, c],
        baselines=[upscaled("bicubic", c, scale=4, ssim=True), upscaled("bilinear", c, scale=4, method="bilinear")],
        gains={"psnr_gain": "bicubic"})

    def eval_step(self, batch, models):
        scores, _ = self.evaluator.step(batch, models)       # per-example psnr_model, ssim_model, psnr_bicubic, ...
        return scores
    def reduce_aggregated(self, state):
        return self.evaluator.reduce(state)                   # means, then the declared gains

Every image is rounded to uint8 (`to_uint8`: clip to [0, 1], x 255, round) and scored by `tfvr.metrics.psnr` /
`ssim` (RGB, BasicSR's conventions), one value per example; the metrics are the means over all examples:
`psnr_model`, `ssim_model`, `psnr_<baseline>` (+ `ssim_<baseline>` where the baseline asks for it),
`<gain> = psnr_model - psnr_<baseline>` for each declared gain, and `num_windows` on request.

Baselines (a family declares those that apply):
- `input_frame(center)`: the degraded input frame itself (same-size restoration: denoise / deblur);
- `upscaled(name, center, scale, method)`: the LR frame up-sampled (MATLAB bicubic `tfvr.data.degrade.imresize`,
  the usual SR baseline, or bilinear);
- `copy_last()`: the last input frame (next-frame prediction's trivial predictor);
- `other_model(name, model)`: another model's output (STTN-R's single-frame ablation, EDVR stage 1), skipped when
  the models have no such entry.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

__all__ = ["RestorationEvaluator", "RestorationEvaluation", "Baseline", "Predictor", "to_uint8", "upscale", "input_frame", "upscaled",
           "copy_last", "other_model"]


def to_uint8(x) -> np.ndarray:
    """float in [0, 1] (any shape, NumPy or tensor) -> uint8: clip, x 255, round half to even (np.round)."""
    return np.clip(np.round(np.asarray(x, np.float32) * 255.0), 0, 255).astype(np.uint8)


def upscale(lr_frames, scale: int, method: str = "bicubic") -> np.ndarray:
    """[N, h, w, 3] float in [0, 1] -> [N, sh, sw, 3]: MATLAB bicubic (`tfvr.data.degrade.imresize`) or bilinear."""
    lr_frames = np.asarray(lr_frames, np.float32)
    if scale == 1:
        return lr_frames
    if method == "bilinear":
        n, h, w, _ = lr_frames.shape
        return tf.image.resize(lr_frames, [h * scale, w * scale], method="bilinear").numpy()
    if method != "bicubic":
        raise ValueError(f"upscale: method must be 'bicubic' or 'bilinear', got {method!r}")
    from tfvr.data.degrade import imresize

    return np.stack([imresize(np.asarray(f, np.float64), scale) for f in lr_frames]).astype(np.float32)


class Predictor:
    """`model(x, training=False)` in one `tf.function` per model (reduce_retracing: one trace per input rank)."""

    def __init__(self):
        self._fns: dict[int, tuple[Any, Callable]] = {}

    def __call__(self, model) -> Callable:
        entry = self._fns.get(id(model))
        if entry is None or entry[0] is not model:
            entry = (model, tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                                         autograph=False))
            self._fns[id(model)] = entry
        return entry[1]


@dataclasses.dataclass(frozen=True)
class Baseline:
    """What the model is compared with: `image(batch, models, predict)` -> float [N, H, W, 3] in [0, 1] (the
    target's size), or None when it does not apply to these models. Scored as `psnr_<name>` (+ `ssim_<name>`)."""

    name: str
    image: Callable[[dict, Mapping[str, Any], Predictor], Optional[Any]]
    ssim: bool = False


def _output(out, key: Optional[str]):
    return out[key] if key is not None else out


def input_frame(center: int, key: str = "lq", name: str = "input", ssim: bool = False) -> Baseline:
    """The input frame `center` of `batch[key]` ([N, T, H, W, 3]) as it is: the do-nothing restoration."""
    return Baseline(name, lambda batch, models, predict: batch[key][:, center], ssim)


def upscaled(name: str, center: int, scale: int, method: str = "bicubic", key: str = "lq",
             ssim: bool = False) -> Baseline:
    """The LR frame `center` up-sampled x`scale` (`upscale`): "bicubic" (MATLAB) or "bilinear"."""
    return Baseline(name, lambda batch, models, predict: upscale(np.asarray(batch[key][:, center]), scale, method),
                    ssim)


def copy_last(key: str = "frames", name: str = "copy_last", ssim: bool = False) -> Baseline:
    """The last input frame of `batch[key]` ([N, T, H, W, 3]): next-frame prediction's trivial predictor."""
    return Baseline(name, lambda batch, models, predict: batch[key][:, -1], ssim)


def other_model(name: str, model: str, inputs: Optional[Callable[[dict], Any]] = None,
                output_key: Optional[str] = None, ssim: bool = False) -> Baseline:
    """`models[model]`'s prediction on `inputs(batch)` (default `batch["lq"]`): an ablation or an earlier stage.
    Does not apply when `models` has no `model`."""

    def image(batch, models, predict):
        if model not in models:
            return None
        x = batch["lq"] if inputs is None else inputs(batch)
        return _output(predict(models[model])(x), output_key)

    return Baseline(name, image, ssim)


class RestorationEvaluator:
    """Scores `models[model]` and the declared baselines against the target, per example (module docstring).

    Args:
        model: key of the scored model in the models dict.
        target: batch -> ground truth float [N, H, W, 3] in [0, 1].
        inputs: (batch, models) -> the model's input (default `batch["lq"]`).
        output_key: key of the prediction when the model returns a dict (None: it returns the image).
        baselines: the `Baseline`s that apply to this family.
        gains: {metric name: baseline name}: `psnr_model - psnr_<baseline>` (skipped if that baseline is absent).
        count: name of a metric holding the number of scored examples (None: none).
    """

    def __init__(self, *, model: str, target: Callable[[dict], Any],
                 inputs: Optional[Callable[[dict, Mapping[str, Any]], Any]] = None, output_key: Optional[str] = None,
                 baselines: Sequence[Baseline] = (), gains: Optional[Mapping[str, str]] = None,
                 count: Optional[str] = None):
        names = [b.name for b in baselines]
        if len(set(names)) != len(names) or "model" in names:
            raise ValueError(f"baseline names must be unique and not 'model': {names}")
        self.model = model
        self.target = target
        self.inputs = inputs
        self.output_key = output_key
        self.baselines = tuple(baselines)
        self.gains = dict(gains or {})
        self.count = count
        self.predict = Predictor()

    def step(self, batch: dict, models: Mapping[str, Any]) -> tuple[dict[str, list], Any]:
        """One batch: ({"psnr_model": [N], "ssim_model": [N], "psnr_<baseline>": [N], ...}, the model's raw output)."""
        from tfvr.metrics import psnr, ssim

        x = batch["lq"] if self.inputs is None else self.inputs(batch, models)
        out = self.predict(models[self.model])(x)
        gt = to_uint8(self.target(batch))
        images = {"model": (to_uint8(_output(out, self.output_key)), True)}
        for b in self.baselines:
            img = b.image(batch, models, self.predict)
            if img is not None:
                images[b.name] = (to_uint8(img), b.ssim)
        scores: dict[str, list] = {}
        for name, (img, with_ssim) in images.items():
            if img.shape != gt.shape:
                raise ValueError(f"evaluation: the {name} image is {img.shape}, the target {gt.shape}")
            scores[f"psnr_{name}"] = [psnr(img[i], gt[i]) for i in range(gt.shape[0])]
            if with_ssim:
                scores[f"ssim_{name}"] = [ssim(img[i], gt[i]) for i in range(gt.shape[0])]
        return scores, out

    def reduce(self, state: Mapping[str, Sequence]) -> dict[str, float]:
        """{metric: mean over every example} from an aggregated state ({name: [arrays per batch]}), plus the gains
        and the example count."""
        res = {k: float(np.mean(np.concatenate([np.atleast_1d(np.asarray(a, np.float64)) for a in v])))
               for k, v in state.items() if len(v)}
        for gain, base in self.gains.items():
            if f"psnr_{base}" in res and "psnr_model" in res:
                res[gain] = res["psnr_model"] - res[f"psnr_{base}"]
        if self.count and state.get("psnr_model") is not None:
            res[self.count] = float(sum(np.size(a) for a in state["psnr_model"]))
        return res


class RestorationEvaluation:
    """Task mixin (before `Task` in the bases): the evaluation contract answered by `self.evaluator` (a
    `RestorationEvaluator` the task builds) on the held-out clips `pipeline.build_eval_dataset(self.config.data)`.
    Override `eval_step` to add values from the model's output (`self.evaluator.step` returns it)."""

    evaluator: RestorationEvaluator

    def build_eval_dataset(self):
        from tfvr.data import pipeline

        return pipeline.build_eval_dataset(self.config.data)

    def eval_step(self, batch, models):
        return self.evaluator.step(batch, models)[0]

    def reduce_aggregated(self, state):
        return self.evaluator.reduce(state)
