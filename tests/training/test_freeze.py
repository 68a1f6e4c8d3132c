"""`trainer.freeze`: frozen variables stay unchanged after training steps, every other variable changes (EDVR: with
`model.dcn_mode="conv"` initialised from DCN weights, seed 001's "DCN -> plain conv, then freeze")."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvr.config import Experiment
from tfvr.errors import ConfigError
from tfvr.training.loop import Trainer
from tfvr.training.task import OptimizerGroup, Task

from tests.models.edvr.test_task import FakeDataTask, _experiment, _values


def _changed(before, after):
    return {k for k in before if not np.array_equal(before[k], after[k])}


def test_edvr_freeze_groups_and_patterns(tmp_path):
    # Seed 001's workaround in one run: a model with model.dcn_mode="conv" (plain convs in the PCD DCNs' place)
    # initialised from a DCN EDVR's weights, trained with the alignment ("pcd") frozen.
    from tfvr.models.edvr import to_basicsr
    from tfvr.models.edvr.config import EDVRConfig

    from tests.models.edvr.test_dcn_mode import unit_mask_dcn_model
    from tests.models.edvr.test_task import TINY

    dcn = unit_mask_dcn_model()
    np.savez(tmp_path / "dcn.npz", **to_basicsr(dcn))
    cfg = _experiment(init_from=str(tmp_path / "dcn.npz"))
    cfg.model = EDVRConfig(**TINY, dcn_mode="conv")
    cfg.optim = dataclasses.replace(cfg.optim, learning_rate=1e-2, schedule="constant", periods=(),
                                    restart_weights=())
    cfg.trainer.freeze = ("pcd", "edvr/upconv1/*")
    trainer = Trainer(FakeDataTask(cfg), str(tmp_path / "run")).build()
    model = trainer.models["edvr"]
    before = _values(model)
    trainer.train()
    after = _values(model)
    frozen = {v.path for v in model.pcd_align.trainable_variables} | {v.path for v in
                                                                      model.upconv1.trainable_variables}
    assert frozen and frozen < set(before)
    changed = _changed(before, after)
    assert not (changed & frozen), sorted(changed & frozen)[:3]  # frozen: bit-identical
    assert changed == set(before) - frozen  # everything else trained
    for name, layer in model.dcn_packs().items():  # the frozen plain convs still hold the DCNs' main weights
        np.testing.assert_array_equal(layer.kernel.numpy(), dcn.dcn_layers()[name].kernel.numpy())
    # No optimizer slots for the frozen variables.
    n_vars = sum(len(g.variables) for g in trainer.groups.values())
    assert n_vars == len(before) - len(frozen)


def test_freeze_errors(tmp_path):
    cfg = _experiment()
    cfg.trainer.freeze = ("pdc",)
    with pytest.raises(ConfigError, match="trainer.freeze: 'pdc' is neither a layer group"):
        Trainer(FakeDataTask(cfg), str(tmp_path / "a")).build()
    cfg.trainer.freeze = ("edvr",)
    with pytest.raises(ConfigError, match="freezes every trainable variable"):
        Trainer(FakeDataTask(cfg), str(tmp_path / "b")).build()


@dataclasses.dataclass
class _TwoNetExperiment(Experiment):
    pass


class _TwoNetTask(Task):
    """Two tiny nets with their own optimizer groups, each updated by its own minimize() call (like a GAN)."""

    name = "freeze_two_net_test"
    experiment_cls = _TwoNetExperiment

    def build_models(self):
        a, b = keras.Sequential([keras.layers.Dense(3)], name="a"), keras.Sequential([keras.layers.Dense(3)], name="b")
        a.build((None, 4))
        b.build((None, 3))
        return {"a": a, "b": b}

    def optimizer_groups(self, models):
        return [OptimizerGroup("ga", models["a"].trainable_variables, self.config.optim),
                OptimizerGroup("gb", models["b"].trainable_variables, self.config.optim)]

    def build_train_dataset(self, input_context, seed):
        x = np.random.default_rng(seed).normal(size=(8, 4)).astype(np.float32)
        return tf.data.Dataset.from_tensor_slices({"x": x}).batch(2).repeat()

    def train_step(self, batch, models, ctx):
        with tf.GradientTape(persistent=True) as tape:
            y = models["b"](models["a"](batch["x"]))
            loss = tf.reduce_mean(tf.square(y - 1.0))
        ctx.minimize(tape, loss, groups="gb")
        ctx.minimize(tape, loss, groups="ga")
        return {"loss": loss}


def test_a_whole_frozen_model_skips_its_update(tmp_path):
    cfg = _TwoNetExperiment()
    cfg.optim.learning_rate = 0.1
    cfg.trainer = dataclasses.replace(cfg.trainer, num_steps=2, checkpoint_every=0, log_every=1, image_every=0,
                                      export=False, eval_at_end=False, progress_bar=False, freeze=("b",))
    cfg.runtime.strategy = "one_device"
    trainer = Trainer(_TwoNetTask(cfg), str(tmp_path / "run")).build()
    a0 = [w.numpy().copy() for w in trainer.models["a"].weights]
    b0 = [w.numpy().copy() for w in trainer.models["b"].weights]
    trainer.train()
    assert all(np.array_equal(x, w.numpy()) for x, w in zip(b0, trainer.models["b"].weights))
    assert all(not np.array_equal(x, w.numpy()) for x, w in zip(a0, trainer.models["a"].weights))
