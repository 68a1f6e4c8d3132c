"""Trainer behaviour in-process: outputs in the workdir, exact resume, rollbacks, guards, corrupt checkpoints,
stages, LR multipliers, mixed precision."""

import glob
import json
import logging
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import one_cpu_strategy
from tests.training.toy import ToyExperiment, ToyTask, make_batch
from tfvr.training.guards import TrainingDiverged
from tfvr.training.loop import Trainer
from tfvr.training.task import OptimizerGroup


def _exp(**trainer):
    e = ToyExperiment()
    e.optim.learning_rate = 1e-2
    e.trainer.log_every = 1
    e.trainer.image_every = 0
    e.trainer.checkpoint_every = 2
    for k, v in trainer.items():
        setattr(e.trainer, k, v)
    return e


def _trainer(exp, workdir, task_cls=ToyTask):
    return Trainer(task_cls(exp), str(workdir), strategy=one_cpu_strategy())


def _metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _tb_tags(workdir):
    tags = set()
    for path in glob.glob(os.path.join(workdir, "tb", "events.out.tfevents.*")):
        for ev in tf.compat.v1.train.summary_iterator(path):
            for v in ev.summary.value:
                tags.add(v.tag)
    return tags


def test_train_writes_outputs_and_resumes_exactly(tmp_path):
    from tests.training.test_hooks import Recorder

    w = tmp_path / "run"
    exp = _exp(num_steps=4, image_every=2, eval_every=2, ema_decay=0.9)
    hooks = []
    t = Trainer(ToyTask(exp), str(w), strategy=one_cpu_strategy(), callbacks=[Recorder(hooks, "cb")])
    res = t.train()
    assert res.step == 4 and res.start_step == 0
    # lifecycle hooks: the start before ckpt-0, then at each eval_every / checkpoint_every step eval, checkpoint
    assert hooks == [("cb", "train_start", 0), ("cb", "checkpoint", 0), ("cb", "eval", 2), ("cb", "checkpoint", 2),
                     ("cb", "eval", 4), ("cb", "checkpoint", 4)]
    ckpts = sorted(os.path.basename(p) for p in t.checkpointer.checkpoints())
    assert ckpts == ["ckpt-0", "ckpt-2", "ckpt-4"]
    tags = _tb_tags(w)
    for tag in ("train/loss", "train/loss/l1", "train/grad_norm/main", "lr/main", "eval/psnr",
                "images/strip", "images/flow"):
        assert tag in tags, tags
    assert [m["step"] for m in _metrics(w) if "loss" in m] == [1, 2, 3, 4]
    weights = [v.numpy() for v in t.models["denoiser"].weights]
    slots = [v.numpy() for v in t.optimizers["main"].variables]
    ema = [v.numpy() for v in t.ema.shadow]

    # a new process (here: a new Trainer) on the same workdir restores everything and continues at step 4
    exp2 = _exp(num_steps=6, ema_decay=0.9)
    hooks.clear()
    t2 = Trainer(ToyTask(exp2), str(w), strategy=one_cpu_strategy(), callbacks=[Recorder(hooks, "cb")]).build()
    assert t2.restore() == 4
    for a, b in zip(weights, t2.models["denoiser"].weights):
        np.testing.assert_array_equal(a, b.numpy())
    for a, b in zip(slots, t2.optimizers["main"].variables):
        np.testing.assert_array_equal(a, b.numpy())
    for a, b in zip(ema, t2.ema.shadow):
        np.testing.assert_array_equal(a, b.numpy())
    res2 = t2.train()
    assert (res2.start_step, res2.step) == (4, 6)
    assert int(t2.optimizers["main"].iterations.numpy()) == 6
    assert [m["step"] for m in _metrics(w) if "loss" in m] == [1, 2, 3, 4, 5, 6]
    assert hooks == [("cb", "train_start", 4), ("cb", "checkpoint", 6)]  # resumed: no ckpt-0; eval_every is 0
    hooks.clear()
    assert t2.train().step == 6 and hooks == []  # already trained: no hook


def test_nan_rolls_back_lowers_lr_and_recovers(tmp_path, caplog):
    exp = _exp(num_steps=5, nan_lr_factor=0.5)
    exp.model.nan_at_step = 3
    exp.model.nan_while_lr_above = 0.9e-2  # diverges at step 3 only while the LR is 1e-2
    t = _trainer(exp, tmp_path)
    with caplog.at_level(logging.WARNING, logger="tfvr.training"):
        res = t.train()
    assert res.step == 5 and res.rollbacks == 1
    assert "non-finite value (loss" in caplog.text and "at step 3" in caplog.text and "restored ckpt-2" in caplog.text
    assert t.learning_rates()["main"] == pytest.approx(0.5e-2)
    events = [m for m in _metrics(tmp_path) if m.get("event") == "rollback"]
    assert len(events) == 1 and events[0]["step"] == 2
    assert all(np.all(np.isfinite(v.numpy())) for v in t.models["denoiser"].weights)
    # the lowered LR and the failure count are saved with the checkpoints
    t2 = _trainer(exp, tmp_path).build()
    t2.restore()
    assert t2.guard_state.snapshot()["nan_failures"] == 1
    assert t2.learning_rates()["main"] == pytest.approx(0.5e-2)


def test_nan_stops_after_k_failures(tmp_path):
    exp = _exp(num_steps=5, max_nan_failures=2)
    exp.model.nan_at_step = 1  # always
    t = _trainer(exp, tmp_path)
    with pytest.raises(TrainingDiverged, match=r"non-finite value \(loss.*at step 1.*rolled back 2 times already \(limit 2\)"):
        t.train()


def test_metric_guard_warns_and_rolls_back(tmp_path, caplog):
    exp = _exp(num_steps=2)
    exp.model.guard_key_value = 60.0  # above warn_above=50 only
    with caplog.at_level(logging.WARNING, logger="tfvr.training"):
        assert _trainer(exp, tmp_path / "warn").train().step == 2
    assert "guard: offset/fake = 60 above 50" in caplog.text
    exp.model.guard_key_value = 150.0  # above rollback_above=100: rolls back, lowers LR, stops after 2
    with pytest.raises(TrainingDiverged, match="offset/fake = 150 > 100"):
        _trainer(exp, tmp_path / "roll").train()


def test_unreadable_newest_checkpoint_is_skipped(tmp_path, caplog):
    t = _trainer(_exp(num_steps=4), tmp_path)
    t.train()
    ckpt_dir = tmp_path / "checkpoints"
    # a half-written save that never made it into the checkpoint list
    (ckpt_dir / "ckpt-6.index").write_bytes(b"garbage")
    (ckpt_dir / "ckpt-6.data-00000-of-00001").write_bytes(b"")
    # and a listed checkpoint whose data file got truncated
    data = ckpt_dir / "ckpt-4.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:50])
    t2 = _trainer(_exp(num_steps=4), tmp_path).build()
    with caplog.at_level(logging.WARNING, logger="tfvr.training"):
        assert t2.restore() == 2
    assert "ckpt-4 is unreadable" in caplog.text


def test_stage_trains_only_the_chosen_variables(tmp_path):
    exp = _exp(num_steps=3)
    exp.model.warmup_only_last_steps = 2
    t = _trainer(exp, tmp_path).build()
    m = t.models["denoiser"]
    c1 = m.get_layer("c1").kernel.numpy().copy()
    c3 = m.get_layer("c3").kernel.numpy().copy()
    for i in range(2):
        t.run_step(make_batch(i, 4, 8, 0.1))
    np.testing.assert_array_equal(c1, m.get_layer("c1").kernel.numpy())
    assert not np.allclose(c3, m.get_layer("c3").kernel.numpy())
    t.run_step(make_batch(5, 4, 8, 0.1))
    assert not np.allclose(c1, m.get_layer("c1").kernel.numpy())


class TensorIfTask(ToyTask):
    """A train step with a Python `if` on a tensor: what AutoGraph (`Task.autograph`, default True) turns into
    graph control flow; with it off the trace must fail loudly instead of taking one branch."""

    def train_step(self, batch, models, ctx):
        logs = super().train_step(batch, models, ctx)
        if logs["loss"] > 1e9:  # a tensor condition: tf.cond under AutoGraph
            logs["loss"] = logs["loss"] * 0.0
        return logs


def test_task_autograph_switch(tmp_path):
    assert ToyTask.autograph is True  # a user's task gets tf.function's default
    t = _trainer(_exp(num_steps=1), tmp_path / "on", TensorIfTask).build()
    assert np.isfinite(t.run_step(make_batch(0, 4, 8, 0.1))["loss"])
    off = type("TensorIfNoAutograph", (TensorIfTask,), {"autograph": False})
    t = _trainer(_exp(num_steps=1), tmp_path / "off", off).build()
    with pytest.raises(TypeError, match="tf.Tensor"):
        t.run_step(make_batch(0, 4, 8, 0.1))
    from tfvr.models.edvr.task import EDVRTask
    from tfvr.models.memvsr.task import MemVSRNextFrameTask, MemVSRVSRTask
    from tfvr.models.sttn_inpaint.task import STTNInpaintTask
    from tfvr.models.sttn_restore.task import STTNRestoreTask
    from tfvr.models.vid2vid.task import Vid2VidTask

    # the families' steps are traced as written (their own step tests run them so)
    assert not any(c.autograph for c in (EDVRTask, STTNInpaintTask, STTNRestoreTask, Vid2VidTask,
                                         MemVSRNextFrameTask, MemVSRVSRTask))


class TwoGroupTask(ToyTask):
    """The first conv in its own group with LR multiplier 0 (EDVR's offset convs get e.g. 0.25)."""

    def optimizer_groups(self, models):
        m = models["denoiser"]
        first = m.get_layer("c1").trainable_variables
        rest = [v for v in m.trainable_variables if all(v is not f for f in first)]
        return [OptimizerGroup("main", rest, self.config.optim),
                OptimizerGroup("offset", first, self.config.optim, lr_multiplier=0.0)]


def test_lr_multiplier_per_group(tmp_path):
    exp = _exp(num_steps=2)
    exp.optim.schedule = "step"
    exp.optim.milestones = (1,)
    exp.optim.gamma = 0.1
    t = _trainer(exp, tmp_path, TwoGroupTask).build()
    assert t.learning_rates(0) == {"main": pytest.approx(1e-2), "offset": 0.0}
    assert t.learning_rates(1)["main"] == pytest.approx(1e-3)
    c1 = t.models["denoiser"].get_layer("c1").kernel.numpy().copy()
    logs = t.run_step(make_batch(0, 4, 8, 0.1))
    assert "grad_norm/offset" in logs and "grad_norm/main" in logs
    np.testing.assert_array_equal(c1, t.models["denoiser"].get_layer("c1").kernel.numpy())


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_step(tmp_path, precision):
    import keras

    exp = _exp(num_steps=1)
    exp.runtime.precision = precision
    try:
        t = _trainer(exp, tmp_path).build()
        assert t.models["denoiser"].get_layer("c1").compute_dtype == precision.split("_")[1]
        if precision == "mixed_float16":
            assert isinstance(t.optimizers["main"], keras.optimizers.LossScaleOptimizer)
        before = t.models["denoiser"].get_layer("c1").kernel.numpy().copy()
        logs = t.run_step(make_batch(0, 4, 8, 0.1))
        assert np.isfinite(logs["loss"])
        assert not np.allclose(before, t.models["denoiser"].get_layer("c1").kernel.numpy())
        assert t.models["denoiser"].get_layer("c1").kernel.dtype == "float32"
    finally:
        keras.config.set_dtype_policy("float32")


def test_runtime_deterministic_enables_op_determinism_before_the_models_are_built(tmp_path):
    from tensorflow.python.framework import config as tf_config

    assert not tf_config.is_op_determinism_enabled()
    _trainer(_exp(num_steps=1), tmp_path / "default").build()
    assert not tf_config.is_op_determinism_enabled()  # off unless asked for
    from tfvr.training.loop import ADDRESS_DEPENDENT_PASSES

    exp = _exp(num_steps=1)
    exp.runtime.deterministic = True
    seen = []
    options = tf.config.optimizer.get_experimental_options()
    assert not any(options.get(name) is False for name in ADDRESS_DEPENDENT_PASSES)
    try:
        class Probe(ToyTask):
            def build_models(self):
                passes = tf.config.optimizer.get_experimental_options()
                seen.append((tf_config.is_op_determinism_enabled(), [passes.get(n) for n in ADDRESS_DEPENDENT_PASSES]))
                return super().build_models()

        t = _trainer(exp, tmp_path / "det", task_cls=Probe).build()
        assert seen == [(True, [False] * len(ADDRESS_DEPENDENT_PASSES))]
        assert np.isfinite(t.run_step(make_batch(0, 4, 8, 0.1))["loss"])
    finally:
        tf_config.disable_op_determinism()  # process-wide: the other tests of this worker run without it
        tf.config.optimizer.set_experimental_options({n: options.get(n, True) for n in ADDRESS_DEPENDENT_PASSES})
