"""Helpers shared by the tests: where the golden files are, small factories."""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# ../shared next to the checkout (CI clones main with shared/ beside it); TFVR_SHARED overrides.
SHARED = Path(os.environ.get("TFVR_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "golden"
# Under CI (CI=true, as .ci/run is started) a missing prerequisite - golden file, shared data, the compiled
# kernel - fails the run instead of skipping: a green CI must mean every parity check ran.
STRICT = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str):
    """Skips the calling test with `reason`; under CI (`STRICT`) fails it instead."""
    if STRICT:
        pytest.fail(f"required under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def golden(name: str) -> dict[str, np.ndarray]:
    """Loads ../shared/golden/<name>.npz into a dict; skips the test (with the reason) if it is absent."""
    path = GOLDEN / f"{name}.npz"
    if not path.exists():
        unavailable(f"golden file {path} not found (set TFVR_SHARED to the shared/ folder)")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def golden_weights(arrays: dict[str, np.ndarray], prefix: str = "w/") -> dict[str, np.ndarray]:
    """The `w/<state_dict key>` entries of a golden file as float32, keyed by state-dict name."""
    return {k[len(prefix):]: v.astype(np.float32) for k, v in arrays.items() if k.startswith(prefix)}


def two_cpu_strategy():
    """MirroredStrategy over the 2 logical CPU devices that conftest.py creates.

    Each call gets collective keys of its own (`tfvr.training.strategy.mirrored_strategy`): two plain
    MirroredStrategy objects in one process share keys, and the second one's all-reduces fail with "Shape mismatch
    in the collective instance 100" when their shapes differ from the first one's.
    """
    from tfvr.training.strategy import mirrored_strategy

    return mirrored_strategy(["/cpu:0", "/cpu:1"])


def one_cpu_strategy():
    import tensorflow as tf

    return tf.distribute.OneDeviceStrategy("/cpu:0")


# ----------------------------------------------------------------------------------------------------------------
# The shared test harness (keras-hub's `run_*_test` habit): one body for the checks every family repeats.


def _flat_outputs(x) -> list[np.ndarray]:
    import tensorflow as tf

    return [np.asarray(v) for v in tf.nest.flatten(x) if v is not None]


def _shape_of(out, key):
    return tuple((out[key] if key is not None else out).shape)


def run_model_test(cls, config, inputs, expected_output_shape=None, *, tmp_path, call_kwargs=None,
                   output_key=None, param_count=None, variable_hw=True, hw_axes=None, atol=1e-5,
                   check_defaults=True):
    """The checks every network class gets (returns the built model and its output on `inputs`):

    - config = constructor: when `config` is a dataclass instance, its fields are `cls.__init__`'s arguments in
      order (`check_defaults`: with the same defaults), and `cls(**asdict(config))` builds the model (else
      `config` is the kwargs);
    - `get_config()` holds every constructor argument with its value, and `from_config(get_config())` gives the
      same config back;
    - the output on `inputs` has `expected_output_shape` (of `out[output_key]` when given);
    - a `.keras` round trip (`tfvr.models.saving.load_model`) gives the same class, config, weights and outputs
      (bit for bit);
    - `param_count`, when given, is `count_params()`;
    - `variable_hw`: traced once with unknown height and width (the axes `hw_axes`, one pair per input, default
      the two before the channel axis), the graph gives the eager outputs on `inputs` (to `atol`).
    """
    import inspect

    import tensorflow as tf

    call_kwargs = call_kwargs or {}
    if dataclasses.is_dataclass(config):
        fields = [f.name for f in dataclasses.fields(config)]
        sig = inspect.signature(cls.__init__).parameters
        params = [p for p, v in sig.items() if p != "self" and v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)]
        assert fields == params, f"{cls.__name__}: config fields {fields} != constructor arguments {params}"
        defaults = {p: sig[p].default for p in params}
        if check_defaults:
            assert defaults == dataclasses.asdict(type(config)()), f"{cls.__name__}: defaults differ from the config's"
        kwargs = dataclasses.asdict(config)
    else:
        kwargs = dict(config)
    model = cls(**kwargs)
    out = model(*inputs, **call_kwargs)
    if expected_output_shape is not None:
        assert _shape_of(out, output_key) == tuple(expected_output_shape), _shape_of(out, output_key)
    cfg = model.get_config()
    lost = {k: (v, cfg.get(k, "<missing>")) for k, v in kwargs.items() if k not in cfg or cfg[k] != v}
    assert not lost, f"{cls.__name__}.get_config() lost constructor arguments (given, got): {lost}"
    assert cls.from_config(cfg).get_config() == cfg
    if param_count is not None:
        assert model.count_params() == param_count, (model.count_params(), param_count)

    before = _flat_outputs(out)
    check_keras_round_trip(model, inputs, call_kwargs, Path(tmp_path) / f"{cls.__name__}.keras", before=before)

    if variable_hw:
        arrays = [np.asarray(x) for x in inputs]
        axes = hw_axes or [(x.ndim - 3, x.ndim - 2) for x in arrays]
        specs = [tf.TensorSpec([None if i in ax else d for i, d in enumerate(x.shape)], tf.as_dtype(x.dtype))
                 for x, ax in zip(arrays, axes)]
        fn = tf.function(lambda *a: model(*a, **call_kwargs), input_signature=specs)
        traced = _flat_outputs(fn(*arrays))
        for a, b in zip(before, traced):
            np.testing.assert_allclose(b, a, atol=atol)
    return model, out


def check_keras_round_trip(model, args, kwargs, path, *, before=None):
    """`model.save(path)` then `tfvr.models.saving.load_model(path)`: the same class, config, weights (bit for bit)
    and outputs on `model(*args, **kwargs)` (`before`: those outputs, when already computed). Returns the copy."""
    from tfvr.models.saving import load_model

    before = _flat_outputs(model(*args, **kwargs)) if before is None else before
    model.save(str(path))
    loaded = load_model(str(path))
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=a.path)
    after = _flat_outputs(loaded(*args, **kwargs))
    assert len(after) == len(before)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)
    return loaded


def check_config_errors(task_cls, make_config, cases):
    """For each `(field, value, message)`: `make_config()` with the dotted `field` set to `value` makes
    `task_cls(config)` raise `ConfigError` matching `message` (one line naming the problem)."""
    from tfvr.errors import ConfigError

    for field, value, message in cases:
        config = make_config()
        *parents, leaf = field.split(".")
        holder = config
        for name in parents:
            holder = getattr(holder, name)
        setattr(holder, leaf, value)
        with pytest.raises(ConfigError, match=message):
            task_cls(config)


def run_cli(argv):
    """`tfvr.cli.main(argv)`, with an unknown flag (argparse's SystemExit) reported as a test failure naming it."""
    from tfvr.cli import main

    try:
        return main(argv)
    except SystemExit as e:
        pytest.fail(f"tfvr {' '.join(argv[:2])} ...: argparse exit {e.code} (a flag missing?)")


# The trainer of a run that only trains: no checkpoints, images, evaluation or export; logs every step.
STEPS_ONLY = dict(checkpoint_every=0, log_every=1, image_every=0, eval_every=0, export=False, eval_at_end=False,
                  progress_bar=False)


def steps_only(trainer, num_steps, **values):
    """`trainer` (a TrainerConfig) with `num_steps`, `STEPS_ONLY` and `values`."""
    return dataclasses.replace(trainer, num_steps=num_steps, **{**STEPS_ONLY, **values})


def toy_flags(**values) -> str:
    """A flagfile for tests/training/toy_train.py: `STEPS_ONLY`'s quiet trainer (eval_every left to the toy) with
    `values` (`trainer__num_steps=3`: `__` for dots)."""
    base = {f"trainer.{k}": v for k, v in STEPS_ONLY.items() if k != "eval_every"}
    return "\n".join(overrides({**base, **{k.replace("__", "."): v for k, v in values.items()}})) + "\n"


def tiny_edvr_weights(folder, kwargs, *, offsets_std=0.0, seed=0):
    """A tiny EDVR through BasicSR's state-dict layout and `tfvr convert-weights`' code path: the path of
    `<folder>/tiny.weights.h5` (+ its config sidecar). `offsets_std`: random DCN offset kernels (else zero)."""
    from tfvr.cli.convert_weights import convert
    from tfvr.models.edvr import from_basicsr, to_basicsr

    folder = Path(folder)
    model = from_basicsr(None, **kwargs)
    rng = np.random.default_rng(seed)
    if offsets_std:
        for layer in model.dcn_layers().values():
            layer.offset_kernel.assign(rng.normal(0, offsets_std, layer.offset_kernel.shape).astype(np.float32))
    np.savez(folder / "sd.npz", **to_basicsr(model))
    convert("edvr", folder / "sd.npz", folder / "tiny.weights.h5", kwargs={"dcn_impl": "reference"})
    return folder / "tiny.weights.h5"


def built_vid2vid_generator(seed, **kwargs):
    """`Vid2VidGenerator(**kwargs)` after `set_random_seed(seed)`, with every variable created (one call with
    previous frames, one without: the first frame's path)."""
    import tensorflow as tf

    from tfvr.models.vid2vid.generator import Vid2VidGenerator

    tf.keras.utils.set_random_seed(seed)
    gen = Vid2VidGenerator(**kwargs)
    labels = tf.zeros([1, 3, 8, 8], tf.int32)
    gen(labels, tf.zeros([1, 2, 8, 8, 3]))
    gen(labels, None)
    return gen


def check_flagfile(path, experiment_cls, *, task_cls=None, how_to_run=False):
    """Parses a flagfile exactly as `train/<family>.py` does and returns the resulting experiment config:

    tfvr's line check and flattening (`tfvr.config.checked_argv`: fields, value types, file:line in the message;
    `--flagfile=` expanded, nested flagfiles relative to the repository root, the last of each override kept), then
    absl's and ml_collections' own parser (`DEFINE_config_dataclass` on a fresh `FlagValues`), then
    `validate_experiment` (ranges) and, with
    `task_cls`, the task's constructor (its own checks of the combination). `how_to_run`: the comment header
    shows the command that uses this flagfile and what to expect.
    """
    from absl import flags
    from ml_collections import config_flags

    from tfvr.config import checked_argv, read_flagfile_lines, validate_experiment

    rel = os.path.relpath(path, REPO)
    argv = ["train", f"--flagfile={rel}"]
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        flat = checked_argv(experiment_cls(), argv)
        fv = flags.FlagValues()
        config_flags.DEFINE_config_dataclass("config", experiment_cls(), flag_values=fv, sys_argv=flat)
        fv(flat)
        config = fv.config
        assert isinstance(config, experiment_cls), type(config)
        assert read_flagfile_lines(rel)
    finally:
        os.chdir(cwd)
    validate_experiment(config)
    if task_cls is not None:
        task_cls(config)
    if how_to_run:
        comments = "\n".join(ln for ln in (REPO / rel).read_text().splitlines() if ln.startswith("#"))
        assert f"--flagfile={rel}" in comments and "Expected" in comments, f"{rel}: no how-to-run header"
    return config


@dataclasses.dataclass
class TrainRun:
    """What `run_train_script` leaves: the run folder, the finished process, and the files it wrote."""

    workdir: Path
    proc: Any
    config: dict
    eval: dict

    def metrics(self) -> list[dict]:
        return [json.loads(ln) for ln in (self.workdir / "metrics.jsonl").read_text().splitlines()]

    def tags(self) -> set[str]:
        import tensorflow as tf

        tags: set[str] = set()
        for path in glob.glob(str(self.workdir / "tb" / "**" / "events.out.tfevents.*"), recursive=True):
            for event in tf.compat.v1.train.summary_iterator(path):
                tags.update(v.tag for v in event.summary.value)
        return tags

    def export_meta(self) -> dict:
        return json.loads((self.workdir / "export" / "assets" / "tfvr.json").read_text())

    def serve(self, **inputs):
        """Loads <workdir>/export in this process and calls its serving_default signature on `inputs`."""
        import tensorflow as tf

        loaded = tf.saved_model.load(str(self.workdir / "export"))
        out = loaded.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}


def quiet_env(**extra) -> dict:
    """The environment of a user's shell: this checkout first on PYTHONPATH, TF's logging level not set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    for k in ("TFVR_VERBOSE", "TF_CPP_MIN_LOG_LEVEL"):
        env.pop(k, None)
    env.update(extra)
    return env


def overrides(values: dict) -> list[str]:
    """`{"model.num_feat": 8, "data.synthetic.cuts": False}` -> `["--config.model.num_feat=8", ...]`."""
    text = {True: "true", False: "false"}
    return [f"--config.{k}={text.get(v, v) if isinstance(v, bool) else v}" for k, v in values.items()]


# The tiny synthetic data and trainer of every family's 2-step train-script run (a family adds its model sizes).
TINY_RUN = {
    "data.synthetic.num_train_videos": 1, "data.synthetic.num_eval_videos": 1, "data.synthetic.num_frames": 12,
    "data.synthetic.height": 32, "data.synthetic.width": 48, "data.synthetic.clip_len": 6,
    "data.synthetic.cuts": False, "data.batch_size": 2, "data.eval.windows_per_clip": 1, "data.shuffle_buffer": 4,
    "trainer.num_steps": 2, "trainer.checkpoint_every": 1, "trainer.log_every": 1, "trainer.image_every": 1,
    "trainer.progress_bar": False,
}


def tiny_run(**values) -> list[str]:
    """`TINY_RUN` with `values` (keys with `__` for dots: `model__num_feat=8`) as `--config.*` flags."""
    return overrides({**TINY_RUN, **{k.replace("__", "."): v for k, v in values.items()}})


def run_train_script(script, flagfile, overrides, root, *, env=None, timeout=900) -> TrainRun:
    """`python train/<script> --flagfile=train/configs/<flagfile> --workdir=<root>/run <overrides>` in a fresh
    process (what a user types; `flagfile` may also be an absolute path), with the synthetic-data cache under
    `root`; asserts exit code 0."""
    import subprocess
    import sys

    root = Path(root)
    workdir = root / "run"
    flagfile = flagfile if os.path.isabs(flagfile) else f"train/configs/{flagfile}"
    cmd = [sys.executable, f"train/{script}", f"--flagfile={flagfile}", f"--workdir={workdir}",
           f"--config.data.cache_dir={root / 'cache'}", *overrides]
    env = env if env is not None else quiet_env(TFVR_CACHE=str(root / "cache"))
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return train_run_in(root, proc)


def train_run_in(root, proc) -> TrainRun:
    """The `TrainRun` of a finished `run_train_script` under `root` (its workdir is `root/run`)."""
    workdir = Path(root) / "run"
    config = json.loads((workdir / "config.json").read_text())
    result = json.loads((workdir / "eval.json").read_text()) if (workdir / "eval.json").exists() else {}
    return TrainRun(workdir, proc, config, result)


def once_per_session(tmp_path_factory, key: str, make):
    """`make(folder)` -> a finished `subprocess.CompletedProcess`, run once per test session even with pytest-xdist
    workers: the first worker that asks runs it in a folder every worker shares (under a file lock); the others
    wait for it and get the same folder and process record (stdout, stderr, exit code). Returns (folder, proc).
    The folder is read-only for its users. Without xdist: a plain `tmp_path_factory.mktemp(key)`."""
    import fcntl
    import subprocess

    from tfvr.safety import write_text  # temporary sibling, checked, renamed

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(key)
        return folder, make(folder)
    folder = tmp_path_factory.getbasetemp().parent / f"once-{key}"  # the session's base, shared by its workers
    record = folder.with_name(folder.name + ".proc.json")
    with open(folder.with_name(folder.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not record.exists():
                if folder.exists():
                    pytest.fail(f"{key}: the shared run failed in another worker (see its error)", pytrace=False)
                folder.mkdir()
                proc = make(folder)
                write_text(record, json.dumps({"args": [str(a) for a in proc.args], "returncode": proc.returncode,
                                               "stdout": proc.stdout, "stderr": proc.stderr}))
                return folder, proc
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    r = json.loads(record.read_text())
    return folder, subprocess.CompletedProcess(r["args"], r["returncode"], r["stdout"], r["stderr"])


def check_train_run(run: TrainRun, *, task, steps, eval_keys=(), printed=(), export_kind=None):
    """The checks every family's 2-step train-script run gets: config.json names the task and the step count,
    the last checkpoint and TensorBoard events exist, eval.json has `eval_keys` (finite) and the step count,
    stdout shows `printed` (the eval table), and export/ is a SavedModel whose tfvr.json names `export_kind`."""
    w = run.workdir
    assert run.config["task"] == task and run.config["trainer"]["num_steps"] == steps, run.config["task"]
    assert (w / "checkpoints" / f"ckpt-{steps}.index").exists(), sorted(os.listdir(w / "checkpoints"))
    assert glob.glob(str(w / "tb" / "**" / "events.out.tfevents.*"), recursive=True)
    for key in eval_keys:
        assert key in run.eval and np.isfinite(run.eval[key]), (key, run.eval)
    if eval_keys:
        assert run.eval["steps"] == steps
    for text in printed:
        assert text in run.proc.stdout, (text, run.proc.stdout[-2000:])
    if export_kind is not None:
        assert (w / "export" / "saved_model.pb").exists()
        assert run.export_meta()["kind"] == export_kind
        assert f"exported {w / 'export'}" in run.proc.stdout


def run_train_script_test(script, flagfile, overrides, root, *, task, steps=2, eval_keys=(), printed=(),
                          export_kind=None, env=None) -> TrainRun:
    """`run_train_script` followed by `check_train_run`; returns the run for the family's own checks."""
    run = run_train_script(script, flagfile, overrides, root, env=env)
    check_train_run(run, task=task, steps=steps, eval_keys=eval_keys, printed=printed, export_kind=export_kind)
    return run
