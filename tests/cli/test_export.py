"""`python train/<family>.py` (here the toy task's script) writes config.json, eval.json, TensorBoard events and a
checked export; `tfvr export --workdir` rebuilds the run from config.json via the registry and exports the EMA
weights of the newest checkpoint."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import tests.training.toy  # noqa: F401  (registers the toy task: config.json's task_module is never imported)
from tfvr.cli import main as cli_main

@pytest.fixture(scope="module")
def trained_run(toy_run):
    return toy_run  # tests/conftest.py: one toy train-script run per session, shared with tests/reliability


def test_train_script_writes_the_run(trained_run):
    w, proc = trained_run
    cfg = json.loads((w / "config.json").read_text())
    assert cfg["task"] == "toy_denoise" and cfg["task_module"] == "tests.training.toy"
    assert cfg["model"]["features"] == 6 and cfg["trainer"]["num_steps"] == 3  # command line beats flagfile
    ev = json.loads((w / "eval.json").read_text())
    assert set(ev) == {"psnr", "steps", "seconds"} and ev["steps"] == 3
    assert "psnr" in proc.stdout  # the table
    assert any(n.startswith("events.out.tfevents") for n in os.listdir(w / "tb"))
    assert (w / "export" / "saved_model.pb").exists()


def test_tfvr_export_uses_ema_weights_of_newest_checkpoint(trained_run, tmp_path, capsys):
    w, _ = trained_run
    out = tmp_path / "saved_models" / "toy" / "1"
    assert cli_main(["export", "--workdir", str(w), "--out", str(out)]) == 0
    assert "from step 3" in capsys.readouterr().out
    loaded = tf.saved_model.load(str(out))
    frames = np.random.default_rng(0).integers(0, 256, (1, 12, 10, 3), dtype=np.uint8)
    got = loaded.signatures["serving_default"](frames=tf.constant(frames))["restored"].numpy()

    # the same through the Python API: restore ckpt-3, EMA weights into the model
    from tests.training.toy import ToyExperiment, ToyTask
    from tfvr.config import load_json
    from tfvr.training.loop import Trainer

    exp = load_json(ToyExperiment, w / "config.json")
    t = Trainer(ToyTask(exp), str(w), strategy=tf.distribute.OneDeviceStrategy("/cpu:0")).build()
    assert t.restore() == 3
    module = ToyTask(exp).export_module(t.models)  # (keep a reference: tf.function methods hold self weakly)
    with t.ema.swapped():
        expected = module.serving_default(tf.constant(frames))["restored"].numpy()
    raw = module.serving_default(tf.constant(frames))["restored"].numpy()
    np.testing.assert_array_equal(got, expected)
    assert not np.array_equal(raw, expected)  # EMA differs from the raw weights after 3 steps at decay 0.5


def test_tfvr_export_errors_are_one_line(trained_run, tmp_path, capsys):
    w, _ = trained_run
    assert cli_main(["export", "--workdir", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfvr export: error:") and "no such run folder" in err and len(err.strip().splitlines()) == 1
    assert cli_main(["export", "--workdir", str(w), "--out", str(tmp_path / "o"),
                     "--checkpoint", str(w / "checkpoints" / "ckpt-99")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
    (tmp_path / "o").mkdir()
    assert cli_main(["export", "--workdir", str(w), "--out", str(tmp_path / "o")]) == 2
    assert "already exists" in capsys.readouterr().err
