"""`tfvr export --weights` / `--from-pytorch` (no training run), `--model X.weights.h5` for restore, and one-line
errors for every wrong `--model` (missing, other kind, truncated variables, not a SavedModel, bad sidecar)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfvr.cli import main

TINY = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from tfvr.cli.convert_weights import convert
    from tfvr.models.edvr import from_basicsr, to_basicsr

    d = tmp_path_factory.mktemp("edvr")
    model = from_basicsr(None, dcn_impl="reference", **TINY)
    rng = np.random.default_rng(0)
    for layer in model.dcn_layers().values():
        layer.offset_kernel.assign(rng.normal(0, 0.05, layer.offset_kernel.shape).astype(np.float32))
    np.savez(d / "edvr_tiny.npz", **to_basicsr(model))
    convert("edvr", d / "edvr_tiny.npz", d / "tiny.weights.h5", kwargs={"dcn_impl": "reference"})
    return d


@pytest.fixture(scope="module")
def exported(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("saved") / "tiny" / "1"
    assert main(["export", "--weights", str(files / "tiny.weights.h5"), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def frames_dir(tmp_path_factory):
    import cv2

    d = tmp_path_factory.mktemp("lr")
    rng = np.random.default_rng(1)
    for i in range(4):
        cv2.imwrite(str(d / f"{i:08d}.png"), rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    return d


def _pngs(folder):
    import cv2

    return np.stack([cv2.imread(str(p))[..., ::-1] for p in sorted(Path(folder).glob("*.png"))])


def test_export_weights_and_from_pytorch_restore_like_the_weights(files, exported, frames_dir, tmp_path):
    a, b = exported, tmp_path / "saved" / "b" / "1"
    assert main(["export", "--from-pytorch", str(files / "edvr_tiny.npz"), "--arch", "edvr", "--kwargs",
                 '{"dcn_impl": "reference"}', "--out", str(b)]) == 0
    meta = json.loads((a / "assets" / "tfvr.json").read_text())
    assert meta["kind"] == "restoration" and meta["family"] == "edvr" and meta["scale"] == 4
    assert meta["num_frames"] == 3
    outs = {}
    for name, model in (("h5", files / "tiny.weights.h5"), ("a", a), ("b", b)):
        outs[name] = tmp_path / f"out_{name}"
        assert main(["restore", "--model", str(model), str(frames_dir), str(outs[name]), "--quiet"]) == 0
    ref = _pngs(outs["h5"]).astype(int)
    assert ref.shape == (4, 48, 64, 3)
    for name in ("a", "b"):
        assert np.abs(_pngs(outs[name]).astype(int) - ref).max() <= 1


def test_export_signature_is_listed_by_saved_model_cli(exported):
    out = exported
    cli = Path(sys.executable).with_name("saved_model_cli")
    if not cli.exists():
        pytest.skip(f"{cli} not installed")
    proc = subprocess.run([str(cli), "show", "--dir", str(out), "--tag_set", "serve", "--signature_def",
                           "serving_default"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "frames" in proc.stdout and "restored" in proc.stdout and "DT_UINT8" in proc.stdout


def test_every_wrong_model_is_one_line(files, exported, frames_dir, tmp_path, capsys):
    def err_of(model, cmd="restore"):
        args = {"restore": ["restore", "--model", str(model), str(frames_dir), str(tmp_path / "o"), "--quiet"],
                "inpaint": ["inpaint", "--model", str(model), str(frames_dir), "--masks", str(frames_dir),
                            str(tmp_path / "o"), "--quiet"]}[cmd]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert not (tmp_path / "o").exists()
        return err

    assert "no such model" in err_of(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    assert "not a SavedModel" in err_of(tmp_path / "plain")
    # another kind: an EDVR is not an inpainting model, a vid2vid export is not a restoration one
    good = exported
    e = err_of(good, "inpaint")
    assert "restoration" in e and "inpainting" in e
    e = err_of(files / "tiny.weights.h5", "inpaint")
    assert "restoration" in e and "tfvr inpaint" in e
    other = tmp_path / "other"
    shutil.copytree(good, other)
    meta = json.loads((other / "assets" / "tfvr.json").read_text())
    (other / "assets" / "tfvr.json").write_text(json.dumps({**meta, "kind": "label-to-video"}))
    assert "label-to-video" in err_of(other)
    # truncated variables
    bad = tmp_path / "truncated"
    shutil.copytree(good, bad)
    data = next((bad / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    assert str(bad) in err_of(bad)
    # a SavedModel that is not a tfvr export
    foreign = tmp_path / "foreign"
    m = tf.Module()
    m.f = tf.function(lambda x: {"y": x + 1}, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(m, str(foreign), signatures={"serving_default": m.f})
    assert "not a tfvr export" in err_of(foreign)
    # converted weights: truncated .weights.h5, non-JSON sidecar
    h5 = tmp_path / "cut.weights.h5"
    h5.write_bytes((files / "tiny.weights.h5").read_bytes()[:2000])
    shutil.copy(files / "tiny.config.json", tmp_path / "cut.config.json")
    assert "cut.weights.h5" in err_of(h5)
    (tmp_path / "cut.config.json").write_text("{not json")
    assert "cut.config.json" in err_of(h5)


def test_export_guards(files, tmp_path, capsys):
    wd = tmp_path / "run"
    (wd / "checkpoints").mkdir(parents=True)
    (wd / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')  # a TF checkpoint state
    assert main(["export", "--weights", str(files / "tiny.weights.h5"), "--out", str(wd), "--overwrite"]) == 2
    assert "training run" in capsys.readouterr().err
    assert main(["export", "--from-pytorch", str(files / "edvr_tiny.npz"), "--arch", "edvr",
                 "--out", str(files)]) == 2
    assert "input" in capsys.readouterr().err
    assert main(["export", "--weights", str(files / "tiny.weights.h5"), "--arch", "edvr",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--from-pytorch" in capsys.readouterr().err
    assert main(["export", "--from-pytorch", str(tmp_path / "nope.pth"), "--arch", "edvr",
                 "--out", str(tmp_path / "x")]) == 2
    assert "nope.pth" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
