"""`tfvr prepare` end to end: the contract of issue 2 (good + broken video), --help, usage errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfvr.cli import main
from tfvr.data import synthetic

REPO = Path(__file__).resolve().parents[2]


def _tfvr(*args, cwd=None):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "tfvr.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    synthetic.write_mp4(synthetic.generate(21, 30, 48, 64, cuts=[14], fps=10.0), d / "good.mp4", fps=10.0)
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)  # an mp4 header, then nothing
    return d


def test_help():
    r = _tfvr("prepare", "--help")
    assert r.returncode == 0
    for flag in ("--threshold", "--interval", "--clip-len", "--layout", "--num-shards", "--val-fraction"):
        assert flag in r.stdout


def test_good_and_broken_video_subprocess(src, tmp_path):
    out = tmp_path / "clips"
    r = _tfvr("prepare", src, out, "--threshold", "25", "--interval", "0.1", "--clip-len", "5")
    assert r.returncode != 0
    assert "broken.mp4" in r.stderr and "Traceback" not in r.stderr + r.stdout
    m = json.loads((out / "manifest.json").read_text())
    videos = {v["path"]: v for v in m["videos"]}
    assert videos["broken.mp4"]["error"] and videos["broken.mp4"]["clips"] == 0
    assert videos["good.mp4"]["error"] is None
    assert videos["good.mp4"]["scenes"] == [[0, 14], [14, 30]] and videos["good.mp4"]["clips"] == 2 + 3
    assert (out / "train-00000-of-00001.tfrecord").is_file()
    assert "5 clips" in r.stdout


def test_all_good_exits_zero(src, tmp_path, capsys):
    good = tmp_path / "good"
    good.mkdir()
    (good / "good.mp4").symlink_to(src / "good.mp4")
    assert main(["prepare", str(good), str(tmp_path / "out"), "--clip-len", "5", "--quiet", "--num-shards", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".tfvr-output", "manifest.json", "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]


def test_usage_errors_are_one_line(tmp_path, capsys):
    assert main(["prepare", str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfvr prepare: error:") and "missing" in err and err.count("\n") == 1
    (tmp_path / "x").mkdir()
    assert main(["prepare", str(tmp_path / "x"), str(tmp_path / "out")]) == 2
    assert "no video files or frame folders" in capsys.readouterr().err
