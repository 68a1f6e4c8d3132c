"""MemVSR's training task (`tfvr.training.task.Task`), registered as "memvsr"; `config.mode` picks the use.

**mode = "nextframe"** (seed 004's next-frame prediction): model {"memvsr": `NextFramePredictor`}; clips of
`nextframe_data.input_size` frames `frame_interval` apart (synthetic / HumanEva / Charades,
`tfvr.data.layouts.nextframe`), the target is the next frame at the same interval. Loss: the seed's L1 (or L2 /
Charbonnier) between prediction and target, plus `wsupervised` × the entropy of the memory read weights.
Three optimizer groups as the seed's `optimList`: "encoder", "decoder", "memory" with LR multipliers `lr.*`.
Evaluation on the held-out clips: PSNR / SSIM (uint8 RGB) of the prediction (`psnr_model`) and of copying the
last input frame (`psnr_copy_last`, the trivial baseline), `val_loss`. Each evaluation saves the first
`output.num_images` clips as PNGs under `<image_dir>/last/` and, when `val_loss` is the best so far, under
`<image_dir>/best_loss/` (the seed's folders: `out_image/<clip>/{input_last,pred,target}.png`,
`weight_image/<clip>/slot_<m>.png`: the memory read weight of slot m over the feature map, 0 → black, 1 → white).
`<image_dir>` = `output.image_dir`, or the run's `--workdir`. TensorBoard: `last|pred|target` strips and the
per-slot weight maps (`weight_image`).

**mode = "vsr"**: `MemEDVR` (EDVR + memory on the aligned features, with / without PCD) trained exactly as
`tfvr.models.edvr.task.EDVRTask` (Charbonnier, cosine restarts, stabilisers) with one more optimizer group
"memory" (`lr.memory`); `lr.encoder` scales the EDVR body. eval.json: psnr_model / psnr_bicubic as EDVR.

Export: `tfvr.export.restoration.RestorationModule` in both modes (uint8 frames in, uint8 frame out; for
nextframe the T = input_size (+1 with qs_sep) input frames give the predicted next frame).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from tfvr.errors import UserError
from tfvr.losses.pixel import pixel_loss as _pixel_loss
from tfvr.models.memvsr.config import MemVSRExperiment
from tfvr.training.task import OptimizerGroup, Task

log = logging.getLogger("tfvr.training")

__all__ = ["MemVSRTask", "save_png_set", "weight_maps"]


def _to_uint8(x) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, np.float32) * 255.0), 0, 255).astype(np.uint8)


def weight_maps(weights, height: int, width: int) -> tf.Tensor:
    """Read weights [N, h, w, M] → per-slot grey images [N, M, height, width, 3] in [0, 1] (nearest up-sampling,
    so each feature cell stays a visible block)."""
    w = tf.cast(weights, tf.float32)
    n, m = tf.shape(w)[0], tf.shape(w)[3]
    per_slot = tf.reshape(tf.transpose(w, [0, 3, 1, 2]), tf.stack([n * m, tf.shape(w)[1], tf.shape(w)[2], 1]))
    up = tf.image.resize(per_slot, [height, width], method="nearest")
    return tf.reshape(tf.repeat(up, 3, axis=-1), tf.stack([n, m, height, width, 3]))


def save_png_set(folder: str, last, pred, target, weights=None) -> None:
    """Writes `folder/out_image/<i>/{input_last,pred,target}.png` and `folder/weight_image/<i>/slot_<m>.png`
    (float [N, H, W, 3] in [0, 1]; weights [N, h, w, M]) atomically: built in a temporary folder, then renamed
    over the old one."""
    import cv2

    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-" + os.path.basename(folder), dir=parent)
    h, w = np.asarray(pred).shape[1:3]
    maps = None if weights is None else weight_maps(weights, h, w).numpy()
    for i in range(np.asarray(pred).shape[0]):
        d = os.path.join(tmp, "out_image", str(i))
        os.makedirs(d)
        for name, img in (("input_last", last[i]), ("pred", pred[i]), ("target", target[i])):
            cv2.imwrite(os.path.join(d, f"{name}.png"), _to_uint8(img)[..., ::-1])
        if maps is not None:
            d = os.path.join(tmp, "weight_image", str(i))
            os.makedirs(d)
            for m in range(maps.shape[1]):
                cv2.imwrite(os.path.join(d, f"slot_{m}.png"), _to_uint8(maps[i, m])[..., ::-1])
    old = folder + ".old"
    if os.path.exists(folder):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def _default_image_dir() -> str:
    try:
        from absl import flags

        if flags.FLAGS.is_parsed() and "workdir" in flags.FLAGS:
            return flags.FLAGS.workdir or ""
    except Exception:  # absl not initialised (tests, tfvr export): no image saving unless configured
        pass
    return ""


class _NextFrame:
    """The "nextframe" mode (see the module docstring)."""

    def __init__(self, task: "MemVSRTask"):
        self.task = task
        self.cfg = task.config
        n, d = self.cfg.nextframe, self.cfg.nextframe_data
        self.num_inputs = d.input_size + int(n.qs_sep)
        self._eval = None
        self._predict = {}

    def build_models(self):
        from tfvr.models.memvsr.nextframe import NextFramePredictor

        n, d, m = self.cfg.nextframe, self.cfg.nextframe_data, self.cfg.memory
        mem = None
        if m.enabled:
            mem = {k: v for k, v in m.module_kwargs(d.input_size, n.channels[-1]).items()
                   if k not in ("input_size", "channels")}
        kwargs = dict(test_type=n.test_type, encoder=n.encoder, channels=n.channels, skip=n.skip,
                      res_blocks=n.res_blocks, input_size=d.input_size, qs_sep=n.qs_sep, memory=mem)
        model = NextFramePredictor(**kwargs, name="memvsr").build_for_weights()
        if n.init_from and not getattr(self.task, "restoring", False):
            _init_from_workdir(n.init_from, model)
        return {"memvsr": model}

    def optimizer_groups(self, models):
        groups = models["memvsr"].variable_groups()
        mult = dataclasses.asdict(self.cfg.lr)
        return [OptimizerGroup(k, v, self.cfg.optim, lr_multiplier=mult[k]) for k, v in groups.items() if v]

    def build_train_dataset(self, input_context, seed):
        from tfvr.data.layouts import nextframe as datasets

        d = self.cfg.nextframe_data
        bs = input_context.get_per_replica_batch_size(d.batch_size) if input_context else d.batch_size
        shard = (input_context.input_pipeline_id, input_context.num_input_pipelines) if input_context else (0, 1)
        return datasets.build_train_dataset(d, self.num_inputs, bs, seed, shard)

    def train_step(self, batch, models, ctx):
        model = models["memvsr"]
        n = self.cfg.nextframe
        with tf.GradientTape() as tape:
            out = model(batch["frames"], training=True)
            pix = _pixel_loss(n.loss, out["pred"], batch["target"])
            loss = pix
            logs = {"loss/pix": pix}
            if "weights" in out and n.wsupervised > 0:
                w = tf.cast(out["weights"], tf.float32)
                ent = -tf.reduce_mean(tf.reduce_sum(w * tf.math.log(w + 1e-8), axis=-1))
                loss = loss + n.wsupervised * ent
                logs["loss/weight_entropy"] = ent
        ctx.minimize(tape, loss)
        logs["loss"] = loss
        return logs

    def _predictor(self, model):
        if id(model) not in self._predict:
            self._predict[id(model)] = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return self._predict[id(model)]

    def eval_data(self):
        if self._eval is None:
            from tfvr.data.layouts import nextframe as datasets

            self._eval = datasets.eval_clips(self.cfg.nextframe_data, self.num_inputs, "val")
        return self._eval

    def evaluate(self, models):
        from tfvr.metrics import psnr, ssim

        model = models["memvsr"]
        frames, targets = self.eval_data()
        if not len(frames):
            raise UserError("nextframe evaluation has no clips (nextframe_data.num_eval_videos / the val split)")
        preds, weights, losses = [], [], []
        bs = max(1, self.cfg.nextframe_data.batch_size)
        for i in range(0, len(frames), bs):
            out = self._predictor(model)(tf.constant(frames[i:i + bs]))
            preds.append(np.asarray(out["pred"], np.float32))
            if "weights" in out:
                weights.append(np.asarray(out["weights"], np.float32))
            losses.append(float(_pixel_loss(self.cfg.nextframe.loss, out["pred"], targets[i:i + bs]))
                          * len(frames[i:i + bs]))
        pred = np.concatenate(preds)
        last = frames[:, -1]
        p8, t8, l8 = _to_uint8(pred), _to_uint8(targets), _to_uint8(last)
        res = {"psnr_model": float(np.mean([psnr(p8[i], t8[i]) for i in range(len(p8))])),
               "psnr_copy_last": float(np.mean([psnr(l8[i], t8[i]) for i in range(len(p8))])),
               "ssim_model": float(np.mean([ssim(p8[i], t8[i]) for i in range(len(p8))])),
               "ssim_copy_last": float(np.mean([ssim(l8[i], t8[i]) for i in range(len(p8))])),
               "val_loss": float(np.sum(losses) / len(frames))}
        res["psnr_gain"] = res["psnr_model"] - res["psnr_copy_last"]
        self._save_images(res["val_loss"], last, pred, targets, np.concatenate(weights) if weights else None)
        return res

    def _save_images(self, val_loss, last, pred, targets, weights):
        root = self.cfg.output.image_dir or _default_image_dir()
        k = self.cfg.output.num_images
        if not root or k <= 0:
            return
        sel = slice(0, k)
        w = None if weights is None else weights[sel]
        save_png_set(os.path.join(root, "last"), last[sel], pred[sel], targets[sel], w)
        best_file = os.path.join(root, "best_loss", "best.json")
        best = None
        if os.path.exists(best_file):
            try:
                with open(best_file) as f:
                    best = float(json.load(f)["val_loss"])
            except (OSError, ValueError, KeyError):
                best = None
        if best is None or val_loss < best:
            folder = os.path.join(root, "best_loss")
            save_png_set(folder, last[sel], pred[sel], targets[sel], w)
            with open(best_file, "w") as f:
                json.dump({"val_loss": val_loss}, f)

    def image_summaries(self, models, batch):
        from tfvr.training import summaries

        model = models["memvsr"]
        frames = batch["frames"][:4]
        out = self._predictor(model)(frames)
        pred = tf.clip_by_value(tf.cast(out["pred"], tf.float32), 0.0, 1.0)
        res = {"last|pred|target": summaries.image_strip(frames[:, -1], pred, batch["target"][:4])}
        if "weights" in out:
            h, w = int(frames.shape[2]), int(frames.shape[3])
            maps = weight_maps(out["weights"], h, w)  # [N, M, H, W, 3]
            res["weight_image"] = summaries.image_strip(*tf.unstack(maps, axis=1))
        return res

    def summary_batch(self):
        frames, targets = self.eval_data()
        return {"frames": tf.constant(frames[:4]), "target": tf.constant(targets[:4])}

    def export_module(self, models):
        from tfvr.export.restoration import RestorationModule

        model = models["memvsr"]
        return RestorationModule(model, num_frames=self.num_inputs, scale=1, multiple=2 ** model.levels,
                                 family="memvsr_nextframe", model_config=model.get_config(), output_key="pred",
                                 name="memvsr_serving")

    def export_signatures(self, module):
        return module.signatures()

    def export_examples(self, module):
        rng = np.random.default_rng(0)
        d = self.cfg.nextframe_data
        return {"serving_default": {"frames": rng.integers(0, 256, (1, self.num_inputs, d.height + 3, d.width - 5, 3),
                                                           dtype=np.uint8)}}


def _init_from_workdir(path: str, model) -> None:
    """The seed's `load`: reads the newest checkpoint of the run in `path` into `model` (the variables that match,
    raw weights)."""
    from tfvr.training.checkpoints import read_models

    log.info("init_from: read %s", read_models(path, {"memvsr": model}))


def _vsr_impl(config: MemVSRExperiment):
    from tfvr.models.edvr.config import EDVRExperiment
    from tfvr.models.edvr.task import EDVRTask
    from tfvr.models.memvsr.vsr import MemEDVR

    class _MemEDVRTask(EDVRTask):
        """EDVRTask with MemEDVR as the model and a "memory" optimizer group."""

        def __init__(self, outer: MemVSRExperiment):
            self.outer = outer
            exp = EDVRExperiment(name=outer.name, model=outer.edvr, data=outer.data, loss=outer.loss,
                                 stabilizers=outer.stabilizers, optim=outer.optim, trainer=outer.trainer,
                                 runtime=outer.runtime)
            super().__init__(exp)

        def build_models(self):
            o = self.outer
            mem = None
            if o.memory.enabled:
                mem = {k: v for k, v in o.memory.module_kwargs(o.edvr.num_frame, o.edvr.num_feat).items()
                       if k not in ("input_size", "channels")}
            kwargs = {**dataclasses.asdict(o.edvr), "with_pcd": o.vsr.with_pcd, "memory": mem}
            model = MemEDVR(**kwargs, name="edvr").build_for_weights()
            return {"edvr": model}

        def optimizer_groups(self, models):
            model = models["edvr"]
            memory = model.memory_variables()
            dcn = self.dcn_variables(model) if model.with_pcd else []
            taken = {id(v) for v in memory + dcn}
            main = [v for v in model.trainable_variables if id(v) not in taken]
            groups = [OptimizerGroup("main", main, self.config.optim, lr_multiplier=self.outer.lr.encoder)]
            if dcn:
                groups.append(OptimizerGroup("dcn", dcn, self.config.optim,
                                             lr_multiplier=self.config.stabilizers.dcn_lr_mul))
            if memory:
                groups.append(OptimizerGroup("memory", memory, self.config.optim,
                                             lr_multiplier=self.outer.lr.memory))
            return groups

        def guards(self):
            return super().guards() if self.outer.vsr.with_pcd else []

        def image_summaries(self, models, batch):
            res = super().image_summaries(models, batch)
            model = models["edvr"]
            if model.memory is not None:
                lq = batch["lq"][:4]
                _, weights = model.call_with_weights(lq)
                maps = weight_maps(weights, int(lq.shape[2]), int(lq.shape[3]))
                res["weight_image"] = _strip(maps)
            return res

    return _MemEDVRTask(config)


def _strip(maps):
    from tfvr.training import summaries

    return summaries.image_strip(*tf.unstack(maps, axis=1))


class MemVSRTask(Task):
    """Memory-augmented video restoration (seed 004): next-frame prediction or EDVR+memory VSR (`config.mode`)."""

    name = "memvsr"
    experiment_cls = MemVSRExperiment

    def __init__(self, config: MemVSRExperiment):
        super().__init__(config)
        config.validate()
        self.impl = _NextFrame(self) if config.mode == "nextframe" else _vsr_impl(config)

    def build_models(self):
        return self.impl.build_models()

    def optimizer_groups(self, models):
        return self.impl.optimizer_groups(models)

    def build_train_dataset(self, input_context, seed):
        return self.impl.build_train_dataset(input_context, seed)

    def summary_batch(self):
        return self.impl.summary_batch()

    def train_step(self, batch, models, ctx):
        return self.impl.train_step(batch, models, ctx)

    def stage(self, step):
        return self.impl.stage(step) if hasattr(self.impl, "stage") else "train"

    def guards(self):
        return self.impl.guards() if hasattr(self.impl, "guards") else []

    def evaluate(self, models):
        return self.impl.evaluate(models)

    def image_summaries(self, models, batch):
        return self.impl.image_summaries(models, batch)

    def export_module(self, models):
        return self.impl.export_module(models)

    def export_signatures(self, module):
        if hasattr(self.impl, "export_signatures"):
            return self.impl.export_signatures(module)
        return super().export_signatures(module)

    def export_examples(self, module):
        return self.impl.export_examples(module)
