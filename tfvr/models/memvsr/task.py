"""MemVSR's training tasks (`tfvr.training.task.Task`), one per use, registered as "memvsr_nextframe" and
"memvsr_vsr"; both are configured by `MemVSRExperiment`, whose `mode` says which one it is. `MemVSRTask`
(registered as "memvsr": `train/memvsr.py` and the config.json of every MemVSR run) is the task of `config.mode`:
`MemVSRTask(config)` returns a `MemVSRNextFrameTask` or a `MemVSRVSRTask`.

**mode = "nextframe"** (`MemVSRNextFrameTask`, seed 004's next-frame prediction): model
{"memvsr": `NextFramePredictor`}; clips of `nextframe_data.input_size` frames `frame_interval` apart (synthetic / HumanEva / Charades,
`tfvr.data.layouts.nextframe`), the target is the next frame at the same interval. Loss: the seed's L1 (or L2 /
Charbonnier) between prediction and target, plus `wsupervised` × the entropy of the memory read weights.
Three optimizer groups as the seed's `optimList`: "encoder", "decoder", "memory" with LR multipliers `lr.*`.
Evaluation on the held-out clips: PSNR / SSIM (uint8 RGB) of the prediction (`psnr_model`) and of copying the
last input frame (`psnr_copy_last`, the trivial baseline), `val_loss`. Each evaluation saves the first
`output.num_images` clips as PNGs under `<image_dir>/last/` and, when `val_loss` is the best so far, under
`<image_dir>/best_loss/` (the seed's folders: `out_image/<clip>/{input_last,pred,target}.png`,
`weight_image/<clip>/slot_<m>.png`: the memory read weight of slot m over the feature map, 0 → black, 1 → white).
`<image_dir>` = `output.image_dir`, or the Trainer's workdir (known from the `on_train_start` hook; none when
the task is evaluated outside training). TensorBoard: `last|pred|target` strips and the
per-slot weight maps (`weight_image`).

**mode = "vsr"** (`MemVSRVSRTask`): `MemEDVR` (EDVR + memory on the aligned features, with / without PCD) trained
exactly as `tfvr.models.edvr.task.EDVRTask` (Charbonnier, cosine restarts, stabilisers; its `config` is the EDVR view of the
MemVSR experiment) with one more optimizer group "memory" (`lr.memory`); `lr.encoder` scales the EDVR body.
eval.json: psnr_model / psnr_bicubic as EDVR (`tfvr.training.evaluation`, as the nextframe metrics).

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

from tfvr.errors import ConfigError, UserError
from tfvr.losses.pixel import pixel_loss as _pixel_loss
from tfvr.models.edvr.config import EDVRExperiment
from tfvr.models.edvr.task import EDVRTask
from tfvr.models.memvsr.config import MemVSRExperiment
from tfvr.training.evaluation import RestorationEvaluator, copy_last, to_uint8
from tfvr.training.task import OptimizerGroup, Task

log = logging.getLogger("tfvr.training")

__all__ = ["MemVSRTask", "MemVSRNextFrameTask", "MemVSRVSRTask", "save_png_set", "weight_maps"]


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
            cv2.imwrite(os.path.join(d, f"{name}.png"), to_uint8(img)[..., ::-1])
        if maps is not None:
            d = os.path.join(tmp, "weight_image", str(i))
            os.makedirs(d)
            for m in range(maps.shape[1]):
                cv2.imwrite(os.path.join(d, f"slot_{m}.png"), to_uint8(maps[i, m])[..., ::-1])
    old = folder + ".old"
    if os.path.exists(folder):
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)


def _check_mode(config: MemVSRExperiment, mode: str, task: str) -> None:
    config.validate()
    if config.mode != mode:
        raise ConfigError(f"mode={config.mode!r}: {task} trains mode {mode!r} (the task \"memvsr\" picks the task "
                          "of config.mode)")


class MemVSRNextFrameTask(Task):
    """The "nextframe" mode (see the module docstring)."""

    autograph = False  # the train step has no Python control flow on tensors (faster traces)

    name = "memvsr_nextframe"
    experiment_cls = MemVSRExperiment

    def __init__(self, config: MemVSRExperiment):
        _check_mode(config, "nextframe", "MemVSRNextFrameTask")
        super().__init__(config)
        n, d = config.nextframe, config.nextframe_data
        self.num_inputs = d.input_size + int(n.qs_sep)
        self._eval = None
        self._workdir = ""
        self.evaluator = RestorationEvaluator(
            model="memvsr", inputs=lambda batch, models: batch["frames"], target=lambda batch: batch["target"],
            output_key="pred", baselines=[copy_last("frames", ssim=True)], gains={"psnr_gain": "copy_last"})

    def build_models(self):
        from tfvr.models.memvsr.nextframe import NextFramePredictor

        n, d, m = self.config.nextframe, self.config.nextframe_data, self.config.memory
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
        mult = dataclasses.asdict(self.config.lr)
        return [OptimizerGroup(k, v, self.config.optim, lr_multiplier=mult[k]) for k, v in groups.items() if v]

    def build_train_dataset(self, input_context, seed):
        from tfvr.data.layouts import nextframe as datasets

        d = self.config.nextframe_data
        bs = input_context.get_per_replica_batch_size(d.batch_size) if input_context else d.batch_size
        shard = (input_context.input_pipeline_id, input_context.num_input_pipelines) if input_context else (0, 1)
        return datasets.build_train_dataset(d, self.num_inputs, bs, seed, shard)

    def train_step(self, batch, models, ctx):
        model = models["memvsr"]
        n = self.config.nextframe
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

    def on_train_start(self, trainer):
        self._workdir = trainer.workdir if trainer.is_chief else ""  # where the PNG folders go by default

    # -- evaluation (tfvr.training.evaluation: copying the last input frame is the baseline) ----------------------
    def eval_data(self):
        if self._eval is None:
            from tfvr.data.layouts import nextframe as datasets

            self._eval = datasets.eval_clips(self.config.nextframe_data, self.num_inputs, "val")
        return self._eval

    def build_eval_dataset(self):
        frames, targets = self.eval_data()
        if not len(frames):
            raise UserError("nextframe evaluation has no clips (nextframe_data.num_eval_videos / the val split)")
        bs = max(1, self.config.nextframe_data.batch_size)
        return [{"frames": frames[i:i + bs], "target": targets[i:i + bs]} for i in range(0, len(frames), bs)]

    def eval_step(self, batch, models):
        scores, out = self.evaluator.step(batch, models)
        n = len(batch["frames"])
        scores["val_loss"] = np.full(n, float(_pixel_loss(self.config.nextframe.loss, out["pred"], batch["target"])))
        k = self.config.output.num_images
        pngs = {"last": batch["frames"][:k, -1], "pred": np.asarray(out["pred"][:k], np.float32),
                "target": batch["target"][:k]}
        if "weights" in out:
            pngs["weights"] = np.asarray(out["weights"][:k], np.float32)
        return {**scores, "pngs": pngs}

    def aggregate(self, state, step_outputs):
        step_outputs = dict(step_outputs)
        pngs = step_outputs.pop("pngs")
        state = super().aggregate(state, step_outputs)
        state.setdefault("pngs", []).append(pngs)  # the first output.num_images clips of each batch
        return state

    def reduce_aggregated(self, state):
        state = dict(state)
        pngs = state.pop("pngs")
        res = self.evaluator.reduce(state)
        k = self.config.output.num_images
        kept = {key: np.concatenate([p[key] for p in pngs])[:k] for key in pngs[0]}
        self._save_images(res["val_loss"], kept["last"], kept["pred"], kept["target"], kept.get("weights"))
        return res

    def _save_images(self, val_loss, last, pred, targets, weights):
        root = self.config.output.image_dir or self._workdir
        if not root or self.config.output.num_images <= 0:
            return
        save_png_set(os.path.join(root, "last"), last, pred, targets, weights)
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
            save_png_set(folder, last, pred, targets, weights)
            with open(best_file, "w") as f:
                json.dump({"val_loss": val_loss}, f)

    def image_summaries(self, models, batch):
        from tfvr.training import summaries

        model = models["memvsr"]
        frames = batch["frames"][:4]
        out = self.evaluator.predict(model)(frames)
        pred = tf.clip_by_value(tf.cast(out["pred"], tf.float32), 0.0, 1.0)
        res = {"last|pred|target": summaries.image_strip(frames[:, -1], pred, batch["target"][:4])}
        if "weights" in out:
            h, w = int(frames.shape[2]), int(frames.shape[3])
            res["weight_image"] = _strip(weight_maps(out["weights"], h, w))  # [N, M, H, W, 3] -> one strip
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
        d = self.config.nextframe_data
        return {"serving_default": {"frames": rng.integers(0, 256, (1, self.num_inputs, d.height + 3, d.width - 5, 3),
                                                           dtype=np.uint8)}}


def _init_from_workdir(path: str, model) -> None:
    """The seed's `load`: reads the newest checkpoint of the run in `path` into `model` (the variables that match,
    raw weights)."""
    from tfvr.training.checkpoints import read_models

    log.info("init_from: read %s", read_models(path, {"memvsr": model}))


class MemVSRVSRTask(EDVRTask):
    """The "vsr" mode: EDVRTask with MemEDVR as the model and a "memory" optimizer group. `self.config` is the EDVR
    view of the experiment (`EDVRExperiment` of its edvr / data / loss / stabilizers / optim / trainer / runtime);
    the whole MemVSR experiment is `self.memvsr_config`."""

    name = "memvsr_vsr"
    experiment_cls = MemVSRExperiment

    def __init__(self, config: MemVSRExperiment):
        _check_mode(config, "vsr", "MemVSRVSRTask")
        self.memvsr_config = config
        super().__init__(EDVRExperiment(name=config.name, model=config.edvr, data=config.data, loss=config.loss,
                                        stabilizers=config.stabilizers, optim=config.optim, trainer=config.trainer,
                                        runtime=config.runtime))

    def build_models(self):
        from tfvr.models.memvsr.vsr import MemEDVR

        o = self.memvsr_config
        mem = None
        if o.memory.enabled:
            mem = {k: v for k, v in o.memory.module_kwargs(o.edvr.num_frame, o.edvr.num_feat).items()
                   if k not in ("input_size", "channels")}
        model = MemEDVR(with_pcd=o.vsr.with_pcd, memory=mem, name="edvr", **dataclasses.asdict(o.edvr))
        return {"edvr": model.build_for_weights()}

    def optimizer_groups(self, models):
        model = models["edvr"]
        memory = model.memory_variables()
        dcn = self.dcn_variables(model) if model.with_pcd else []
        taken = {id(v) for v in memory + dcn}
        main = [v for v in model.trainable_variables if id(v) not in taken]
        lr = self.memvsr_config.lr
        groups = [OptimizerGroup("main", main, self.config.optim, lr_multiplier=lr.encoder)]
        if dcn:
            groups.append(OptimizerGroup("dcn", dcn, self.config.optim,
                                         lr_multiplier=self.config.stabilizers.dcn_lr_mul))
        if memory:
            groups.append(OptimizerGroup("memory", memory, self.config.optim, lr_multiplier=lr.memory))
        return groups

    def guards(self):
        return super().guards() if self.memvsr_config.vsr.with_pcd else []

    def image_summaries(self, models, batch):
        res = super().image_summaries(models, batch)
        model = models["edvr"]
        if model.memory is not None:
            lq = batch["lq"][:4]
            _, weights = model.call_with_weights(lq)
            res["weight_image"] = _strip(weight_maps(weights, int(lq.shape[2]), int(lq.shape[3])))
        return res


def _strip(maps):
    from tfvr.training import summaries

    return summaries.image_strip(*tf.unstack(maps, axis=1))


_BY_MODE = {"nextframe": MemVSRNextFrameTask, "vsr": MemVSRVSRTask}


class MemVSRTask(Task):
    """Task "memvsr" (train/memvsr.py; config.json of MemVSR runs): `MemVSRTask(config)` is the task of
    `config.mode`, a `MemVSRNextFrameTask` or a `MemVSRVSRTask` (each also registered under its own name)."""

    name = "memvsr"
    experiment_cls = MemVSRExperiment

    def __new__(cls, config: MemVSRExperiment):
        config.validate()  # names a bad mode (or any other field) first
        return _BY_MODE[config.mode](config)
