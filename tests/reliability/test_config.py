"""Issue 12 case 8 (config.json's "task_module" and a converted-weights sidecar's "class" are resolved only through
the registry: nothing a file names is imported, also not by `python -m tfvr.cli` run inside the workdir) and
case 11 (out-of-range config values refused before the workdir is created)."""

import json

import pytest

from tests.reliability._fs import one_error_line, tfvr
from tfvr import registry
from tfvr.config import validate_experiment
from tfvr.errors import ConfigError

EVIL = "import pathlib; pathlib.Path({marker!r}).write_text('imported')\n"


def _hostile_workdir(tmp_path, **config):
    w = tmp_path / "W"
    (w / "checkpoints").mkdir(parents=True)
    marker = tmp_path / "pwned"
    for mod in ("evil", "tensorflow", "argparse", "json"):  # a module of its own, and shadows of what tfvr imports
        (w / f"{mod}.py").write_text(EVIL.format(marker=str(marker)))
    (w / "config.json").write_text(json.dumps(config))
    return w, marker


@pytest.mark.parametrize("task,module", [("evil_task", "evil"), ("os", "os"), ("x", "subprocess")])
def test_config_json_task_module_is_never_imported(tmp_path, task, module):
    w, marker = _hostile_workdir(tmp_path, task=task, task_module=module)
    r = tfvr("export", "--workdir", ".", "--out", tmp_path / "out", cwd=w)  # run inside the workdir
    assert r.returncode == 2, r.stderr[-3000:]
    line = one_error_line(r.stderr, "tfvr export")
    assert "config.json" in line and f"unknown task {task!r}" in line and repr(module) in line, line
    assert not marker.exists(), "a module shipped in the workdir was executed"


def test_registry_resolves_only_registered_names(tmp_path):
    with pytest.raises(ConfigError, match=r"w/config.json: unknown task 'os'"):
        registry.get_task("os", "os", source="w/config.json")
    with pytest.raises(ConfigError, match="must be a task name"):
        registry.get_task(["edvr"], source="c")
    assert registry.get_task("edvr", "anything.at.all").name == "edvr"  # the module string is not imported
    for value in ("os.system", "subprocess.Popen", "evil.Model", 5, None, "tfvr.models.edvr.model.PCDAlignment"):
        with pytest.raises(ConfigError, match=r"is not a tfvr model class \(known: .*\); nothing was imported"):
            registry.model_class(value, source="m.config.json")
    import keras

    for name in registry.model_class_names():  # every listed class exists and is a Keras model
        assert issubclass(registry.model_class(name), keras.Model)


def test_converted_sidecar_class_is_resolved_through_the_registry(tmp_path, monkeypatch):
    from tfvr.cli.convert_weights import load_converted

    monkeypatch.syspath_prepend(str(tmp_path))
    marker = tmp_path / "pwned"
    (tmp_path / "evil.py").write_text(EVIL.format(marker=str(marker)))
    weights = tmp_path / "m.weights.h5"
    weights.write_bytes(b"\x89HDF\r\n\x1a\n")
    (tmp_path / "m.config.json").write_text(json.dumps({"class": "evil.Model", "config": {}}))
    with pytest.raises(ConfigError, match=r"m.config.json: \"class\" 'evil.Model' is not a tfvr model class"):
        load_converted(weights)
    assert not marker.exists()


@pytest.mark.parametrize("path,value,field", [
    ("trainer.num_steps", -5, "trainer.num_steps"),
    ("trainer.num_steps", 0, "trainer.num_steps"),
    ("trainer.keep_checkpoints", 0, "trainer.keep_checkpoints"),
    ("trainer.ema_decay", 1.0, "trainer.ema_decay"),
    ("trainer.log_every", -1, "trainer.log_every"),
    ("optim.learning_rate", float("nan"), "optim.learning_rate"),
    ("optim.beta1", 1.5, "optim.beta1"),
    ("optim.optimizer", "adamm", "optim.optimizer"),
    ("runtime.precision", "float8", "runtime.precision"),
    ("data.batch_size", 0, "data.batch_size"),
    ("data.num_frames", 4, "data.num_frames"),
])
def test_every_config_group_is_range_checked(path, value, field):
    from tfvr.models.sttn_restore.task import STTNRestoreTask

    exp = STTNRestoreTask.experiment_cls()
    group, name = path.split(".")
    setattr(getattr(exp, group), name, value)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        validate_experiment(exp)


def test_bad_batch_size_is_refused_before_the_workdir_exists(tmp_path):
    """The issue's `batch_size=0` on a real family: refused with one line, the workdir never created."""
    import os
    import subprocess
    import sys

    from tests.helpers import REPO

    w = tmp_path / "never"
    r = subprocess.run([sys.executable, str(REPO / "train" / "sttn.py"), f"--workdir={w}",
                        "--config.data.batch_size=0"], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)})
    assert r.returncode == 2, r.stderr[-3000:]
    line = one_error_line(r.stderr, "sttn.py")
    assert "data.batch_size" in line and "must be >= 1" in line, line
    assert not w.exists()
