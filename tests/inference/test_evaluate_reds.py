"""`tfvr evaluate --layout reds4 --lq blur|blur_comp`: hr_in (deblurring) models scored on blurred REDS inputs."""

import json

import cv2
import numpy as np
import pytest

from tests.helpers import tiny_edvr_weights
from tfvr.cli import main
from tfvr.inference.windows import frame_indices

TINY_HR_IN = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1,
                  hr_in=True, with_predeblur=True)


@pytest.fixture(scope="module")
def deblur_model(tmp_path_factory):
    return tiny_edvr_weights(tmp_path_factory.mktemp("deblur"), dict(TINY_HR_IN, dcn_impl="reference"))


@pytest.fixture(scope="module")
def reds(tmp_path_factory):
    root = tmp_path_factory.mktemp("REDS")
    rng = np.random.default_rng(0)
    for i in range(3):
        sharp = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        for kind, img in (("train_sharp", sharp), ("train_blur", cv2.blur(sharp, (5, 5))),
                          ("train_blur_comp", cv2.blur(sharp, (3, 3)))):
            (root / kind / "000").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / kind / "000" / f"{i:08d}.png"), img[..., ::-1])
    return root


def test_hr_in_model_on_blurred_inputs(deblur_model, reds, tmp_path, capsys):
    from tfvr.export.converted import load_converted
    from tfvr.metrics import psnr

    res = {}
    for lq in ("blur", "blur_comp"):
        out = tmp_path / f"{lq}.json"
        assert main(["evaluate", "--model", str(deblur_model), "--layout", "reds4", "--lq", lq, "--quiet",
                     str(reds), "--json", str(out)]) == 0
        res[lq] = json.loads(out.read_text())
        assert res[lq]["settings"]["lq"] == lq and res[lq]["settings"]["scale"] == 1
    assert f"input blur" in capsys.readouterr().out
    f0 = lambda r: r["clips"]["000"]["per_frame"]["psnr"][0]  # noqa: E731
    assert f0(res["blur"]) != f0(res["blur_comp"])
    # frame 0 by hand: the model on train_blur frames (reflection_circle window), RGB PSNR against train_sharp
    model = load_converted(deblur_model)
    read = lambda p: cv2.imread(str(p))[..., ::-1]  # noqa: E731
    blur = [read(reds / "train_blur" / "000" / f"{i:08d}.png") for i in range(3)]
    gt = read(reds / "train_sharp" / "000" / "00000000.png")
    window = np.stack([blur[j] for j in frame_indices(0, 3, 3)])[None].astype(np.float32) / 255
    pred = np.clip(np.round(model(window).numpy()[0] * 255), 0, 255).astype(np.uint8)
    assert abs(f0(res["blur"]) - psnr(pred, gt)) < 0.05
    # the default input of a x1 model on REDS is train_blur
    assert main(["evaluate", "--model", str(deblur_model), "--layout", "reds4", "--quiet", str(reds),
                 "--json", str(tmp_path / "auto.json")]) == 0
    assert json.loads((tmp_path / "auto.json").read_text())["settings"]["lq"] == "blur"


def test_wrong_input_kind_is_one_line(deblur_model, reds, capsys):
    assert main(["evaluate", "--model", str(deblur_model), "--layout", "reds4", "--lq", "blur_bicubic",
                 "--quiet", str(reds)]) == 2
    assert "train_blur_bicubic" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(deblur_model), "--layout", "vid4", "--lq", "blur", "--quiet",
                 str(reds)]) == 2
    assert "only the reds4 layout" in capsys.readouterr().err
