"""export.saved_model: a SavedModel is kept only if it reloads and matches in a fresh process without tfvr."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from tests.training.toy import make_denoiser
from tfvr.export.saved_model import ExportError, example_inputs, export, find_signatures


class Serving(tf.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="frames")])
    def serving_default(self, frames):
        y = self.model(tf.cast(frames, tf.float32) / 255.0, training=False)
        return {"restored": tf.cast(tf.round(tf.clip_by_value(y, 0.0, 1.0) * 255.0), tf.uint8)}


def test_export_reload_check_and_keep(tmp_path):
    module = Serving(make_denoiser(4))
    assert list(find_signatures(module)) == ["serving_default"]
    ex = example_inputs(module.serving_default)
    assert ex["frames"].shape == (1, 32, 32, 3) and ex["frames"].dtype == np.uint8
    out = tmp_path / "saved_models" / "toy" / "1"
    assert export(module, str(out)) == str(out)
    # traced once: the in-process check runs the trace that tf.saved_model.save then finds (no second trace)
    assert module.serving_default.experimental_get_tracing_count() == 1
    assert (out / "saved_model.pb").exists()
    assert os.listdir(out.parent) == ["1"]  # no temporary folder left
    loaded = tf.saved_model.load(str(out))
    frames = np.random.default_rng(1).integers(0, 256, (2, 9, 13, 3), dtype=np.uint8)
    np.testing.assert_array_equal(loaded.signatures["serving_default"](frames=tf.constant(frames))["restored"],
                                  module.serving_default(tf.constant(frames))["restored"])
    cli = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(os.path.realpath(os.sys.executable)),
                                                          "saved_model_cli")
    if os.path.exists(cli):
        show = subprocess.run([cli, "show", "--dir", str(out), "--all"], capture_output=True, text=True, timeout=120)
        assert "serving_default" in show.stdout and "(-1, -1, -1, 3)" in show.stdout, show.stdout[-2000:]
    # an existing version folder is not replaced unless asked
    with pytest.raises(ExportError, match="already exists"):
        export(module, str(out))


class PyFunctionModule(tf.Module):
    """Runs in-process, but its graph calls back into this Python process: a fresh process cannot run it."""

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def serving_default(self, x):
        return {"y": tf.py_function(lambda t: t * 2.0, [x], tf.float32)}


class StatefulModule(tf.Module):
    """Its output depends on how often it was called: the reloaded model answers differently."""

    def __init__(self):
        super().__init__()
        self.calls = tf.Variable(0.0)

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def serving_default(self, x):
        return {"y": x + self.calls.assign_add(1.0)}


@pytest.mark.parametrize("module_cls,reason", [
    (PyFunctionModule, "does not load and run in a fresh process"),
    (StatefulModule, "differs"),
])
def test_export_refuses_models_that_fail_the_reload_check(tmp_path, module_cls, reason):
    out = tmp_path / "m" / "1"
    with pytest.raises(ExportError, match=reason):
        export(module_cls(), str(out))
    assert not out.exists()
    assert os.listdir(tmp_path / "m") == []  # the temporary SavedModel is gone too
