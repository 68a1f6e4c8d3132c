"""The Task: what a model family plugs into tfvr's trainer (`tfvr.training.loop.Trainer`).

One Task subclass per family (STTN-R, EDVR, STTN-I, vid2vid, MemVSR). It holds the experiment config
(`self.config`, a `tfvr.config.Experiment` subclass) and answers the trainer's questions. It is registered by
its family's record (`tfvr/models/<family>/family.py`, `tasks={"sttn_restore": "module:STTNRestoreTask"}`; a
plug-in may use `@tfvr.registry.register_task`):

    class STTNRestoreTask(Task):
        name = "sttn_restore"                      # registry key, stored in workdir/config.json
        experiment_cls = STTNRestoreExperiment     # the dataclass its config is

        def build_models(self):                    # called inside strategy.scope(); must create the variables
            model = STTNRestore(**dataclasses.asdict(self.config.model))
            model(tf.zeros([1, 5, 64, 64, 3]))     # build once (GANs: call every sub-model once, here)
            return {"generator": model}

        def build_train_dataset(self, input_context, seed):
            cfg = dataclasses.replace(self.config.data, seed=seed)
            return pipeline.build_dataset(cfg, "train", input_context)   # per-replica batches (dicts)

        def train_step(self, batch, models, ctx):   # per replica, inside strategy.run, traced by tf.function
            with tf.GradientTape() as tape:
                out = models["generator"](batch["lq"], training=True)
                pix = losses.charbonnier(out["restored"], batch["gt"])       # mean over this replica's batch
                tv = losses.total_variation(out["flow"])
                loss = pix + self.config.model.tv_weight * tv
            ctx.minimize(tape, loss)                 # handles replicas, loss scaling, clipping, optimizers
            return {"loss": loss, "loss/pix": pix, "loss/tv": tv}      # scalars, averaged over replicas

        def build_eval_dataset(self):               # held-out batches (finite); None: no evaluation
            return pipeline.build_eval_dataset(self.config.data)

        def eval_step(self, batch, models):         # per batch, eager: {name: per-example values [N]}
            ...
        # aggregate(state, step_outputs) / reduce_aggregated(state): default concatenates and takes means;
        # evaluate(models) (the driver the Trainer calls) = build_eval_dataset -> eval_step -> aggregate -> reduce
        def image_summaries(self, models, batch):   # TensorBoard images: name -> [N, H, W, 3] in [0, 1]
            ...
        def export_module(self, models):            # a tf.Module with uint8 serving signatures
            ...

The contract, method by method, is in each method's docstring below. In short:

- Models: `build_models()` returns `{name: keras.Model}`; the trainer calls it inside `strategy.scope()` after
  setting the dtype policy (mixed precision) and the seed. Every variable must exist when it returns.
- Optimizers: `optimizer_groups(models)` splits the trainable variables into named groups, each with its own
  `OptimConfig` and an LR multiplier. Default: one group "main" with every trainable variable and
  `config.optim`. The trainer builds one Keras optimizer per group (`build_optimizer`) and `.build()`s it on the
  group's variables inside the scope (what MirroredStrategy needs for GAN steps). Examples: a GAN returns
  `[OptimizerGroup("g", gen_vars, cfg.optim), OptimizerGroup("d", disc_vars, cfg.d_optim)]`; EDVR returns
  `[OptimizerGroup("main", others, cfg.optim), OptimizerGroup("offset", offset_vars, cfg.optim,
  lr_multiplier=0.25)]`. A variable belongs to at most one group.
- The step: `train_step(batch, models, ctx)` runs once per replica on that replica's batch, inside
  `strategy.run` in a `tf.function`. Compute losses as you would on one device (mean over your batch) and call
  `ctx.minimize(tape, loss, groups=...)` once per optimizer group set (a GAN calls it twice: `groups="d"`, then
  `groups="g"`). Return a dict of scalar tensors to log; they are averaged over replicas and every key goes to
  TensorBoard under `train/`. Every returned value is also checked for NaN/Inf (a non-finite value rolls back).
- Stages: `stage(step)` returns a short string; when it changes the step is traced again, and `ctx.stage` tells
  `train_step` which stage it is in. EDVR's TSA warm-up: `return "tsa_warmup" if step < n else "main"`, then
  `ctx.minimize(tape, loss, variables=fusion_vars if ctx.stage == "tsa_warmup" else None)`.
- Guards: `guards()` lists `MetricGuard`s on logged values, e.g. EDVR's
  `MetricGuard("offset/", warn_above=50, rollback_above=100, groups=("offset",), lr_factor=0.5)`: a logged value
  whose key starts with "offset/" above 50 is logged as a warning; above 100 the trainer restores the last good
  checkpoint and multiplies the "offset" group's learning rate by 0.5. NaN/Inf in any logged value does the
  same for every group (`trainer.nan_lr_factor`), up to `trainer.max_nan_failures` times.
- Randomness inside the step: use `ctx.seed(salt)` with `tf.random.stateless_*` ops; it depends only on
  (trainer.seed, step, replica, salt), so a resumed run draws the same numbers.
- EMA: with `trainer.ema_decay > 0` the trainer keeps an exponential moving average of the trainable
  variables of the models named in `ema_models` (default: all models); evaluation (`evaluate`, eval.json) and
  export use the EMA weights, the training-time image summaries the raw ones.
- Evaluation (tf-models' `validation_step` / `aggregate_logs` / `reduce_aggregated_logs`): `build_eval_dataset()`
  gives the held-out batches (finite; None: the task has no evaluation), `eval_step(batch, models)` scores one
  batch (eagerly, one device, EMA weights) and returns {name: per-example values [N] or one value per batch},
  `aggregate(state, step_outputs)` folds them into a state (None before the first batch; default: a list of arrays
  per name), `reduce_aggregated(state)` turns the state into {metric: Python float} (default: the mean of every
  name over all its values). `evaluate(models)` drives the four and is what the Trainer (`Trainer.evaluate`) and
  every other caller use; a task whose evaluation is not a loop over batches (vid2vid's whole videos) may
  override `evaluate` alone. Restoration families build their eval_step / reduce from one
  `tfvr.training.evaluation.RestorationEvaluator` with declared baselines (input, ablation, bicubic, copy-last).
- Hooks (Keras callbacks / Orbit actions): `on_train_start(trainer)` (after the restore and config.json, before
  the initial checkpoint of a fresh run and the first step; `trainer.step` is the step training starts at),
  `on_eval_end(trainer, metrics)` (after every evaluation the Trainer runs, periodic and final),
  `on_checkpoint(trainer, path)` (after every checkpoint written). The task is always the first receiver;
  `Trainer(..., callbacks=[...])` adds objects with the same methods (`TrainerCallback`).
- Export: `export_module(models)` returns a `tf.Module` whose `tf.function`s with input signatures are the
  serving signatures (attribute `serving_default`, optionally more: see `export_signatures`);
  `export_examples(module)` returns inputs the reload check runs them on (the default derives uint8 inputs from
  the input signature, with unknown dims set to 1 for the batch and 32 elsewhere).
"""

import dataclasses
import os
from typing import Any, Callable, ClassVar, Iterable, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfvr.config import Experiment
from tfvr.training.config import OptimConfig

__all__ = ["Task", "TrainerCallback", "OptimizerGroup", "MetricGuard", "StepContext", "make_optimizer"]


@dataclasses.dataclass
class OptimizerGroup:
    """A set of trainable variables updated by one optimizer.

    Attributes:
        name: group name; `ctx.minimize(..., groups=name)`, `MetricGuard.groups`, TensorBoard `lr/<name>`.
        variables: the group's trainable variables (a variable belongs to at most one group).
        optim: optimizer + LR schedule config of the group.
        lr_multiplier: the group's initial LR is `optim.learning_rate * lr_multiplier` and its schedule runs from
            there (`eta_min` is not multiplied, as in BasicSR's per-group `lr`); the guards' scale multiplies it.
    """

    name: str
    variables: Sequence[Any]
    optim: OptimConfig
    lr_multiplier: float = 1.0


@dataclasses.dataclass
class MetricGuard:
    """Watches a logged value (any key of `train_step`'s dict that equals `key` or starts with it).

    Above `warn_above` a warning is logged (once per `warn_every` steps). Above `rollback_above` the trainer
    restores the last good checkpoint and multiplies the learning rate of `groups` (empty: every group) by
    `lr_factor`; these rollbacks count towards `max_failures` (then the run stops with an error).
    `None` disables a threshold.
    """

    key: str
    warn_above: Optional[float] = None
    rollback_above: Optional[float] = None
    groups: tuple[str, ...] = ()
    lr_factor: float = 0.5
    max_failures: int = 5
    warn_every: int = 100

    def matches(self, log_key: str) -> bool:
        return log_key == self.key or (self.key.endswith("/") and log_key.startswith(self.key))


def make_optimizer(cfg: OptimConfig, name: Optional[str] = None):
    """A Keras optimizer from an OptimConfig. Its learning rate is a variable the trainer sets every step
    (so the schedule, the group multiplier and the guards' scale apply); gradient clipping is done by the
    trainer on the all-replica gradient, not by Keras (whose clipnorm would act per replica)."""
    import keras

    kind = cfg.optimizer.lower()
    lr = float(cfg.learning_rate)
    if kind == "torch_adam":
        from tfvr.training.torch_adam import TorchAdam

        return TorchAdam(lr, beta_1=cfg.beta1, beta_2=cfg.beta2, epsilon=cfg.epsilon,
                         torch_weight_decay=cfg.weight_decay, name=name)
    if kind == "adam":
        return keras.optimizers.Adam(lr, beta_1=cfg.beta1, beta_2=cfg.beta2, epsilon=cfg.epsilon, name=name)
    if kind == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay, beta_1=cfg.beta1, beta_2=cfg.beta2,
                                      epsilon=cfg.epsilon, name=name)
    if kind == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.beta1, name=name)
    from tfvr.errors import ConfigError

    raise ConfigError(f"optim.optimizer: unknown optimizer {cfg.optimizer!r} (expected adam, torch_adam, adamw or sgd)")


class StepContext:
    """What `Task.train_step` gets besides the batch and the models (one per replica, inside the step).

    Attributes:
        step: int64 scalar tensor, number of steps completed before this one.
        stage: the `Task.stage(step)` string this step was traced for (a Python str).
        num_replicas: replicas in sync (Python int).
        replica_id: int32 scalar tensor.
        optimizers: {group name: Keras optimizer} (read-only use: e.g. `ctx.optimizers["g"].iterations`).
        precision: "float32", "mixed_bfloat16" or "mixed_float16".
    """

    def __init__(self, *, step, stage: str, groups: dict[str, OptimizerGroup], optimizers: dict[str, Any],
                 num_replicas: int, seed: int, precision: str, grad_norms: bool = True):
        self.step = step
        self.stage = stage
        self.groups = groups
        self.optimizers = optimizers
        self.num_replicas = num_replicas
        self.precision = precision
        self._seed = int(seed)
        self._grad_norms = grad_norms
        self.extra_logs: dict[str, tf.Tensor] = {}
        self._barrier: list = []
        # Set by the trainer when `trainer.freeze` removed variables: {group: number of frozen variables}.
        self.frozen_groups: dict[str, int] = {}
        ctx = tf.distribute.get_replica_context()
        self.replica_id = (tf.cast(ctx.replica_id_in_sync_group, tf.int32) if ctx is not None
                           else tf.constant(0, tf.int32))

    @property
    def frozen(self) -> bool:
        return bool(self.frozen_groups)

    # -- randomness --------------------------------------------------------------------------------------------
    def seed(self, salt: int = 0) -> tf.Tensor:
        """A [2] int64 seed for `tf.random.stateless_*` from (trainer.seed, step, replica, salt): different on
        every step and replica, identical when a resumed run repeats a step."""
        a = tf.constant(self._seed * 1_000_003 + int(salt), tf.int64)
        b = tf.cast(self.step, tf.int64) * 4096 + tf.cast(self.replica_id, tf.int64)
        return tf.stack([a, b])

    # -- optimisation ------------------------------------------------------------------------------------------
    def _resolve_groups(self, groups) -> list[str]:
        if groups is None:
            return list(self.groups)
        if isinstance(groups, str):
            groups = [groups]
        names = list(groups)
        for g in names:
            if g not in self.groups:
                raise KeyError(f"unknown optimizer group {g!r}; the task declares {list(self.groups)}")
        return names

    def minimize(self, tape: tf.GradientTape, loss: tf.Tensor, groups: str | Iterable[str] | None = None,
                 variables: Optional[Sequence[Any]] = None, loss_reduction: str = "mean") -> tf.Tensor:
        """Computes the gradients of `loss` and applies them with the optimizers of `groups`.

        Args:
            tape: the GradientTape `loss` was computed under (persistent if you call minimize more than once
                with it, e.g. a GAN step computing both losses under one tape).
            loss: scalar, this replica's loss computed as on one device.
            groups: group name(s) to update (default: every group).
            variables: optional subset of the groups' variables to update (others keep their values; their
                optimizer slots do not move) - e.g. EDVR's TSA warm-up.
            loss_reduction: "mean" if `loss` is a mean over this replica's batch (gradients are averaged over
                replicas, so N replicas with B examples each step exactly like one device with N*B), "sum" if it
                is a sum over the batch (gradients are summed: BasicSR's `reduction="sum"` losses).

        Returns:
            The global (all-replica, unscaled, pre-clipping) gradient norm if any group clips or
            `grad_norms` logging is on, else 0. Logged as `grad_norm/<group>` as well.
        """
        names = self._resolve_groups(groups)
        if loss_reduction not in ("mean", "sum"):
            raise ValueError(f"loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}")
        subset = None if variables is None else {_ref(v) for v in variables}
        per_group: list[tuple[str, list]] = []
        for name in names:
            vs = [v for v in self.groups[name].variables if subset is None or _ref(v) in subset]
            if vs:
                per_group.append((name, vs))
        if not per_group:
            if self.frozen and any(self.frozen_groups.get(n) for n in names):
                return tf.constant(0.0, tf.float32)  # everything this call would train is frozen
            raise ValueError(f"minimize(): no variables to update in groups {names}")
        all_vars = [v for _, vs in per_group for v in vs]
        weight = 1.0 / self.num_replicas if loss_reduction == "mean" else 1.0
        fp16 = self.precision == "mixed_float16"
        loss = tf.cast(loss, tf.float32)
        if fp16:
            scale0 = tf.cast(self.optimizers[per_group[0][0]].dynamic_scale, tf.float32)
            upstream = tf.constant(weight, tf.float32) * scale0
        else:
            upstream = tf.constant(weight, tf.float32)
        grads = tape.gradient(loss, all_vars, output_gradients=upstream)
        # Unconnected variables get zeros (made here: TF's UnconnectedGradients.ZERO reads `v.dtype`, a string on
        # a Keras 3 variable, and fails; e.g. vid2vid's coarse-scale output convs, unused below the finest scale).
        grads = [tf.zeros(v.shape, tf.as_dtype(v.dtype)) if g is None else g for g, v in zip(grads, all_vars)]
        grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        need_global = self._grad_norms or fp16 or any(self.groups[n].optim.clip_norm > 0 for n, _ in per_group)
        replica_ctx = tf.distribute.get_replica_context()
        if need_global and self.num_replicas > 1 and replica_ctx is not None:
            # Keras sums the gradients it is given over replicas; handing it (all-reduced sum) / R makes the
            # update identical on every replica and lets us clip / check the *global* gradient.
            # Collectives must be launched in the same order on every replica: this all-reduce waits for the
            # previous minimize() call's updates (whose all-reduce Keras launches).
            with tf.control_dependencies(self._barrier):
                grads = [tf.identity(g) for g in grads]
            grads = replica_ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            pre_divided = True
        else:
            pre_divided = False
        out_norm = tf.constant(0.0, tf.float32)
        i = 0
        for name, vs in per_group:
            g = grads[i:i + len(vs)]
            i += len(vs)
            group = self.groups[name]
            opt = self.optimizers[name]
            if fp16:
                # Rescale to this group's loss scale (groups may have different dynamic scales).
                ratio = tf.cast(opt.dynamic_scale, tf.float32) / scale0
                g = [x * ratio for x in g]
                unscale = 1.0 / tf.cast(opt.dynamic_scale, tf.float32)
            else:
                unscale = tf.constant(1.0, tf.float32)
            if need_global:
                norm = tf.linalg.global_norm(g) * unscale
                self.extra_logs[f"grad_norm/{name}"] = norm
                out_norm = norm
                if group.optim.clip_norm > 0:
                    clip = tf.constant(group.optim.clip_norm, tf.float32)
                    factor = tf.where(norm > clip, clip / tf.maximum(norm, 1e-12), 1.0)
                    g = [x * factor for x in g]
            if pre_divided:
                g = [x / self.num_replicas for x in g]
            opt.apply(g, vs)
            self._barrier = [tf.identity(opt.iterations)]
        return out_norm


def _ref(v):
    return v.ref() if hasattr(v, "ref") else id(v)


class TrainerCallback:
    """The Trainer's lifecycle hooks (no-ops here). A Task is one; `Trainer(..., callbacks=[...])` takes more.

    Called on every worker of a multi-worker run (check `trainer.is_chief` before writing files).
    """

    def on_train_start(self, trainer) -> None:
        """Training is about to run its first step in this process: the workdir is locked, checkpoints are restored
        (`trainer.step` is the step it starts at), config.json is written; a fresh run's ckpt-0 comes next. Not
        called when the run is already trained to `trainer.num_steps`."""

    def on_eval_end(self, trainer, metrics: dict[str, float]) -> None:
        """After each evaluation the Trainer runs (`Trainer.evaluate`: every `eval_every` steps and the final one;
        not again for a cached result), with its metrics."""

    def on_checkpoint(self, trainer, path: str) -> None:
        """After a checkpoint (`path`, without the `.index` suffix) is written at `trainer.step`."""


class Task(TrainerCallback):
    """Base class of a family's training task. See the module docstring for the contract."""

    #: registry key (stored in workdir/config.json as "task").
    name: ClassVar[str] = ""
    #: the Experiment dataclass this task is configured by.
    experiment_cls: ClassVar[type] = Experiment
    #: models whose trainable variables get an EMA (None: all).
    ema_models: ClassVar[Optional[tuple[str, ...]]] = None
    #: whether the train step (`train_step` and what it calls) is traced with AutoGraph, `tf.function`'s default:
    #: a Python `if` / `for` / `while` on a tensor becomes graph control flow. tfvr's own tasks write graph control
    #: flow explicitly (`tf.cond`, `tf.where`) and set False: AutoGraph's source conversion is a few seconds of
    #: every trace on a CPU (EDVR's first step 14.6 -> 11.9 s, docs/performance.md "Start-up").
    autograph: ClassVar[bool] = True

    def __init__(self, config: Experiment):
        self.config = config

    # -- models and optimizers ---------------------------------------------------------------------------------
    def build_models(self) -> dict[str, Any]:
        """Returns {name: keras.Model}, variables created. Called inside `strategy.scope()`."""
        raise NotImplementedError

    def optimizer_groups(self, models: dict[str, Any]) -> list[OptimizerGroup]:
        """Splits the trainable variables into optimizer groups (default: one group "main", `config.optim`)."""
        seen, vs = set(), []
        for m in models.values():
            for v in m.trainable_variables:
                if _ref(v) not in seen:
                    seen.add(_ref(v))
                    vs.append(v)
        return [OptimizerGroup("main", vs, self.config.optim)]

    def layer_groups(self, models: dict[str, Any]) -> dict[str, list]:
        """{name: variables} of named layer groups that `trainer.freeze` can name (default: one group per model,
        named like the model). Families add their own (EDVR: "dcn", "pcd", "fusion", ...)."""
        return {name: list(m.trainable_variables) for name, m in models.items()}

    def build_optimizer(self, group: OptimizerGroup):
        """A Keras optimizer for one group (default: `make_optimizer(group.optim)`). Called inside the scope."""
        return make_optimizer(group.optim, name=f"{group.name}_optimizer")

    # -- data --------------------------------------------------------------------------------------------------
    def build_train_dataset(self, input_context: tf.distribute.InputContext, seed: int) -> tf.data.Dataset:
        """An endless dataset of this replica's batches (dicts of tensors): batch size =
        `input_context.get_per_replica_batch_size(global_batch)`, sharded with
        `input_context.input_pipeline_id` / `num_input_pipelines` if the data is file based. `seed` changes
        on every (re)start (see the data-position policy in `tfvr.training.loop`): use it for every random
        choice the pipeline makes (clip order, crops, flips, noise)."""
        raise NotImplementedError

    def data_error(self, error: Exception) -> Exception:
        """Turns a `tf.errors.DataLossError` met while reading training data into an error naming the file.

        TensorFlow's message gives a byte offset but not the shard, so the default checks every shard of
        `config.data.source` (a `tfvr prepare` folder) with `records.verify_shard(deep=True)` and returns a
        `RecordError` for the first broken one. Tasks reading other files override this.
        """
        from tfvr.errors import RecordError

        detail = str(getattr(error, "message", error)).splitlines()[0]
        data = getattr(self.config, "data", None)
        source = getattr(data, "source", None)
        if source:
            from tfvr.data import pipeline, records

            root = pipeline.resolve_source(data)
            for split in ("train", "val", "test"):
                try:
                    shards = records.list_shards(root, split)
                except RecordError:  # no shards of this split
                    continue
                for path in shards:
                    try:
                        records.verify_shard(path, deep=True)
                    except RecordError as bad:  # names the shard and the record
                        return bad
            return RecordError(f"{root}: unreadable training data ({detail}); every shard verified, so the "
                               "error came from elsewhere in the input pipeline")
        return RecordError(f"unreadable training data: {detail}")

    def summary_batch(self) -> Optional[dict]:
        """A fixed (non-distributed) batch for `image_summaries`; default None: the trainer keeps the first
        training batch of replica 0."""
        return None

    # -- the step ----------------------------------------------------------------------------------------------
    def train_step(self, batch: dict, models: dict[str, Any], ctx: StepContext) -> dict[str, tf.Tensor]:
        """One step on one replica; call `ctx.minimize`; return scalar logs (see the module docstring)."""
        raise NotImplementedError

    def stage(self, step: int) -> str:
        """Name of the training stage at `step` (default: always "train")."""
        return "train"

    def guards(self) -> list[MetricGuard]:
        """Guards on logged values (default: none; the NaN/Inf guard is always on)."""
        return []

    # -- evaluation and summaries ------------------------------------------------------------------------------
    def build_eval_dataset(self) -> Optional[Iterable[dict]]:
        """The held-out data: a finite iterable of batches (a `tf.data.Dataset` of dicts, a list of dicts ...),
        deterministic so that every evaluation scores the same examples. Default None: no evaluation."""
        return None

    def eval_step(self, batch: dict, models: dict[str, Any]) -> dict[str, Any]:
        """Scores one held-out batch: {name: per-example values [N]} (NumPy, tensors, floats; a scalar counts as
        one value of this batch). Eager, one device, EMA weights if on."""
        raise NotImplementedError(f"{type(self).__name__} has a build_eval_dataset but no eval_step")

    def aggregate(self, state: Optional[dict], step_outputs: dict[str, Any]) -> dict:
        """Folds one `eval_step`'s outputs into the evaluation state (`state` is None at the first batch).
        Default: {name: [float64 array per batch]}."""
        state = {} if state is None else state
        for k, v in step_outputs.items():
            state.setdefault(k, []).append(np.atleast_1d(np.asarray(v, np.float64)).reshape(-1))
        return state

    def reduce_aggregated(self, state: dict) -> dict[str, float]:
        """The metrics from the final state, as Python floats. Default: the mean of every name over all values."""
        return {k: float(np.mean(np.concatenate(v))) for k, v in state.items() if v}

    def empty_eval_error(self) -> Exception:
        """What `evaluate` raises when `build_eval_dataset` gave no batch."""
        from tfvr.errors import UserError

        return UserError("evaluation data set is empty (data.synthetic.num_eval_videos / the 'val' split)")

    def evaluate(self, models: dict[str, Any]) -> dict[str, float]:
        """Validation metrics on held-out data as Python floats (e.g. {"psnr_model": 31.2, "ssim_model": 0.91}):
        `build_eval_dataset` -> `eval_step` per batch -> `aggregate` -> `reduce_aggregated`. Called
        (non-distributed, EMA weights if on) by `Trainer.evaluate` every `trainer.eval_every` steps and after
        training; the final result goes to workdir/eval.json. No eval dataset: no metrics ({})."""
        data = self.build_eval_dataset()
        if data is None:
            return {}
        state = None
        for batch in data:
            state = self.aggregate(state, self.eval_step(batch, models))
        if state is None:
            raise self.empty_eval_error()
        return self.reduce_aggregated(state)

    def image_summaries(self, models: dict[str, Any], batch: dict) -> dict[str, tf.Tensor]:
        """{name: images [N, H, W, 3] float in [0, 1] or uint8} for TensorBoard, e.g. a strip
        input | warped | output | target (`summaries.image_strip`) and `summaries.flow_to_color(flow)`.
        Called eagerly every `trainer.image_every` steps on `summary_batch()`."""
        return {}

    # -- export ------------------------------------------------------------------------------------------------
    def export_module(self, models: dict[str, Any]) -> tf.Module:
        """A tf.Module with serving `tf.function`s (with input signatures, uint8 in/out) as attributes; the
        one named `serving_default` is the default signature."""
        raise NotImplementedError(f"{type(self).__name__} does not define export_module")

    def export_signatures(self, module: tf.Module) -> dict[str, Callable]:
        """{signature name: tf.function} to export (default: every attribute of `module` that is a
        tf.function with an input signature; the one called `serving_default` keeps its name)."""
        from tfvr.export.saved_model import find_signatures

        return find_signatures(module)

    def export_examples(self, module: tf.Module) -> dict[str, dict[str, np.ndarray]]:
        """{signature name: {arg name: array}} for the reload check (default: random uint8/float inputs
        shaped like each input signature, unknown dims 1 for the batch and 32 elsewhere)."""
        from tfvr.export.saved_model import example_inputs

        return {name: example_inputs(fn) for name, fn in self.export_signatures(module).items()}
