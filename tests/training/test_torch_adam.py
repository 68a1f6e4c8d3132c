"""`optimizer="torch_adam"`: PyTorch's Adam update (epsilon after the bias correction, per-variable step counts),
on one device and on 2 replicas, and the schedule's group multiplier (BasicSR's per-group initial LR)."""

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import one_cpu_strategy, two_cpu_strategy
from tests.training.toy import ToyExperiment, ToyTask, make_batch
from tfvr.training import schedules
from tfvr.training.config import OptimConfig
from tfvr.training.loop import Trainer
from tfvr.training.task import make_optimizer


def _torch_adam(p, grads, lr, b1, b2, eps, wd=0.0):
    """torch.optim.Adam's single-tensor update (torch/optim/adam.py), transcribed; a None gradient skips a step."""
    m, v, t = np.zeros_like(p), np.zeros_like(p), 0
    for g in grads:
        if g is None:
            continue
        g = g + wd * p
        t += 1
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps
        p = p - lr / (1 - b1 ** t) * m / denom
    return p


def _steps(opt, a0, b0, ga, gb):
    """Applies the gradient pairs (`gb[i]` None: only `a` gets a gradient) to float64 variables from a0, b0."""
    va, vb = tf.Variable(a0, dtype=tf.float64), tf.Variable(b0, dtype=tf.float64)
    opt.build([va, vb])
    for x, y in zip(ga, gb):
        if y is None:
            opt.apply([tf.constant(x)], [va])
        else:
            opt.apply([tf.constant(x), tf.constant(y)], [va, vb])
    return va, vb


@pytest.mark.parametrize("b1,wd", [(0.9, 0.0), (0.0, 1e-2)])
def test_torch_adam_matches_pytorch_formula_and_counts_steps_per_variable(b1, wd):
    rng = np.random.default_rng(0)
    a0 = rng.normal(size=(5,)).astype(np.float64)
    b0 = rng.normal(size=(3,)).astype(np.float64)
    # tiny gradients: where Keras' epsilon placement differs most
    ga = [rng.normal(size=5) * 1e-7 for _ in range(3)]
    gb = [None, rng.normal(size=3), rng.normal(size=3)]  # b is skipped in step 1 (a TSA-style freeze)
    cfg = OptimConfig(optimizer="torch_adam", learning_rate=1e-2, beta1=b1, beta2=0.99, epsilon=1e-8,
                      weight_decay=wd)
    va, vb = _steps(make_optimizer(cfg), a0, b0, ga, gb)
    np.testing.assert_allclose(va.numpy(), _torch_adam(a0, ga, 1e-2, b1, 0.99, 1e-8, wd), rtol=1e-6, atol=0)  # the LR variable is float32
    np.testing.assert_allclose(vb.numpy(), _torch_adam(b0, gb, 1e-2, b1, 0.99, 1e-8, wd), rtol=1e-6, atol=0)  # the LR variable is float32
    # Keras' Adam is different on both counts (so the test can fail)
    k = make_optimizer(OptimConfig(optimizer="adam", learning_rate=1e-2, beta1=b1, beta2=0.99, epsilon=1e-8))
    ka, kb = _steps(k, a0, b0, ga, gb)
    assert np.abs(ka.numpy() - va.numpy()).max() > 1e-4  # epsilon placement
    assert np.abs(kb.numpy() - vb.numpy()).max() > 1e-4  # one step count for all


def test_torch_adam_two_replicas_equal_one_and_checkpoint_its_step_counts(tmp_path):
    exp = ToyExperiment()
    exp.optim.optimizer = "torch_adam"
    exp.optim.learning_rate = 1e-2
    a = Trainer(ToyTask(exp), str(tmp_path / "one"), strategy=one_cpu_strategy()).build()
    b = Trainer(ToyTask(exp), str(tmp_path / "two"), strategy=two_cpu_strategy()).build()
    b.models["denoiser"].set_weights(a.models["denoiser"].get_weights())
    for i in range(2):
        batch = make_batch(i, 4, 8, 0.1)
        a.run_step(batch)
        b.run_step(batch)
    for x, y in zip(a.models["denoiser"].get_weights(), b.models["denoiser"].get_weights()):
        np.testing.assert_allclose(x, y, atol=1e-5)
    steps = [float(s.numpy()) for s in a.optimizers["main"]._steps]
    assert steps == [2.0] * len(steps)
    a.save()
    c = Trainer(ToyTask(exp), str(tmp_path / "one"), strategy=one_cpu_strategy())
    assert c.restore() == 2
    assert [float(s.numpy()) for s in c.optimizers["main"]._steps] == steps


def test_group_multiplier_scales_the_initial_lr_not_eta_min():
    cfg = OptimConfig(learning_rate=4e-4, schedule="cosine_restart", periods=(1, 2), restart_weights=(1.0, 0.5),
                      eta_min=1e-4)
    # BasicSR CosineAnnealingRestartLR on a param group with lr 4e-4 * 0.5 (EDVR's dcn_lr_mul)
    assert [schedules.learning_rate(cfg, s, 0.5) for s in range(3)] == pytest.approx([2e-4, 1e-4, 1.25e-4])
    assert [schedules.learning_rate(cfg, s) for s in range(3)] == pytest.approx([4e-4, 1e-4, 1.75e-4])
    assert schedules.learning_rate(cfg, 1, 0.0) == 0.0
