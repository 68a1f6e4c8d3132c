"""The LR schedules equal BasicSR's schedulers (basicsr/models/lr_scheduler.py), simulated step by step."""

import math
from collections import Counter

import pytest

from tfvr.errors import ConfigError
from tfvr.training import schedules
from tfvr.training.config import OptimConfig


class BasicSRMultiStepRestart:
    """A transcription of BasicSR's MultiStepRestartLR.get_lr, driven like torch's _LRScheduler.step()."""

    def __init__(self, base, milestones, gamma, restarts=(0,), restart_weights=(1,)):
        self.base, self.milestones, self.gamma = base, Counter(milestones), gamma
        self.restarts, self.restart_weights = list(restarts), list(restart_weights)
        self.lr = base
        self.last_epoch = -1
        self.step()

    def step(self):
        self.last_epoch += 1
        if self.last_epoch in self.restarts:
            self.lr = self.base * self.restart_weights[self.restarts.index(self.last_epoch)]
        elif self.last_epoch in self.milestones:
            self.lr = self.lr * self.gamma ** self.milestones[self.last_epoch]


def basicsr_cosine(base, last_epoch, periods, restart_weights, eta_min):
    cumulative = [sum(periods[0:i + 1]) for i in range(len(periods))]
    idx = next(i for i, p in enumerate(cumulative) if last_epoch <= p)
    nearest_restart = 0 if idx == 0 else cumulative[idx - 1]
    return eta_min + restart_weights[idx] * 0.5 * (base - eta_min) * (
        1 + math.cos(math.pi * ((last_epoch - nearest_restart) / periods[idx])))


@pytest.mark.parametrize("milestones,restarts,weights", [
    ((10, 20, 20, 35), (0,), (1,)),
    ((5, 15, 25, 30), (0, 20), (1, 0.5)),
    ((20, 30), (0, 20, 40), (1, 0.7, 0.3)),   # a milestone on a restart step is ignored
])
def test_step_decay_matches_basicsr(milestones, restarts, weights):
    ref = BasicSRMultiStepRestart(4e-4, milestones, 0.5, restarts, weights)
    for s in range(50):
        ours = schedules.step_decay_lr(4e-4, s, milestones, 0.5, restarts, weights)
        assert ours == pytest.approx(ref.lr, rel=1e-12), s
        ref.step()


def test_cosine_restart_matches_basicsr():
    periods, weights, eta_min = (10, 15, 15), (1, 0.5, 0.25), 1e-7
    for s in range(sum(periods) + 1):
        assert schedules.cosine_restart_lr(4e-4, s, periods, weights, eta_min) == pytest.approx(
            basicsr_cosine(4e-4, s, periods, weights, eta_min), rel=1e-12), s
    # past the last cycle: the floor (BasicSR would fail)
    assert schedules.cosine_restart_lr(4e-4, 100, periods, weights, eta_min) == eta_min


def test_warmup_then_cosine_as_basicsr_update_learning_rate():
    cfg = OptimConfig(learning_rate=1e-3, schedule="cosine_restart", periods=(30,), eta_min=0.0, warmup_steps=8)
    for s in range(30):
        current_iter = s + 1  # BasicSR's 1-based iteration
        if current_iter < 8:
            expected = 1e-3 / 8 * current_iter
        else:
            expected = basicsr_cosine(1e-3, s, (30,), (1,), 0.0)
        assert schedules.learning_rate(cfg, s) == pytest.approx(expected, rel=1e-12), s


def test_config_dispatch_and_errors():
    assert schedules.learning_rate(OptimConfig(learning_rate=0.1), 123) == 0.1
    cfg = OptimConfig(learning_rate=0.1, schedule="step", milestones=(2, 4), gamma=0.1)
    assert [round(schedules.learning_rate(cfg, s), 12) for s in range(6)] == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]
    with pytest.raises(ConfigError, match="periods"):
        schedules.validate(OptimConfig(schedule="cosine_restart"))
    with pytest.raises(ConfigError, match="unknown schedule"):
        schedules.validate(OptimConfig(schedule="cosin"))
    with pytest.raises(ConfigError, match="restart_weights"):
        schedules.validate(OptimConfig(schedule="cosine_restart", periods=(1, 2), restart_weights=(1.0,)))
