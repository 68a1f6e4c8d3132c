"""A model family defined entirely in this file and registered in one line (what CONTRIBUTING_MODELS.md shows):
trained 2 steps by the real Trainer on generated data, checkpointed, rebuilt with `restore_models`, exported with
its serving module saved and reloaded, opened from the workdir by `tfvr.inference` (what `tfvr evaluate --model
WORKDIR` does) and found by the registry."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

import keras

from tfvr import losses, registry
from tfvr.config import Experiment
from tfvr.family import Family
from tfvr.training.task import Task


# -- 1. the network: a Keras model whose constructor arguments are its get_config() ----------------------------
@keras.saving.register_keras_serializable(package="toy_family")
class ToyNet(keras.Model):
    """Restores the centre frame of a window [B, T, H, W, 3]: centre + a small conv residual."""

    def __init__(self, num_frame: int = 3, features: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.num_frame, self.features = int(num_frame), int(features)
        self.scale, self.size_multiple = 1, 1  # what the restoration serving module asks of a model
        self.c1 = keras.layers.Conv2D(features, 3, padding="same", activation="relu")
        self.c2 = keras.layers.Conv2D(3, 3, padding="same")

    def call(self, frames, training=False):
        b, t, h, w = tf.shape(frames)[0], self.num_frame, tf.shape(frames)[2], tf.shape(frames)[3]
        stacked = tf.reshape(tf.transpose(frames, [0, 2, 3, 1, 4]), [b, h, w, t * 3])
        return frames[:, t // 2] + self.c2(self.c1(stacked))

    def get_config(self):
        return {**super().get_config(), "num_frame": self.num_frame, "features": self.features}


# -- 2. the experiment config: model / data sections (+ the trainer / optim / runtime sections of Experiment) ---
@dataclasses.dataclass
class ToyNetConfig:
    num_frame: int = 3
    features: int = 4


@dataclasses.dataclass
class ToyData:
    batch_size: int = 2
    size: int = 8  # frames are size x size, noise sigma NOISE


@dataclasses.dataclass
class ToyFamilyExperiment(Experiment):
    model: ToyNetConfig = dataclasses.field(default_factory=ToyNetConfig)
    data: ToyData = dataclasses.field(default_factory=ToyData)


NOISE = 0.1


def _batch(seed: int, n: int, t: int, size: int, noise: float = NOISE):
    rng = np.random.default_rng(seed)
    clean = np.repeat(rng.uniform(0, 1, (n, 1, size, size, 3)), t, axis=1).astype(np.float32)
    return {"lq": clean + rng.normal(0, noise, clean.shape).astype(np.float32), "gt": clean[:, t // 2]}


# -- 3. the Task ----------------------------------------------------------------------------------------------

class ToyFamilyTask(Task):
    name = "toy_family"
    experiment_cls = ToyFamilyExperiment

    def build_models(self):
        net = ToyNet(**dataclasses.asdict(self.config.model), name="net")
        net(tf.zeros([1, self.config.model.num_frame, 8, 8, 3]))
        return {"net": net}

    def build_train_dataset(self, input_context, seed):
        d, t = self.config.data, self.config.model.num_frame
        b = _batch(int(seed), input_context.get_per_replica_batch_size(d.batch_size), t, d.size)
        return tf.data.Dataset.from_tensors(b).repeat()

    def train_step(self, batch, models, ctx):
        with tf.GradientTape() as tape:
            loss = losses.charbonnier(models["net"](batch["lq"], training=True), batch["gt"])
        ctx.minimize(tape, loss)
        return {"loss": loss}

    def evaluate(self, models):
        b = _batch(7, 2, self.config.model.num_frame, self.config.data.size)
        mse = float(np.mean((np.clip(models["net"](b["lq"]).numpy(), 0, 1) - b["gt"]) ** 2))
        return {"psnr": 10 * np.log10(1 / max(mse, 1e-12))}

    def export_module(self, models):
        from tfvr.export.restoration import RestorationModule

        net = models["net"]
        return RestorationModule(net, num_frames=net.num_frame, family="toy_family",
                                 model_config=dataclasses.asdict(self.config.model))

    def export_signatures(self, module):
        return module.signatures()

    def export_examples(self, module):
        return module.examples(height=9, width=7)


# -- 4. registration: the one line (inside tfvr: `tfvr/models/toy_family/family.py` + a line in tfvr/models) --
TOY = registry.register_family(Family(name="toy_family", tasks={"toy_family": ToyFamilyTask},
                                      experiment=ToyFamilyExperiment, model_classes=(ToyNet,), serving="restoration"))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tfvr.training import app

    cfg = ToyFamilyExperiment()
    cfg.trainer.num_steps, cfg.trainer.checkpoint_every, cfg.trainer.ema_decay = 2, 2, 0.5
    cfg.trainer.log_every, cfg.trainer.eval_every, cfg.trainer.image_every = 1, 0, 0
    cfg.trainer.export, cfg.trainer.eval_at_end, cfg.trainer.progress_bar = False, True, False
    cfg.optim.learning_rate = 1e-2
    w = tmp_path_factory.mktemp("toy_family") / "run"
    payload = app.train_and_export(ToyFamilyTask, cfg, str(w))
    return w, payload


def test_toy_family_is_found_by_the_registry():
    assert "toy_family" in registry.list_tasks() and registry.get_task("toy_family") is ToyFamilyTask
    assert registry.family("toy_family") is TOY and registry.serving_kind("toy_family") == "restoration"
    assert registry.model_class(f"{ToyNet.__module__}.ToyNet") is ToyNet
    assert registry.family_of_model(ToyNet()) is TOY
    assert "toy_family" not in registry.converter_names()  # no PyTorch converter declared


def test_trained_checkpointed_restored_and_exported(run, tmp_path):
    from tfvr.training.checkpoints import restore_models

    w, payload = run
    cfg = json.loads((w / "config.json").read_text())
    assert cfg["task"] == "toy_family" and payload["steps"] == 2 and np.isfinite(payload["psnr"])
    ema = restore_models(w)  # no optimizer, no Trainer
    raw = restore_models(w, ema=False)
    assert ema.step == raw.step == 2 and ema.path.endswith("ckpt-2") and ema.ema and not raw.ema
    assert isinstance(ema.task, ToyFamilyTask) and set(ema.models) == {"net"}
    assert not any(np.array_equal(a, b) for a, b in zip(ema.models["net"].get_weights(),
                                                       raw.models["net"].get_weights()))
    fresh = ToyFamilyTask(ToyFamilyExperiment()).build_models()["net"]
    assert not np.array_equal(fresh.get_weights()[0], raw.models["net"].get_weights()[0])  # it did train

    # export: the family's serving module, saved and reloaded (`tfvr export --workdir` on a run, with its
    # fresh-process reload check, is tests/cli/test_export.py; it calls the same restore_models + export_module)
    module = ema.task.export_module(ema.models)
    tf.saved_model.save(module, str(tmp_path / "export"), signatures=ema.task.export_signatures(module))
    frames = np.random.default_rng(0).integers(0, 256, (1, 3, 9, 7, 3), dtype=np.uint8)
    got = tf.saved_model.load(str(tmp_path / "export")).signatures["serving_default"](frames=tf.constant(frames))
    want = module.serve(tf.constant(frames))["restored"].numpy()
    np.testing.assert_array_equal(got["restored"].numpy(), want)

    from tfvr.inference.client import open_model

    client = open_model(w, "restoration", allow_workdir=True)  # what `tfvr evaluate --model WORKDIR` opens
    assert client.num_frames == 3 and client.scale == 1
    np.testing.assert_array_equal(client.restore(frames), want)  # the EMA weights


def test_restore_models_errors_are_one_line(run, tmp_path):
    from tfvr.errors import UserError
    from tfvr.training.checkpoints import restore_models

    w, _ = run
    with pytest.raises(UserError, match="no such run folder"):
        restore_models(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"config.json: no such file"):
        restore_models(tmp_path / "empty")
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "config.json").write_text((w / "config.json").read_text())
    with pytest.raises(UserError, match="no checkpoint"):
        restore_models(tmp_path / "fresh")
    with pytest.raises(UserError, match="no such checkpoint"):
        restore_models(w, str(w / "checkpoints" / "ckpt-9"))
    cut = tmp_path / "cut"
    (cut / "checkpoints").mkdir(parents=True)
    (cut / "config.json").write_text((w / "config.json").read_text())
    for f in (w / "checkpoints").iterdir():
        if f.name.startswith("ckpt-2") or f.name == "checkpoint":
            data = f.read_bytes()
            (cut / "checkpoints" / f.name).write_bytes(data[: len(data) // 3] if ".data-" in f.name else data)
    with pytest.raises(UserError, match="none is readable|unreadable") as e:
        restore_models(cut)
    assert "\n" not in str(e.value)
