"""Divergence guards: NaN/Inf rollback and metric guards (e.g. EDVR's mean |offset| per DCN).

After every step the trainer hands the step's logged values to `GuardMonitor.check`:

- any non-finite value -> "rollback": restore the last good checkpoint, multiply the learning rate of every
  optimizer group by `trainer.nan_lr_factor`, log it; after `trainer.max_nan_failures` such rollbacks the run
  stops with `TrainingDiverged`.
- a `MetricGuard` (declared by the task) whose key matches a logged value: above `warn_above` a warning (at most
  once per `warn_every` steps); above `rollback_above` a rollback that lowers only the guard's `groups` by its
  `lr_factor`, at most `max_failures` times.

The LR scales and failure counts live in `GuardState` (variables saved in every checkpoint), and are carried over
a rollback (a rollback restores the weights, not the lowered learning rate).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Optional, Sequence

import tensorflow as tf

from tfvr.training.task import MetricGuard

log = logging.getLogger("tfvr.training")

__all__ = ["GuardState", "GuardMonitor", "GuardAction", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """Too many rollbacks: the run cannot make progress with the current settings."""


class GuardState(tf.Module):
    """Checkpointed guard state: per-group LR scale, failure counters."""

    def __init__(self, group_names: Sequence[str], num_guards: int):
        super().__init__(name="guard_state")
        self.lr_scale = {g: tf.Variable(1.0, dtype=tf.float64, trainable=False, name=f"lr_scale_{g}")
                         for g in group_names}
        self.nan_failures = tf.Variable(0, dtype=tf.int64, trainable=False, name="nan_failures")
        self.metric_failures = [tf.Variable(0, dtype=tf.int64, trainable=False, name=f"metric_failures_{i}")
                                for i in range(num_guards)]

    def snapshot(self) -> dict:
        return {
            "lr_scale": {g: float(v.numpy()) for g, v in self.lr_scale.items()},
            "nan_failures": int(self.nan_failures.numpy()),
            "metric_failures": [int(v.numpy()) for v in self.metric_failures],
        }

    def load(self, snap: dict) -> None:
        for g, v in self.lr_scale.items():
            v.assign(snap["lr_scale"][g])
        self.nan_failures.assign(snap["nan_failures"])
        for v, n in zip(self.metric_failures, snap["metric_failures"]):
            v.assign(n)


@dataclasses.dataclass
class GuardAction:
    reason: str
    groups: tuple[str, ...]      # groups whose LR is lowered
    factor: float
    guard_index: Optional[int]   # None: the NaN guard


class GuardMonitor:
    def __init__(self, state: GuardState, guards: Sequence[MetricGuard], nan_lr_factor: float,
                 max_nan_failures: int):
        self.state = state
        self.guards = list(guards)
        self.nan_lr_factor = float(nan_lr_factor)
        self.max_nan_failures = int(max_nan_failures)
        self._last_warn: dict[int, int] = {}

    def check(self, step: int, logs: dict[str, float]) -> Optional[GuardAction]:
        bad = [k for k, v in logs.items() if not math.isfinite(v)]
        if bad:
            return GuardAction(f"non-finite value ({', '.join(bad[:4])}) at step {step}", tuple(self.state.lr_scale),
                               self.nan_lr_factor, None)
        for i, g in enumerate(self.guards):
            hits = {k: v for k, v in logs.items() if g.matches(k)}
            if not hits:
                continue
            key, worst = max(hits.items(), key=lambda kv: kv[1])
            if g.rollback_above is not None and worst > g.rollback_above:
                groups = tuple(g.groups) or tuple(self.state.lr_scale)
                return GuardAction(f"{key} = {worst:.4g} > {g.rollback_above:g} at step {step}", groups,
                                   g.lr_factor, i)
            if g.warn_above is not None and worst > g.warn_above:
                last = self._last_warn.get(i)
                if last is None or step - last >= g.warn_every:
                    self._last_warn[i] = step
                    log.warning("guard: %s = %.4g above %g at step %d", key, worst, g.warn_above, step)
        return None

    def apply(self, action: GuardAction, snapshot: dict) -> dict:
        """The guard state to put back after the rollback: `snapshot` (taken before restoring) with the LR
        lowered and the failure counted. Raises TrainingDiverged when the limit is reached."""
        snap = {"lr_scale": dict(snapshot["lr_scale"]), "nan_failures": snapshot["nan_failures"],
                "metric_failures": list(snapshot["metric_failures"])}
        if action.guard_index is None:
            snap["nan_failures"] += 1
            n, limit, what = snap["nan_failures"], self.max_nan_failures, "non-finite loss"
        else:
            snap["metric_failures"][action.guard_index] += 1
            n, limit = snap["metric_failures"][action.guard_index], self.guards[action.guard_index].max_failures
            what = f"guard {self.guards[action.guard_index].key!r}"
        if n > limit:
            raise TrainingDiverged(
                f"training diverged: {action.reason}; {what} rolled back {n - 1} times already "
                f"(limit {limit}). Lower the learning rate or check the data.")
        for g in action.groups:
            snap["lr_scale"][g] *= action.factor
        return snap
