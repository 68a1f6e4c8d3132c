"""Per-replica loss scaling: one step on 2 logical CPU devices equals one step on 1 device with the same global
batch (weights to 1e-5), for a mean loss, a summed loss (BasicSR's reduction="sum") and a 2-optimizer GAN step."""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import one_cpu_strategy, two_cpu_strategy
from tests.training.toy import ToyExperiment, ToyGANExperiment, ToyGANTask, ToyTask, make_batch
from tfvr.training.loop import Trainer


def _pair(task_cls, exp, tmp_path):
    a = Trainer(task_cls(exp), str(tmp_path / "one"), strategy=one_cpu_strategy()).build()
    b = Trainer(task_cls(exp), str(tmp_path / "two"), strategy=two_cpu_strategy()).build()
    assert b.num_replicas == 2
    for name in a.models:
        b.models[name].set_weights(a.models[name].get_weights())
    return a, b


def _max_diff(a, b):
    out = 0.0
    for name in a.models:
        for x, y in zip(a.models[name].get_weights(), b.models[name].get_weights()):
            out = max(out, float(np.max(np.abs(x - y))))
    return out


@pytest.mark.parametrize("reduction,clip", [("mean", 0.0), ("sum", 0.05)])
def test_two_replicas_equal_one(tmp_path, reduction, clip):
    exp = ToyExperiment()
    exp.optim.learning_rate = 1e-2
    exp.optim.clip_norm = clip
    exp.model.loss_reduction = reduction
    exp.trainer.ema_decay = 0.5
    a, b = _pair(ToyTask, exp, tmp_path)
    for i in range(2):
        batch = make_batch(i, 4, 8, 0.1)
        la, lb = a.run_step(batch), b.run_step(batch)
        # logged values are averaged over replicas: equal for the mean loss
        if reduction == "mean":
            assert la["loss"] == pytest.approx(lb["loss"], rel=1e-5)
        assert la["grad_norm/main"] == pytest.approx(lb["grad_norm/main"], rel=1e-4)
    assert _max_diff(a, b) < 1e-5
    moved = max(float(np.max(np.abs(x - y))) for x, y in zip(
        a.models["denoiser"].get_weights(), Trainer(ToyTask(exp), str(tmp_path / "fresh"),
                                                    strategy=one_cpu_strategy()).build().models["denoiser"].get_weights()))
    assert moved > 1e-4  # the steps did change the weights
    for sa, sb in zip(a.ema.shadow, b.ema.shadow):
        np.testing.assert_allclose(sa.numpy(), sb.numpy(), atol=1e-5)


def test_gan_two_optimizers_two_replicas_equal_one(tmp_path):
    exp = ToyGANExperiment()
    exp.optim.learning_rate = 1e-2
    exp.d_optim.learning_rate = 1e-2
    exp.d_optim.clip_norm = 0.05
    a, b = _pair(ToyGANTask, exp, tmp_path)
    for i in range(2):
        batch = make_batch(10 + i, 4, 8, 0.1)
        la, lb = a.run_step(batch), b.run_step(batch)
        assert la["loss/d"] == pytest.approx(lb["loss/d"], rel=1e-5)
    assert _max_diff(a, b) < 1e-5
    assert int(a.optimizers["d"].iterations.numpy()) == int(b.optimizers["g"].iterations.numpy()) == 2
