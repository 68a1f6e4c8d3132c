"""EDVR end to end against BasicSR's own test procedure (tests/fixtures/e2e/edvr_vid4, made by
tests/fixtures/make_edvr_vid4_fixture.py: VideoTestDataset windows with reflection_circle, tensor2img uint8,
basicsr.metrics.calculate_psnr on the Y channel, crop 0, on a random BasicSR EDVR saved by torch.save).

Tolerances (issue 11): per-frame Y PSNR within 0.01 dB, output frames within 1 gray level.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_cli
from tfvr.cli import main

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "e2e" / "edvr_vid4"
META = json.loads((FIX / "meta.json").read_text())
EXPECTED = dict(np.load(FIX / "expected.npz"))


def _basicsr_indices(crt_idx, max_frame_num, num_frames):
    """basicsr.data.data_util.generate_frame_indices(..., padding='reflection_circle'), as the reference."""
    max_frame_num, num_pad = max_frame_num - 1, num_frames // 2
    out = []
    for i in range(crt_idx - num_pad, crt_idx + num_pad + 1):
        if i < 0:
            i = crt_idx + num_pad - i
        elif i > max_frame_num:
            i = (crt_idx - num_pad) - (i - max_frame_num)
        out.append(i)
    return out


def _read(folder):
    return np.stack([np.array(Image.open(p).convert("RGB")) for p in sorted(Path(folder).glob("*.png"))])


def _check_psnr(per_clip: dict):
    for clip in META["clips"]:
        got = np.asarray(per_clip[clip], np.float64)
        np.testing.assert_allclose(got, EXPECTED[f"psnr_y/{clip}"], rtol=0, atol=0.01, err_msg=clip)


def test_converted_pth_reproduces_basicsr_outputs_in_process():
    """The fixture and the procedure, checked with tfvr's model called directly (no CLI)."""
    from tfvr.export.torch_state import load_state_dict
    from tfvr.metrics import psnr
    from tfvr.models.edvr.convert import from_basicsr

    model = from_basicsr(load_state_dict(FIX / "edvr_tiny.pth"), source="edvr_tiny.pth", **META["kwargs"])
    t = META["kwargs"]["num_frame"]
    scores = {}
    for clip in META["clips"]:
        lq = _read(FIX / "Vid4" / "BIx4" / clip)
        np.testing.assert_array_equal(lq, EXPECTED[f"lq/{clip}"])
        windows = np.stack([lq[_basicsr_indices(i, len(lq), t)] for i in range(len(lq))])
        y = model(windows.astype(np.float32) / 255.0).numpy()
        out = np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)
        assert np.abs(out.astype(int) - EXPECTED[f"sr/{clip}"]).max() <= 1
        scores[clip] = [psnr(o, g, crop_border=META["crop_border"], y_channel=True)
                        for o, g in zip(out, EXPECTED[f"gt/{clip}"])]
    _check_psnr(scores)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    d = tmp_path_factory.mktemp("edvr_e2e")
    out = d / "edvr_tiny.weights.h5"
    assert main(["convert-weights", "--arch", "edvr", "--kwargs", json.dumps(META["kwargs"]), str(FIX / "edvr_tiny.pth"),
                 "-o", str(out)]) == 0
    return out


_cli = run_cli  # an unknown flag (argparse's SystemExit) fails the test, naming it


def _evaluate(model_path, tmp_path):
    js = tmp_path / "vid4.json"
    assert main(["evaluate", "--model", str(model_path), "--layout", "vid4", str(FIX / "Vid4"), "--y-channel",
                 "--crop-border", str(META["crop_border"]), "--padding", META["padding"], "--json", str(js),
                 "--quiet"]) == 0
    data = json.loads(js.read_text())
    return {clip: data["clips"][clip]["per_frame"]["psnr"] for clip in META["clips"]}


def test_convert_weights_then_evaluate_weights_h5_matches_basicsr_psnr(converted, tmp_path):
    _check_psnr(_evaluate(converted, tmp_path))


@pytest.fixture(scope="module")
def exported(converted, tmp_path_factory):
    """`tfvr export --weights X.weights.h5 --out DIR` (issue 11; H1a's flag)."""
    out = tmp_path_factory.mktemp("edvr_export") / "edvr_tiny" / "1"
    rc = _cli(["export", "--weights", str(converted), "--out", str(out)])
    assert rc == 0 and (out / "saved_model.pb").exists()
    return out


def test_export_weights_then_evaluate_matches_basicsr_psnr(exported, tmp_path):
    _check_psnr(_evaluate(exported, tmp_path))


def test_export_weights_then_restore_png_folder_matches_basicsr_frames(exported, tmp_path):
    clip = META["clips"][0]
    out = tmp_path / "sr"
    assert _cli(["restore", "--model", str(exported), str(FIX / "Vid4" / "BIx4" / clip), str(out), "--quiet"]) == 0
    got = _read(out)
    assert got.shape == EXPECTED[f"sr/{clip}"].shape
    assert np.abs(got.astype(int) - EXPECTED[f"sr/{clip}"]).max() <= 1
