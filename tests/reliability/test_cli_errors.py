"""Issue 12 case 10: environment errors are one line naming the path, exit code 2, no traceback - a corrupt
.weights.h5 or a non-JSON sidecar given to `evaluate`, OSError / TensorFlow disk errors from any command - while
real bugs keep their traceback, and `tfvr --help` still does not import TensorFlow."""

import errno
import json
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO
from tfvr import cli
from tfvr.safety import error_line


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from tests.cli.test_evaluate import TINY
    from tfvr.cli.convert_weights import convert
    from tfvr.models.edvr import from_basicsr, to_basicsr

    d = tmp_path_factory.mktemp("conv")
    np.savez(d / "sd.npz", **to_basicsr(from_basicsr(None, **TINY)))
    convert("edvr", d / "sd.npz", d / "m.weights.h5", kwargs={"dcn_impl": "reference"})
    return d


def _evaluate(capsys, model, data):
    rc = cli.main(["evaluate", str(data), "--model", str(model), "--layout", "vid4", "--quiet"])
    err = capsys.readouterr().err
    assert err.startswith("tfvr evaluate: error:") and err.count("\n") == 1, err
    return rc, err


def test_corrupt_weights_and_non_json_sidecar_are_one_line(converted, tmp_path, capsys):
    bad = tmp_path / "m.weights.h5"
    sidecar = (converted / "m.config.json").read_text()
    (tmp_path / "m.config.json").write_text(sidecar)
    bad.write_bytes((converted / "m.weights.h5").read_bytes()[:3000])  # truncated HDF5
    rc, err = _evaluate(capsys, bad, tmp_path)
    assert rc == 2 and f"{bad}: not a readable .weights.h5" in err, err

    bad.write_bytes(b"not hdf5 at all")
    rc, err = _evaluate(capsys, bad, tmp_path)
    assert rc == 2 and f"{bad}: not a readable .weights.h5" in err, err

    (tmp_path / "m.config.json").write_text("{ this is not json")
    rc, err = _evaluate(capsys, bad, tmp_path)
    assert rc == 2 and "m.config.json: not a JSON sidecar" in err, err

    (tmp_path / "m.config.json").write_text(json.dumps({"class": "os.system", "config": {}}))
    rc, err = _evaluate(capsys, bad, tmp_path)
    assert rc == 2 and "is not a tfvr model class" in err, err


def _command(monkeypatch, exc):
    mod = types.ModuleType("tfvr_fake_cmd")
    mod.add_arguments = lambda p: None

    def run(args):
        raise exc

    mod.run = run
    monkeypatch.setitem(sys.modules, "tfvr_fake_cmd", mod)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("tfvr_fake_cmd", "a command that fails"))
    monkeypatch.setattr(cli, "_available", lambda: dict(cli.COMMANDS))


@pytest.mark.parametrize("exc,want", [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out/x.png"), "/data/out/x.png: no space left"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/out"), "/data/out: permission denied"),
    (OSError(errno.ELOOP, "Too many levels of symbolic links", "/src/loop.mp4"),
     "/src/loop.mp4: too many levels of symbolic links"),
    (tf.errors.ResourceExhaustedError(None, None, "/w/checkpoints/ckpt-3_temp/part-00000; No space left on device"),
     "no space left on device: /w/checkpoints/ckpt-3_temp/part-00000"),
    (tf.errors.PermissionDeniedError(None, None, "/w/tb/events.out; Permission denied"), "permission denied: /w/tb"),
    (tf.errors.UnknownError(None, None, "/w/x.tfrecord; Read-only file system"), "read-only file system"),
])
def test_environment_errors_are_one_line_exit_2(monkeypatch, capsys, exc, want):
    _command(monkeypatch, exc)
    assert cli.main(["fake"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfvr fake: error:") and want in err and err.count("\n") == 1, err


def test_bugs_keep_their_traceback(monkeypatch):
    _command(monkeypatch, RuntimeError("a tfvr bug"))
    with pytest.raises(RuntimeError, match="a tfvr bug"):
        cli.main(["fake"])
    assert error_line(tf.errors.InvalidArgumentError(None, None, "shapes differ")) is None


def test_help_does_not_import_tensorflow():
    code = "import sys; from tfvr.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n" \
           "print('TF' if 'tensorflow' in sys.modules else 'noTF')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.stdout.strip().splitlines()[-1] == "noTF", r.stdout + r.stderr
