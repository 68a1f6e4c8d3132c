"""Learning-rate schedules as plain functions of the step (BasicSR's formulas, closed form).

`step` is the number of optimizer updates already applied (0 for the first update). BasicSR calls
`scheduler.step()` once per iteration before the update from its second iteration on, so its update number
`current_iter` (1-based) uses the scheduler at `last_epoch = current_iter - 1 = step`: the functions here take
BasicSR's `last_epoch`.

- `constant_lr`: the base LR.
- `step_decay_lr`: BasicSR `MultiStepRestartLR(milestones, gamma, restarts, restart_weights)`: the LR is
  multiplied by `gamma` at every milestone; at a restart step it jumps to `base * restart_weight` (a milestone on
  a restart step is ignored, as in BasicSR) and later milestones decay from there.
- `cosine_restart_lr`: BasicSR `CosineAnnealingRestartLR(periods, restart_weights, eta_min)`:
  `eta_min + w_i * 0.5 * (base - eta_min) * (1 + cos(pi * (step - start_i) / period_i))` in cycle i, where
  cycle i covers `start_i < step <= start_i + period_i` (cycle 0 also covers step 0). Past the last cycle the LR
  stays at `eta_min` (BasicSR would fail).
- `warmup`: BasicSR's linear warm-up: while `step + 1 < warmup_steps` the LR is `base * (step + 1) / warmup_steps`
  (it overrides the schedule, like `BaseModel.update_learning_rate(current_iter, warmup_iter)`).

`learning_rate(cfg, step, multiplier)` applies an `OptimConfig` to an optimizer group whose initial LR is
`cfg.learning_rate * multiplier` (BasicSR's per-group `lr`, e.g. EDVR's `dcn_lr_mul` group): the schedule runs on
that base, and `eta_min` is *not* multiplied (BasicSR's schedulers anneal every group's own `initial_lr` to the
same `eta_min`).
"""

from __future__ import annotations

import bisect
import math
from typing import Sequence

from tfvr.errors import ConfigError
from tfvr.training.config import OptimConfig


def constant_lr(base: float, step: int) -> float:
    return float(base)


def step_decay_lr(base: float, step: int, milestones: Sequence[int], gamma: float,
                  restarts: Sequence[int] = (0,), restart_weights: Sequence[float] = (1.0,)) -> float:
    restarts = list(restarts)
    weights = list(restart_weights) if restart_weights else [1.0] * len(restarts)
    if len(weights) != len(restarts):
        raise ConfigError(f"optim.restart_weights has {len(weights)} values for {len(restarts)} restarts")
    # The latest restart at or before `step` sets the LR to base * weight (-1: none, the LR starts at base).
    start, w = -1, 1.0
    for r, rw in zip(restarts, weights):
        if start < r <= step:
            start, w = r, rw
    # Milestones since then, with multiplicity (BasicSR keeps them in a Counter); one on the restart step
    # itself is ignored.
    n = sum(1 for m in milestones if start < m <= step)
    return float(base) * w * (gamma ** n)


def cosine_restart_lr(base: float, step: int, periods: Sequence[int], restart_weights: Sequence[float] = (),
                      eta_min: float = 0.0) -> float:
    if not periods:
        raise ConfigError("optim.periods: the cosine_restart schedule needs at least one period (in steps)")
    weights = list(restart_weights) or [1.0] * len(periods)
    if len(weights) != len(periods):
        raise ConfigError(f"optim.restart_weights has {len(weights)} values for {len(periods)} periods")
    cumulative = [sum(periods[: i + 1]) for i in range(len(periods))]
    if step > cumulative[-1]:
        return float(eta_min)
    idx = bisect.bisect_left(cumulative, step)  # first i with step <= cumulative[i]
    start = 0 if idx == 0 else cumulative[idx - 1]
    w = weights[idx]
    return float(eta_min + w * 0.5 * (base - eta_min) * (1 + math.cos(math.pi * (step - start) / periods[idx])))


def warmup(base: float, step: int, warmup_steps: int) -> float | None:
    """The warm-up LR at `step`, or None once warm-up is over."""
    if warmup_steps > 0 and step + 1 < warmup_steps:
        return float(base) * (step + 1) / warmup_steps
    return None


def learning_rate(cfg: OptimConfig, step: int, multiplier: float = 1.0) -> float:
    """The scheduled LR of `cfg` at `step` for a group with LR multiplier `multiplier` (before guard scales)."""
    if multiplier == 0:
        return 0.0  # a group with multiplier 0 stays frozen (a cosine schedule would otherwise give it eta_min)
    base = float(cfg.learning_rate) * float(multiplier)
    w = warmup(base, step, cfg.warmup_steps)
    if w is not None:
        return w
    kind = cfg.schedule
    if kind == "constant":
        return constant_lr(base, step)
    if kind == "step":
        restarts = tuple(cfg.restarts) or (0,)
        weights = tuple(cfg.restart_weights) or (1.0,) * len(restarts)
        return step_decay_lr(base, step, cfg.milestones, cfg.gamma, restarts, weights)
    if kind in ("cosine_restart", "cosine"):
        return cosine_restart_lr(base, step, cfg.periods, cfg.restart_weights, cfg.eta_min)
    raise ConfigError(f"optim.schedule: unknown schedule {kind!r} (expected constant, step or cosine_restart)")


def validate(cfg: OptimConfig) -> None:
    """Raises ConfigError if the schedule settings cannot work (checked before training starts)."""
    learning_rate(cfg, 0)
