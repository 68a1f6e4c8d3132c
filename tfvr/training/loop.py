"""tfvr's distributed training loop: `Trainer(task, workdir).train()`.

A custom loop (`strategy.run` + GradientTape via `Task.train_step` + Keras optimizers), not `model.fit`, so the
same code runs on one device, MirroredStrategy and MultiWorkerMirroredStrategy (where Keras 3 `fit` fails).

What it does, in order:
1. Strategy from `config.runtime` (`tfvr.training.strategy`), dtype policy (mixed precision), seed.
2. Inside `strategy.scope()`: `task.build_models()`, one optimizer per `task.optimizer_groups(...)` (each
   `.build()` on its variables, wrapped in a Keras `LossScaleOptimizer` under mixed_float16), the EMA.
3. Restores the newest readable checkpoint in `<workdir>/checkpoints` (step counter, models, optimizer slots
   and iterations, EMA, guard state), runs the `on_train_start` hooks (the task, then `callbacks`; see
   `tfvr.training.task.TrainerCallback`), and for a fresh run writes `ckpt-0` so a rollback always has a target.
   `on_eval_end` follows every evaluation (`Trainer.evaluate`), `on_checkpoint` every checkpoint.
4. Steps until `trainer.num_steps`: each step sets every group's learning rate on the host
   (`schedules.learning_rate(group.optim, step, group.lr_multiplier) * guard scale`), runs one step in a
   `tf.function` (traced once per `task.stage(step)`), averages the logged scalars over replicas, runs the
   guards (NaN/Inf and metric guards: restore the last good checkpoint and lower the LR, `guards.py`), then at
   intervals writes TensorBoard scalars / images / eval metrics, a line to `<workdir>/metrics.jsonl`, and a
   checkpoint.
5. SIGTERM / SIGINT: the step in flight finishes, a checkpoint is written, `TrainingInterrupted` is raised.

**Data-position policy (resume).** The data stream is not checkpointed. Each time the loop (re)starts the
stream - a fresh run, a restart after a kill, a rollback - it calls `task.build_train_dataset(input_context,
seed)` with `seed = data_seed(trainer.seed, step, rollbacks)`, a function of the step the stream starts at. A
resumed run therefore neither replays the batches it already trained on (that would require `skip`, which
decodes them all again) nor depends on how far a killed process had prefetched, and the same restart at the same
step always sees the same batches. Uninterrupted and resumed runs see different (equally distributed) random
batches after the resume point. Steps: the step counter is saved with the weights, so a run killed at step k
restarts from its last checkpoint c (k - c < `checkpoint_every`) and runs exactly `num_steps - c` more steps; no
step number is trained twice except those between c and k, which were lost with the process.

Randomness inside the step uses `ctx.seed(...)` (stateless, a function of seed, step, replica), so it is also
reproducible on resume.

Output in the workdir: `checkpoints/`, `tb/` (TensorBoard: `train/<log key>`, `lr/<group>`,
`eval/<metric>` (every `trainer.eval_every` steps and once more from `log_eval` after training), `images/<name>`,
and the HParams plugin's session: the flattened experiment config (`hparams_dict`) written when training starts,
so the final `eval/*` values of several runs in one log folder compare in TensorBoard's HParams table), `metrics.jsonl` (one JSON object per logged step: `step`, logs, `lr/<group>`,
`steps_per_sec`).

**Safety (issue 12).** `train()` first validates the whole config (`tfvr.config.validate_experiment`), then takes
the workdir lock (`tfvr.training.workdir_lock`, chief only; a second trainer stops with one line naming the
holder), and only then writes. When checkpoints exist but none is readable it stops with
`UnreadableCheckpoints` listing them, unless `trainer.restart_from_scratch=true`, which moves `checkpoints/` and
`metrics.jsonl` into `<workdir>/unreadable-<time>/` (never deleted) and starts at step 0. On resume at step s the
records of steps > s (logged by the process that died after its last checkpoint, and about to be trained again)
are dropped from `metrics.jsonl` (rewritten atomically), so no step is logged twice (TensorBoard drops the
superseded events of those steps itself: its out-of-order purge). A run that starts at step 0 next to an old
`metrics.jsonl` (its checkpoints were removed) renames that file to `metrics.before-<time>.jsonl` first.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfvr.training import schedules
from tfvr.training.checkpoints import (Checkpointer, UnreadableCheckpoints, checkpoint_objects, checkpoint_step,
                                        ema_variables)
from tfvr.training.ema import EMA
from tfvr.training.guards import GuardMonitor, GuardState, TrainingDiverged
from tfvr.training.strategy import create_strategy, is_chief, worker_index
from tfvr.training.summaries import write_images, write_scalars
from tfvr.training.task import StepContext, Task, _ref
from tfvr.training.workdir_lock import WorkdirLock

log = logging.getLogger("tfvr.training")

__all__ = ["Trainer", "TrainResult", "TrainingInterrupted", "TrainingDiverged", "data_seed", "hparams_dict"]


class TrainingInterrupted(Exception):
    """Raised after SIGTERM/SIGINT once the checkpoint is written; `signum` tells which signal."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"interrupted by signal {signum} at step {step}; checkpoint written, rerun to resume")
        self.signum = signum
        self.step = step


@dataclasses.dataclass
class TrainResult:
    step: int                 # steps completed in total
    start_step: int           # step this process started (resumed) at
    seconds: float            # wall time of this process's training
    logs: dict                # the last step's logs
    rollbacks: int            # guard rollbacks in this process


def data_seed(seed: int, step: int, rollbacks: int = 0) -> int:
    """Seed of the data stream started at `step` (see the module docstring)."""
    x = (int(seed) * 1_000_003 + int(step) * 7_919 + int(rollbacks) * 104_729) % (2**31 - 1)
    return int(x)


def _set_precision(precision: str) -> None:
    import keras

    if precision not in ("float32", "mixed_bfloat16", "mixed_float16"):
        from tfvr.errors import ConfigError

        raise ConfigError(f"runtime.precision: {precision!r} is not float32, mixed_bfloat16 or mixed_float16")
    keras.config.set_dtype_policy(precision)


# Grappler passes that rewrite float arithmetic in an order that depends on memory addresses: with them on, one
# vid2vid step repeats bit for bit in one process but not in another (214-306 of 530 variables differ after one step);
# with both off, two processes agree bit for bit (tests/training/test_determinism_processes.py; docs/performance.md,
# "Session 10"). Their cost was not measurable on vid2vid's demo step.
ADDRESS_DEPENDENT_PASSES = ("arithmetic_optimization", "constant_folding")


def use_determinism() -> None:
    """`runtime.deterministic`: TensorFlow's op determinism, and the grappler passes ADDRESS_DEPENDENT_PASSES off
    (process-wide, for every graph traced afterwards)."""
    tf.config.experimental.enable_op_determinism()
    tf.config.optimizer.set_experimental_options({name: False for name in ADDRESS_DEPENDENT_PASSES})


class Trainer:
    """Trains `task` in `workdir`.

    Args:
        task: the family's Task (its `config` is the Experiment).
        workdir: run folder (checkpoints, TensorBoard, metrics.jsonl).
        strategy: a tf.distribute strategy; default from `task.config.runtime`.
        callbacks: more receivers of the lifecycle hooks (`tfvr.training.task.TrainerCallback`: on_train_start,
            on_eval_end, on_checkpoint), called after the task, in order.
    """

    def __init__(self, task: Task, workdir: str, strategy: Optional[tf.distribute.Strategy] = None,
                 callbacks: Sequence[Any] = ()):
        self.task = task
        self.callbacks = [task, *callbacks]
        self.config = task.config
        self.tcfg = task.config.trainer
        self.workdir = os.path.abspath(workdir)
        self.strategy = strategy if strategy is not None else create_strategy(task.config.runtime)
        self.is_chief = is_chief(self.strategy)
        self.precision = task.config.runtime.precision
        self.step = 0
        self.models: dict[str, Any] = {}
        self.optimizers: dict[str, Any] = {}
        self.groups: dict = {}
        self.frozen_groups: dict[str, int] = {}
        self.ema: Optional[EMA] = None
        self._built = False
        self._step_fns: dict = {}
        self._writer = None
        self._stop_signal: Optional[int] = None
        self._rollbacks_here = 0
        self._eval_cache: Optional[tuple[int, dict]] = None  # (step, metrics) while the weights are unchanged
        self._lock: Optional[WorkdirLock] = None

    # ------------------------------------------------------------------------------------------------------------
    # building
    def build(self) -> "Trainer":
        if self._built:
            return self
        for g in self._group_configs():
            schedules.validate(g)
        if self.config.runtime.deterministic:  # before any op of the run is built (process-wide, like the policy)
            use_determinism()
        _set_precision(self.precision)
        import keras

        keras.utils.set_random_seed(int(self.tcfg.seed))
        with self.strategy.scope():
            self.models = dict(self.task.build_models())
            if not self.models:
                raise ValueError(f"{type(self.task).__name__}.build_models() returned no models")
            if self.precision != "float32":
                # the serving graph's float32 rules in training too (tfvr.export.precision: flow / offset heads,
                # final residual adds, float32 frames into the outer model); the global policy alone computed
                # STTN-R's flow head and its `reference + residual` in bfloat16 (-2.05 dB after 50 demo steps)
                from tfvr.export.precision import apply_precision

                apply_precision(list(self.models.values()), self.precision.removeprefix("mixed_"))
            groups = self.task.optimizer_groups(self.models)
            if self.tcfg.freeze:  # trainer.freeze: drop the frozen variables from every optimizer group
                from tfvr.training.freeze import frozen_variables

                frozen, report = frozen_variables(self.task, self.models, self.tcfg.freeze)
                self.frozen_groups = {}
                kept_groups = []
                for g in groups:
                    kept = [v for v in g.variables if _ref(v) not in frozen]
                    if len(kept) < len(g.variables):
                        self.frozen_groups[g.name] = len(g.variables) - len(kept)
                    kept_groups.append(dataclasses.replace(g, variables=kept))
                groups = kept_groups
                log.info("trainer.freeze: %s", ", ".join(f"{k} ({n} variables)" for k, n in report.items()))
            seen = {}
            for g in groups:
                if g.name in self.groups:
                    raise ValueError(f"optimizer group {g.name!r} declared twice")
                for v in g.variables:
                    if _ref(v) in seen:
                        raise ValueError(f"variable {v.path if hasattr(v, 'path') else v.name} is in optimizer "
                                         f"groups {seen[_ref(v)]!r} and {g.name!r}")
                    seen[_ref(v)] = g.name
                self.groups[g.name] = g
            for g in groups:
                opt = self.task.build_optimizer(g)
                if self.precision == "mixed_float16":
                    opt = keras.optimizers.LossScaleOptimizer(
                        opt, initial_scale=self.config.runtime.initial_loss_scale, name=f"{g.name}_loss_scale")
                opt.build(list(g.variables))
                self.optimizers[g.name] = opt
            if self.tcfg.ema_decay > 0:
                self.ema = EMA(ema_variables(self.task, self.models), self.tcfg.ema_decay)
        self.guard_state = GuardState(list(self.groups), len(self.task.guards()))
        self.monitor = GuardMonitor(self.guard_state, self.task.guards(), self.tcfg.nan_lr_factor,
                                    self.tcfg.max_nan_failures)
        self._step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        objects = checkpoint_objects(self.models, step=self._step_var, guard=self.guard_state,
                                     optimizers=self.optimizers, ema=self.ema)
        self.checkpointer = Checkpointer(os.path.join(self.workdir, "checkpoints"), objects,
                                         max_to_keep=self.tcfg.keep_checkpoints, is_chief=self.is_chief,
                                         worker_index=worker_index(self.strategy))
        self._built = True
        return self

    def _group_configs(self):
        # the OptimConfigs to validate before building (the groups themselves need the models)
        return [self.config.optim]

    @property
    def num_replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    # ------------------------------------------------------------------------------------------------------------
    # checkpoints
    def lock(self) -> Optional[WorkdirLock]:
        """Takes the workdir lock for the life of this process (chief only; see `workdir_lock`). Idempotent."""
        if self.is_chief and self._lock is None:
            self._lock = WorkdirLock(self.workdir).acquire()
        return self._lock

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def restore(self, for_training: bool = False) -> Optional[int]:
        """Restores the newest readable checkpoint; returns its step (None when there is none).

        Checkpoints that exist but none readable: `UnreadableCheckpoints`. Only `for_training` (the training
        loop, which holds the workdir lock) changes the workdir: unreadable newer checkpoints are moved aside, and
        with `restart_from_scratch` all of them (with metrics.jsonl), returning None. Readers such as
        `tfvr export` leave the run as it is."""
        self.build()
        try:
            path = self.checkpointer.restore_latest(set_aside=for_training)
        except UnreadableCheckpoints as e:
            if not (for_training and getattr(self.tcfg, "restart_from_scratch", False)):
                raise
            if self.is_chief:
                self._move_run_aside(e)
            return None
        if path is None:
            return None
        self.step = int(self._step_var.numpy())
        self._eval_cache = None
        log.info("restored %s (step %d)", path, self.step)
        return self.step

    def restore_from(self, path: str) -> int:
        self.build()
        self.checkpointer.restore(path)
        self.step = int(self._step_var.numpy())
        self._eval_cache = None
        return self.step

    def _move_run_aside(self, e: UnreadableCheckpoints) -> str:
        dest = os.path.join(self.workdir, f"unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        self.checkpointer.move_aside(os.path.join(dest, "checkpoints"))
        metrics = os.path.join(self.workdir, "metrics.jsonl")
        if os.path.exists(metrics):
            os.replace(metrics, os.path.join(dest, "metrics.jsonl"))
        log.warning("restart_from_scratch: %d unreadable checkpoint(s) (%s) moved aside into %s; starting at "
                    "step 0", len(e.paths), ", ".join(os.path.basename(p) for p in e.paths), dest)
        return dest

    def _trim_metrics(self, step: int) -> int:
        """Drops the metrics.jsonl records of steps > `step` (atomic rewrite); returns how many were dropped."""
        path = os.path.join(self.workdir, "metrics.jsonl")
        if not self.is_chief or not os.path.exists(path):
            return 0
        with open(path) as f:
            lines = f.readlines()
        keep, dropped = [], 0
        for line in lines:
            try:
                rec_step = json.loads(line).get("step")
            except (ValueError, AttributeError):
                rec_step = None  # a torn last line of a killed process: dropped too
                if not line.strip():
                    continue
                dropped += 1
                continue
            if isinstance(rec_step, (int, float)) and rec_step > step:
                dropped += 1
            else:
                keep.append(line if line.endswith("\n") else line + "\n")
        if dropped:
            from tfvr.safety import write_text

            write_text(path, "".join(keep))
            log.info("metrics.jsonl: dropped %d record(s) of steps after %d (they are trained again)", dropped, step)
        return dropped

    def save(self) -> str:
        self._step_var.assign(self.step)
        path = self.checkpointer.save(self.step)
        log.info("checkpoint %s", path)
        self._hook("on_checkpoint", path)
        return path

    def _hook(self, name: str, *args) -> None:
        """Calls hook `name` (`TrainerCallback`) of the task, then of each callback."""
        for receiver in self.callbacks:
            fn = getattr(receiver, name, None)
            if fn is not None:
                fn(self, *args)

    # ------------------------------------------------------------------------------------------------------------
    # learning rates
    def learning_rates(self, step: Optional[int] = None) -> dict[str, float]:
        step = self.step if step is None else step
        out = {}
        for name, g in self.groups.items():
            # the multiplier scales the group's initial LR, not eta_min (BasicSR's per-group schedules)
            base = schedules.learning_rate(g.optim, step, g.lr_multiplier)
            out[name] = base * float(self.guard_state.lr_scale[name].numpy())
        return out

    def _set_learning_rates(self, lrs: dict[str, float]) -> None:
        for name, lr in lrs.items():
            self.optimizers[name].learning_rate = lr

    # ------------------------------------------------------------------------------------------------------------
    # the step
    def _replica_fn(self, stage: str):
        def fn(batch, step):
            ctx = StepContext(step=step, stage=stage, groups=self.groups, optimizers=self.optimizers,
                              num_replicas=self.num_replicas, seed=self.tcfg.seed, precision=self.precision,
                              grad_norms=self.tcfg.log_grad_norm)
            ctx.frozen_groups = dict(self.frozen_groups)
            logs = self.task.train_step(batch, self.models, ctx)
            if not isinstance(logs, dict):
                raise TypeError(f"{type(self.task).__name__}.train_step must return a dict of scalars")
            out = {k: tf.cast(tf.reshape(v, []), tf.float32) for k, v in logs.items()}
            for k, v in ctx.extra_logs.items():
                out.setdefault(k, tf.cast(v, tf.float32))
            return out

        return fn

    def _reduce(self, per_replica: dict) -> dict:
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in per_replica.items()}

    def _get_step_fn(self, stage: str, from_iterator: bool):
        key = (stage, from_iterator)
        if key not in self._step_fns:
            replica_fn = self._replica_fn(stage)

            if from_iterator:
                def step_fn(iterator, step):
                    batch = next(iterator)
                    logs = self._reduce(self.strategy.run(replica_fn, args=(batch, step)))
                    if self.ema is not None:
                        self.ema.update()
                    return logs
            else:
                def step_fn(batch, step):
                    logs = self._reduce(self.strategy.run(replica_fn, args=(batch, step)))
                    if self.ema is not None:
                        self.ema.update()
                    return logs

            self._step_fns[key] = tf.function(step_fn, autograph=self.task.autograph)
        return self._step_fns[key]

    def distribute_batch(self, batch: dict):
        """Splits a global batch (dict of arrays, leading axis = global batch) evenly over the replicas."""
        n = self.num_replicas
        batch = {k: tf.convert_to_tensor(v) for k, v in batch.items()}

        def value_fn(ctx):
            i = ctx.replica_id_in_sync_group
            out = {}
            for k, v in batch.items():
                per = v.shape[0] // n
                out[k] = v[i * per:(i + 1) * per]
            return out

        return self.strategy.experimental_distribute_values_from_function(value_fn)

    def run_step(self, batch: Optional[dict] = None, iterator=None) -> dict[str, float]:
        """One training step at `self.step` on a global batch (split over replicas) or the next element of a
        distributed iterator. Sets the learning rates, advances `self.step`; no guards, no checkpoints."""
        self.build()
        self._set_learning_rates(self.learning_rates())
        stage = self.task.stage(self.step)
        step_t = tf.constant(self.step, tf.int64)
        if iterator is not None:
            logs = self._get_step_fn(stage, True)(iterator, step_t)
        else:
            logs = self._get_step_fn(stage, False)(self.distribute_batch(batch), step_t)
        self.step += 1
        self._eval_cache = None
        return {k: float(v.numpy()) for k, v in logs.items()}

    # ------------------------------------------------------------------------------------------------------------
    # data
    def _make_iterator(self, rollbacks: int):
        seed = data_seed(self.tcfg.seed, self.step, rollbacks)
        log.info("data stream (re)started at step %d with seed %d; %d replica(s), %s", self.step, seed,
                 self.num_replicas, type(self.strategy).__name__)
        ds = self.strategy.distribute_datasets_from_function(
            lambda ic: self.task.build_train_dataset(ic, seed))
        return iter(ds)

    def _summary_batch(self):
        batch = self.task.summary_batch()
        if batch is not None:
            return batch
        ic = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=1)
        ds = self.task.build_train_dataset(ic, data_seed(self.tcfg.seed, 0, 0) + 1)
        first = next(iter(ds.take(1)))
        return {k: v[:4] for k, v in first.items()}

    # ------------------------------------------------------------------------------------------------------------
    # summaries / metrics
    def _writer_or_none(self):
        if not self.is_chief:
            return None
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.workdir, "tb"))
        return self._writer

    def _append_metrics(self, record: dict) -> None:
        if not self.is_chief:
            return
        with open(os.path.join(self.workdir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(record) + "\n")

    def evaluate(self) -> dict[str, float]:
        """`task.evaluate` (the Task's evaluation contract: build_eval_dataset / eval_step / aggregate /
        reduce_aggregated) with the EMA weights when EMA is on, then the `on_eval_end` hooks. Evaluating twice at
        the same step with unchanged weights (the last `eval_every` step, then `eval_at_end`) runs the task once."""
        self.build()
        if self._eval_cache is not None and self._eval_cache[0] == self.step:
            return dict(self._eval_cache[1])
        if self.ema is not None:
            with self.ema.swapped():
                res = self.task.evaluate(self.models)
        else:
            res = self.task.evaluate(self.models)
        out = {k: float(v) for k, v in (res or {}).items()}
        self._eval_cache = (self.step, dict(out))
        self._hook("on_eval_end", dict(out))
        return out

    def log_eval(self, metrics: dict[str, float]) -> None:
        """Writes `eval/<metric>` scalars at the current step (TensorBoard and metrics.jsonl), chief only."""
        if not metrics or not self.is_chief:
            return
        key = (self.step, tuple(sorted(metrics.items())))
        if getattr(self, "_eval_logged", None) == key:  # already written at this step (eval_every, then at end)
            return
        self._eval_logged = key
        writer = self._writer_or_none()
        scalars = {f"eval/{k}": v for k, v in metrics.items()}
        write_scalars(writer, self.step, scalars)
        writer.flush()
        self._append_metrics({"step": self.step, **scalars})

    def write_hparams(self) -> None:
        """The HParams plugin's session start: `hparams_dict(config)` plus the task name, trial id = run folder."""
        writer = self._writer_or_none()
        if writer is None:
            return
        from tensorboard.plugins.hparams import api as hp

        values = {"task": str(getattr(self.task, "name", type(self.task).__name__)), **hparams_dict(self.config)}
        with writer.as_default():
            hp.hparams(values, trial_id=os.path.basename(self.workdir.rstrip(os.sep)) or "run")
        writer.flush()

    def write_images(self, batch) -> None:
        writer = self._writer_or_none()
        if writer is None:
            return
        images = self.task.image_summaries(self.models, batch)
        if images:
            write_images(writer, self.step, images, prefix="images/")
            writer.flush()

    # ------------------------------------------------------------------------------------------------------------
    # signals
    def _install_signal_handlers(self):
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}

        def handler(signum, frame):
            if self._stop_signal is None:
                self._stop_signal = signum
                log.warning("signal %d: finishing this step, writing a checkpoint, then stopping", signum)
                # a second signal acts as usual
                signal.signal(signum, old.get(signum, signal.SIG_DFL))

        for s in (signal.SIGTERM, signal.SIGINT):
            old[s] = signal.getsignal(s)
            signal.signal(s, handler)
        return old

    @staticmethod
    def _restore_signal_handlers(old):
        for s, h in old.items():
            try:
                signal.signal(s, h)
            except (TypeError, ValueError):
                pass

    # ------------------------------------------------------------------------------------------------------------
    # the loop
    def _rollback(self, action) -> None:
        snap = self.guard_state.snapshot()
        new = self.monitor.apply(action, snap)  # may raise TrainingDiverged
        path = self.checkpointer.restore_latest(set_aside=True)
        if path is None:
            raise TrainingDiverged(f"{action.reason}, and there is no checkpoint to roll back to")
        self.guard_state.load(new)
        self.step = int(self._step_var.numpy())
        self._rollbacks_here += 1
        self._eval_cache = None
        lrs = ", ".join(f"{g} x{new['lr_scale'][g]:.3g}" for g in action.groups)
        log.warning("guard: %s -> restored %s (step %d), learning rate now %s", action.reason,
                    os.path.basename(path), self.step, lrs)
        self._append_metrics({"step": self.step, "event": "rollback", "reason": action.reason,
                              "lr_scale": new["lr_scale"]})

    def train(self, on_start=None) -> TrainResult:
        """Trains to `trainer.num_steps`. `on_start()` runs once the run is known to be able to start (config
        valid, workdir locked, checkpoints restored or none there) and before the first write into the workdir
        (the train script writes config.json there). Then, unless the run is already trained, the
        `on_train_start` hooks (task first, then `callbacks`), then a fresh run's ckpt-0 and the steps."""
        from tfvr.config import validate_experiment

        validate_experiment(self.config)  # before anything is written into the workdir
        locked_here = self._lock is None
        self.lock()
        try:
            return self._train(on_start)
        finally:
            if locked_here:
                self.unlock()

    def _train(self, on_start=None) -> TrainResult:
        self.build()
        os.makedirs(self.workdir, exist_ok=True)
        num_steps = int(self.tcfg.num_steps)
        restored = self.restore(for_training=True)
        if on_start is not None:
            on_start()
        if restored is None:
            self.step = 0
            metrics = os.path.join(self.workdir, "metrics.jsonl")
            if self.is_chief and os.path.exists(metrics) and os.path.getsize(metrics):
                old = os.path.join(self.workdir, f"metrics.before-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
                os.replace(metrics, old)
                log.warning("starting at step 0: the previous %s was renamed to %s", metrics, old)
        else:
            self._trim_metrics(self.step)
        start_step = self.step
        if start_step > 0:
            log.info("resuming at step %d of %d", start_step, num_steps)
        t0 = time.time()
        logs: dict[str, float] = {}
        if self.step < num_steps:
            self._hook("on_train_start")
        if restored is None and self.is_chief:
            self.save()  # ckpt-0: a rollback target from the very first step
        if self.step >= num_steps:
            log.info("already trained: step %d >= num_steps %d", self.step, num_steps)
            return TrainResult(self.step, start_step, 0.0, logs, 0)
        writer = self._writer_or_none()
        self.write_hparams()
        summary_batch = None
        if self.tcfg.image_every and self.is_chief:
            summary_batch = self._summary_batch()
        total_rollbacks = int(self.guard_state.nan_failures.numpy()) + sum(
            int(v.numpy()) for v in self.guard_state.metric_failures)
        iterator = self._make_iterator(total_rollbacks)
        bar = self._progress_bar(start_step, num_steps)
        old_handlers = self._install_signal_handlers()
        rate_t, rate_step = time.time(), self.step
        try:
            while self.step < num_steps:
                lrs = self.learning_rates()
                self._set_learning_rates(lrs)
                stage = self.task.stage(self.step)
                fn = self._get_step_fn(stage, True)
                try:
                    out = fn(iterator, tf.constant(self.step, tf.int64))
                except (tf.errors.OutOfRangeError, StopIteration):
                    raise RuntimeError(f"the training dataset ran out at step {self.step}: "
                                       "build_train_dataset must return an endless (repeated) dataset") from None
                except tf.errors.DataLossError as e:
                    # A corrupt shard: name the file (TF's message does not) instead of a bare traceback.
                    raise self.task.data_error(e) from None
                logs = {k: float(v.numpy()) for k, v in out.items()}
                self._eval_cache = None
                action = self.monitor.check(self.step, logs)
                if action is not None:
                    self._rollback(action)
                    total_rollbacks += 1
                    iterator = self._make_iterator(total_rollbacks)
                    if bar is not None:
                        bar.n = self.step
                        bar.refresh()
                    continue
                self.step += 1
                if bar is not None:
                    bar.update(1)
                    if "loss" in logs:
                        bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)
                if self.tcfg.log_every and (self.step % self.tcfg.log_every == 0 or self.step == num_steps):
                    now = time.time()
                    rate = (self.step - rate_step) / max(now - rate_t, 1e-9)
                    rate_t, rate_step = now, self.step
                    scalars = {f"train/{k}": v for k, v in logs.items()}
                    scalars.update({f"lr/{g}": v for g, v in lrs.items()})
                    if writer is not None:
                        write_scalars(writer, self.step, scalars)
                        write_scalars(writer, self.step, {"train/steps_per_sec": rate})
                    self._append_metrics({"step": self.step, **logs, **{f"lr/{g}": v for g, v in lrs.items()},
                                          "steps_per_sec": rate})
                    msg = " ".join(f"{k} {v:.4g}" for k, v in list(logs.items())[:6])
                    line = f"step {self.step}/{num_steps} {msg} lr {next(iter(lrs.values())):.3g} {rate:.2f} steps/s"
                    if bar is not None:
                        bar.write(line)
                    else:
                        log.info(line)
                if summary_batch is not None and self.step % self.tcfg.image_every == 0:
                    self.write_images(summary_batch)
                if self.tcfg.eval_every and self.step % self.tcfg.eval_every == 0 and self.is_chief:
                    metrics = self.evaluate()
                    self.log_eval(metrics)
                    if metrics:
                        log.info("eval at step %d: %s", self.step,
                                 " ".join(f"{k} {v:.4g}" for k, v in list(metrics.items())[:6]))
                if self._stop_signal is not None:
                    self.save()
                    raise TrainingInterrupted(self._stop_signal, self.step)
                if self.tcfg.checkpoint_every and self.step % self.tcfg.checkpoint_every == 0:
                    self.save()
            if checkpoint_step_of(self) != self.step:
                self.save()
        finally:
            self._restore_signal_handlers(old_handlers)
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.flush()
        return TrainResult(self.step, start_step, time.time() - t0, logs, self._rollbacks_here)

    def _progress_bar(self, start: int, total: int):
        if not (self.tcfg.progress_bar and self.is_chief and sys.stderr.isatty()):
            return None
        from tqdm import tqdm

        return tqdm(total=total, initial=start, unit="step", dynamic_ncols=True, file=sys.stderr)

    # ------------------------------------------------------------------------------------------------------------
    # export helpers
    def export_module(self) -> tf.Module:
        """`task.export_module(models)` with the EMA weights copied into the models (for good)."""
        self.build()
        if self.ema is not None:
            self.ema.copy_to_model()
        return self.task.export_module(self.models)


def hparams_dict(config: Any) -> dict[str, Any]:
    """The experiment config flattened for the HParams plugin: `{"optim.learning_rate": 1e-3, ...}`; values are
    bool / int / float / str (tuples and None become their str)."""
    from tfvr.config import to_dict

    out: dict[str, Any] = {}

    def walk(d: dict, prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            elif isinstance(v, (bool, int, float, str)):
                out[f"{prefix}{k}"] = v
            else:
                out[f"{prefix}{k}"] = str(tuple(v) if isinstance(v, list) else v)

    walk(to_dict(config) if dataclasses.is_dataclass(config) else dict(config), "")
    return out


def checkpoint_step_of(trainer: Trainer) -> Optional[int]:
    paths = trainer.checkpointer.checkpoints()
    if not paths:
        return None
    try:
        return checkpoint_step(paths[-1])
    except ValueError:
        return None
