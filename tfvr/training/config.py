"""Config dataclasses shared by every family's training run: optimizer + LR schedule, trainer loop, runtime.

They are fields of `tfvr.config.Experiment` and are set from a flagfile as `--config.optim.learning_rate=4e-4`,
`--config.trainer.num_steps=300`, `--config.runtime.strategy=one_device` ...

No `from __future__ import annotations` here (or in any config module): ml_collections reads the field types
from `dataclasses.fields()` and needs real types, not strings. Allowed field types: int, float, bool, str,
`tuple[...]`, `Optional[...]` of those, and nested dataclasses (with `field(default_factory=...)`).
Importing this module is cheap (no TensorFlow).
"""

import dataclasses
import math

from tfvr.errors import ConfigError


def _bad(group: str, name: str, value, why: str):
    raise ConfigError(f"--config.{group}.{name}={value!r}: {why}")


def _check(obj, group: str, rules: dict) -> None:
    """rules: field -> (predicate, "must be ..."); raises ConfigError for the first field that fails."""
    for name, (ok, why) in rules.items():
        value = getattr(obj, name)
        if isinstance(value, float) and not math.isfinite(value):
            _bad(group, name, value, "must be a finite number")
        if not ok(value):
            _bad(group, name, value, why)


@dataclasses.dataclass
class OptimConfig:
    """One optimizer and its learning-rate schedule.

    The learning rate at step s (s = number of updates already applied, 0 for the first update) is
    `schedule(s) * guard_scale`, where `schedule` starts from the group's initial LR `learning_rate * multiplier`
    and is one of (formulas are BasicSR's, see `tfvr.training.schedules`; `learning_rate` below stands for that
    initial LR, `eta_min` is not multiplied):

    - "constant": `learning_rate`.
    - "step": `learning_rate * gamma ** (number of milestones <= s)` (BasicSR MultiStepRestartLR, with optional
      `restarts` / `restart_weights`).
    - "cosine_restart": BasicSR CosineAnnealingRestartLR over `periods` (steps per cycle), each cycle starting at
      `learning_rate * restart_weights[i]` and annealing to `eta_min`.

    A linear warm-up (`warmup_steps` > 0) overrides the schedule while `s + 1 < warmup_steps` with
    `learning_rate * (s + 1) / warmup_steps` (BasicSR's `update_learning_rate(current_iter, warmup_iter)`).
    `multiplier` is the variable group's factor (e.g. EDVR's offset convs) and `guard_scale` starts at 1 and is
    lowered by the NaN / metric guards.

    Attributes:
        optimizer: "adam" (Keras Adam), "torch_adam" (exactly PyTorch's `torch.optim.Adam`: epsilon added after
            the bias correction, per-variable step counts; what BasicSR and the authors' trainers use, see
            `tfvr.training.torch_adam`), "adamw" or "sgd".
        learning_rate: base learning rate.
        beta1, beta2, epsilon: Adam(W) parameters (SGD uses `beta1` as momentum).
        weight_decay: decoupled weight decay (AdamW); for "torch_adam" PyTorch Adam's L2 `weight_decay` (added
            to the gradient); unused by "adam".
        clip_norm: clip the *global* (all-replica) gradient norm to this value; 0 disables.
        schedule: "constant", "step" or "cosine_restart".
        milestones: steps at which the "step" schedule multiplies the LR by `gamma`.
        gamma: the "step" schedule's factor.
        periods: cycle lengths (steps) of "cosine_restart"; their sum should cover `trainer.num_steps`
            (past the end the LR stays at `eta_min`).
        restarts: steps at which the "step" schedule restarts (BasicSR `restarts`); the LR jumps to
            `learning_rate * restart_weights[i]`.
        restart_weights: per-cycle weights (cosine: one per period, default all 1; step: one per restart).
        eta_min: the cosine schedule's floor.
        warmup_steps: linear warm-up length (0: none).
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    weight_decay: float = 0.0
    clip_norm: float = 0.0
    schedule: str = "constant"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.5
    periods: tuple[int, ...] = ()
    restarts: tuple[int, ...] = ()
    restart_weights: tuple[float, ...] = ()
    eta_min: float = 1e-7
    warmup_steps: int = 0

    def validate(self, group: str = "optim") -> "OptimConfig":
        """Raises ConfigError naming the first out-of-range field (called before the workdir is touched)."""
        _check(self, group, {
            "optimizer": (lambda v: v in ("adam", "torch_adam", "adamw", "sgd"),
                          "must be adam, torch_adam, adamw or sgd"),
            "learning_rate": (lambda v: v >= 0, "must be >= 0"),
            "beta1": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
            "beta2": (lambda v: 0 <= v < 1, "must be in [0, 1)"),
            "epsilon": (lambda v: v > 0, "must be > 0"),
            "weight_decay": (lambda v: v >= 0, "must be >= 0"),
            "clip_norm": (lambda v: v >= 0, "must be >= 0 (0 disables clipping)"),
            "schedule": (lambda v: v in ("constant", "step", "cosine_restart"),
                         "must be constant, step or cosine_restart"),
            "milestones": (lambda v: all(m >= 0 for m in v) and list(v) == sorted(v),
                           "must be increasing steps >= 0"),
            "gamma": (lambda v: v > 0, "must be > 0"),
            "periods": (lambda v: all(p >= 1 for p in v), "every period must be >= 1 step"),
            "restarts": (lambda v: all(r >= 0 for r in v) and list(v) == sorted(v),
                         "must be increasing steps >= 0"),
            "restart_weights": (lambda v: all(w >= 0 for w in v), "must be >= 0"),
            "eta_min": (lambda v: v >= 0, "must be >= 0"),
            "warmup_steps": (lambda v: v >= 0, "must be >= 0 (0: no warm-up)"),
        })
        return self


@dataclasses.dataclass
class TrainerConfig:
    """What the training loop does and how often (all intervals in optimizer steps; 0 disables).

    Attributes:
        num_steps: total number of training steps (a resumed run stops at the same total).
        seed: seed of model initialisation and of the training data stream (see `tfvr.training.loop` for the
            data-position policy on resume).
        checkpoint_every: write a checkpoint every N steps (also at the end and on SIGTERM/SIGINT).
        keep_checkpoints: how many recent checkpoints to keep.
        log_every: TensorBoard scalars (every loss term, learning rates) and a console line every N steps.
        image_every: TensorBoard images (`Task.image_summaries`) every N steps.
        eval_every: `Task.evaluate` on the validation data every N steps (TensorBoard `eval/...`).
        ema_decay: exponential moving average of the weights (e.g. 0.999); 0 disables. When on, evaluation and
            export use the EMA weights.
        nan_lr_factor: after a non-finite loss the last good checkpoint is restored and every learning rate is
            multiplied by this factor.
        max_nan_failures: stop with an error after this many non-finite-loss rollbacks.
        log_grad_norm: log the global gradient norm of each optimizer group (`grad_norm/<group>`); with
            several replicas this costs one extra all-reduce of the gradients per step.
        progress_bar: show a tqdm progress bar on an interactive terminal (log lines are written regardless).
        export: after training (and evaluation), export `workdir/export` with the reload check.
        eval_at_end: run `Task.evaluate` after training and write `workdir/eval.json`.
        restart_from_scratch: when checkpoints exist but none can be read, start again from step 0 and move the
            unreadable ones (and metrics.jsonl) aside into `workdir/unreadable-<time>/` (never deleted). Without
            it such a run stops with an error that lists them.
        freeze: variables that are not trained (kept at their initial / `init_from` values, no optimizer slots).
            Each entry is a layer-group name the task defines (`Task.layer_groups`: EDVR has "dcn", "pcd",
            "fusion", "feature_extraction", "reconstruction", "upsample", ...; every task has one group per model
            name) or an fnmatch pattern over "<model>/<variable path>" (e.g. "edvr/pcd_align/*",
            "*reconstruction_1*"). An entry that matches nothing stops the run. What seed 001's "train with plain
            convs, then freeze some layers" and seed 004's TRAIN_LOAD_FREEZE (load, freeze, train the rest) need,
            together with the family's `init_from`.
    """

    num_steps: int = 1000
    seed: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 50
    image_every: int = 500
    eval_every: int = 0
    ema_decay: float = 0.0
    nan_lr_factor: float = 0.5
    max_nan_failures: int = 3
    progress_bar: bool = True
    log_grad_norm: bool = True
    export: bool = True
    eval_at_end: bool = True
    restart_from_scratch: bool = False
    freeze: tuple[str, ...] = ()

    def validate(self, group: str = "trainer") -> "TrainerConfig":
        """Raises ConfigError naming the first out-of-range field (called before the workdir is touched)."""
        interval = (lambda v: v >= 0, "must be >= 0 (0 disables it)")
        _check(self, group, {
            "num_steps": (lambda v: v >= 1, "must be >= 1"),
            "seed": (lambda v: v >= 0, "must be >= 0"),
            "checkpoint_every": interval,
            "keep_checkpoints": (lambda v: v >= 1, "must be >= 1"),
            "log_every": interval,
            "image_every": interval,
            "eval_every": interval,
            "ema_decay": (lambda v: 0 <= v < 1, "must be in [0, 1) (0 disables the EMA)"),
            "nan_lr_factor": (lambda v: 0 < v <= 1, "must be in (0, 1]"),
            "max_nan_failures": (lambda v: v >= 0, "must be >= 0"),
        })
        return self


@dataclasses.dataclass
class RuntimeConfig:
    """Where and in which precision the run executes.

    Attributes:
        strategy: "auto" (MultiWorkerMirroredStrategy when TF_CONFIG names more than one worker, otherwise
            MirroredStrategy over the visible devices), "mirrored", "one_device" or "multi_worker".
        devices: comma-separated device names for "mirrored" / "one_device" (empty: all GPUs, else the CPU).
        precision: "float32", "mixed_bfloat16" or "mixed_float16" (the latter with dynamic loss scaling).
        initial_loss_scale: starting dynamic loss scale for mixed_float16.
        cpu_devices: on a machine without GPUs, split the CPU into this many logical devices so that "auto" /
            "mirrored" run that many replicas (to try a multi-replica run or a replica-count change without GPUs;
            docs/distributed.md). 0 or 1: the CPU is one device. Ignored when a GPU is visible.
        deterministic: TensorFlow op determinism for this process (`tf.config.experimental.enable_op_determinism`,
            what Keras recommends next to a fixed seed; PyTorch's `torch.use_deterministic_algorithms`): ops take
            their deterministic kernels (an op without one raises), and every `tf.data` map keeps its order; and
            grappler's arithmetic optimizer and constant folding off, whose rewrites depend on memory addresses
            (`tfvr.training.loop.use_determinism`). With a fixed `trainer.seed` and `data.deterministic`, two runs
            of one command on one machine then agree bit for bit (vid2vid's demo, 12 steps and its eval, checked
            on CPU; with op determinism alone they ended 0.04-0.08 dB apart, 0.25 dB without; docs/distributed.md).
            Off by default: it can cost speed.
    """

    strategy: str = "auto"
    devices: str = ""
    precision: str = "float32"
    initial_loss_scale: float = 32768.0
    cpu_devices: int = 0
    deterministic: bool = False

    def validate(self, group: str = "runtime") -> "RuntimeConfig":
        """Raises ConfigError naming the first bad field (called before the workdir is touched)."""
        _check(self, group, {
            "strategy": (lambda v: v in ("auto", "mirrored", "one_device", "multi_worker"),
                         "must be auto, mirrored, one_device or multi_worker"),
            "precision": (lambda v: v in ("float32", "mixed_bfloat16", "mixed_float16"),
                          "must be float32, mixed_bfloat16 or mixed_float16"),
            "initial_loss_scale": (lambda v: v > 0, "must be > 0"),
            "cpu_devices": (lambda v: v >= 0, "must be >= 0"),
        })
        return self

