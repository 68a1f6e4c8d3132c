import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tfvr.cli import main
from tfvr.data import video_io
from tfvr.metrics import psnr


def _write_clip(folder, frames):
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))


def test_eval_table_and_json(tmp_path, capsys):
    rng = np.random.default_rng(0)
    gt = {c: rng.integers(0, 256, (6, 24, 32, 3), dtype=np.uint8) for c in ("calendar", "city")}
    for c, frames in gt.items():
        _write_clip(tmp_path / "gt" / c, frames)
        noisy = np.clip(frames.astype(int) + rng.integers(-8, 9, frames.shape), 0, 255).astype(np.uint8)
        _write_clip(tmp_path / "pred" / c, noisy)
    out = tmp_path / "scores.json"
    assert main(["score", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--y",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "calendar" in text and "city" in text and "average" in text
    data = json.loads(out.read_text())
    cal = data["clips"]["calendar"]
    noisy0 = cv2.cvtColor(cv2.imread(str(tmp_path / "pred/calendar/00000.png")), cv2.COLOR_BGR2RGB)
    assert cal["per_frame"]["psnr"][0] == pytest.approx(psnr(noisy0, gt["calendar"][0], y_channel=True))
    assert cal["per_frame"]["border"] == [True, True, False, False, True, True]


def test_eval_missing_frame_is_a_one_line_error(tmp_path):
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    _write_clip(tmp_path / "gt", frames)
    _write_clip(tmp_path / "pred", frames[:2])
    r = subprocess.run([sys.executable, "-m", "tfvr.cli", "score", "--pred", str(tmp_path / "pred"),
                        "--gt", str(tmp_path / "gt")], capture_output=True, text=True)
    assert r.returncode == 2 and "00002" in r.stderr and "Traceback" not in r.stderr


def test_synth_video_noisy_and_clean(tmp_path, capsys):
    noisy, clean = tmp_path / "noisy.mp4", tmp_path / "clean"
    assert main(["make-synthetic", "--seed", "7", "--frames", "5", "--size", "33x21", "--noise", "25",
                 str(noisy), "--clean-out", str(clean)]) == 0
    v = video_io.read_video(noisy)
    assert v.frames.shape[0] == 5 and v.frames.shape[1:3] == (22, 34)  # mp4 holds even sizes (edge padded)
    pngs = sorted(clean.iterdir())
    assert len(pngs) == 5 and cv2.imread(str(pngs[0])).shape == (21, 33, 3)
    assert "noise sigma 25" in capsys.readouterr().out


def test_cli_help_lists_commands():
    r = subprocess.run([sys.executable, "-m", "tfvr.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for name in ("prepare", "score", "make-synthetic", "restore", "export"):
        assert name in r.stdout
    text = " ".join(r.stdout.split())
    assert "Renamed commands" in text and "eval -> score" in text and "synth-video -> make-synthetic" in text
    r = subprocess.run([sys.executable, "-m", "tfvr.cli", "make-synthetic", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--noise" in r.stdout


@pytest.mark.parametrize("old,new", [("eval", "score"), ("synth-video", "make-synthetic")])
def test_old_command_names_are_deprecated_aliases(old, new):
    r_old = subprocess.run([sys.executable, "-m", "tfvr.cli", old, "--help"], capture_output=True, text=True)
    r_new = subprocess.run([sys.executable, "-m", "tfvr.cli", new, "--help"], capture_output=True, text=True)
    assert r_old.returncode == r_new.returncode == 0
    assert r_old.stdout == r_new.stdout  # the same command
    notice = [ln for ln in r_old.stderr.splitlines() if ln.strip()]
    assert notice == [f"tfvr: '{old}' is deprecated and will be removed in tfvr 0.2; use 'tfvr {new}'"]
    assert r_new.stderr == ""


def test_old_name_behaves_identically(tmp_path, capsys):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    assert main(["synth-video", "--seed", "3", "--frames", "3", "--size", "16x16", str(a)]) == 0
    assert "deprecated" in capsys.readouterr().err
    assert main(["make-synthetic", "--seed", "3", "--frames", "3", "--size", "16x16", str(b)]) == 0
    assert np.array_equal(video_io.read_video(a).frames, video_io.read_video(b).frames)
