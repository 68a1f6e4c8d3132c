"""`tfvr evaluate` on tiny fake Vid4 / REDS4 / Vimeo-90K-T folders, with a converted EDVR."""

import json

import cv2
import numpy as np
import pytest

from tests.helpers import tiny_edvr_weights
from tfvr.cli import main
from tfvr.cli.evaluate import frame_indices

TINY = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1,
            dcn_impl="reference")


@pytest.mark.parametrize("padding,want", [
    ("replicate", [0, 0, 0, 1, 2]), ("reflection", [2, 1, 0, 1, 2]), ("reflection_circle", [4, 3, 0, 1, 2]),
    ("new_info", [4, 3, 0, 1, 2]), ("circle", [3, 4, 0, 1, 2]),
])
def test_frame_indices_match_basicsr_examples(padding, want):
    # The examples of BasicSR's generate_frame_indices docstring (centre 0, 5 frames) and legacy EDVR's
    # index_generation (new_info).
    assert frame_indices(0, 100, 5, padding) == want
    # Mirror image at the end of a 10-frame clip.
    assert frame_indices(9, 10, 5, padding) == [9 - i for i in want[::-1]]
    assert frame_indices(4, 10, 5, padding) == [2, 3, 4, 5, 6]


def _png(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img[..., ::-1])


def _frames(rng, n, h, w):
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return tiny_edvr_weights(tmp_path_factory.mktemp("model"), TINY, offsets_std=0.05)


@pytest.fixture(scope="module")
def vid4(tmp_path_factory):
    root = tmp_path_factory.mktemp("Vid4")
    rng = np.random.default_rng(1)
    for clip, n in (("calendar", 5), ("city", 4)):
        for i, img in enumerate(_frames(rng, n, 32, 48)):
            _png(root / "GT" / clip / f"{i:08d}.png", img)
            _png(root / "BIx4" / clip / f"{i:08d}.png", cv2.resize(img, (12, 8), interpolation=cv2.INTER_AREA))
    return root


def _load(path):
    return cv2.imread(str(path))[..., ::-1]


def test_vid4_table_and_json_match_a_direct_computation(model_path, vid4, tmp_path, capsys):
    from tfvr.cli.convert_weights import load_converted
    from tfvr.metrics import psnr

    out = tmp_path / "vid4.json"
    assert main(["evaluate", "--model", str(model_path), "--layout", "vid4", "--quiet", str(vid4),
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "calendar" in text and "city" in text
    res = json.loads(out.read_text())
    assert res["settings"]["y_channel"] is True and res["settings"]["padding"] == "reflection_circle"

    # Frame 0 of calendar by hand: window = reflection_circle indices, Y-channel PSNR.
    model = load_converted(model_path)
    gt = [_load(p) for p in sorted((vid4 / "GT" / "calendar").glob("*.png"))]
    lr = [_load(p) for p in sorted((vid4 / "BIx4" / "calendar").glob("*.png"))]
    window = np.stack([lr[j] for j in frame_indices(0, 5, 3)])[None].astype(np.float32) / 255
    pred = np.clip(np.round(model(window).numpy()[0] * 255), 0, 255).astype(np.uint8)
    want = psnr(pred, gt[0], y_channel=True)
    got = _frame_psnr(res, "calendar", 0)
    assert abs(got - want) < 0.05  # the SavedModel-style path rounds the same way; DCN impl may differ by 1e-6


def _frame_psnr(res, clip, index):
    per_frame = res["clips"][clip]["per_frame"]
    return per_frame["psnr"][per_frame["frame"].index(index)]


def test_padding_changes_only_border_frames(model_path, vid4, tmp_path):
    outs = {}
    for padding in ("replicate", "reflection_circle"):
        out = tmp_path / f"{padding}.json"
        assert main(["evaluate", "--model", str(model_path), "--layout", "vid4", "--quiet", "--padding", padding,
                     "--clips", "calendar", str(vid4), "--json", str(out)]) == 0
        outs[padding] = json.loads(out.read_text())
    for i in (1, 2, 3):  # centre frames: the same window either way
        assert _frame_psnr(outs["replicate"], "calendar", i) == _frame_psnr(outs["reflection_circle"], "calendar", i)
    assert list(outs["replicate"]["clips"]) == ["calendar"]


def test_reds4_scores_only_the_reds4_clips(model_path, tmp_path, capsys):
    rng = np.random.default_rng(2)
    root = tmp_path / "REDS"
    for clip in ("000", "001", "011"):
        for i, img in enumerate(_frames(rng, 3, 16, 24)):
            _png(root / "train_sharp" / clip / f"{i:08d}.png", img)
            _png(root / "train_sharp_bicubic" / "X4" / clip / f"{i:08d}.png", cv2.resize(img, (6, 4)))
    out = tmp_path / "reds.json"
    assert main(["evaluate", "--model", str(model_path), "--layout", "reds4", "--quiet", str(root),
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert list(res["clips"]) == ["000", "011"] and res["settings"]["y_channel"] is False


def test_vimeo90k_scores_the_centre_frame_only(model_path, tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "vimeo"
    keys = ["00001/0001", "00001/0002"]
    for key in keys:
        for i, img in enumerate(_frames(rng, 7, 16, 16)):
            _png(root / "sequences" / key / f"im{i + 1}.png", img)
            _png(root / "vimeo_septuplet_matlabLRx4" / "sequences" / key / f"im{i + 1}.png", cv2.resize(img, (4, 4)))
    (root / "sep_testlist.txt").write_text("\n".join(keys) + "\n")
    out = tmp_path / "vimeo.json"
    assert main(["evaluate", "--model", str(model_path), "--layout", "vimeo90k", "--quiet", str(root),
                 "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert list(res["clips"]) == keys
    assert all(c["per_frame"]["frame"] == [3] and c["frames"] == 1 for c in res["clips"].values())


def test_lr_is_made_with_matlab_bicubic_when_absent(model_path, vid4, tmp_path):
    root = tmp_path / "gt_only"
    for p in (vid4 / "GT" / "city").glob("*.png"):
        _png(root / "GT" / "city" / p.name, _load(p))
    assert main(["evaluate", "--model", str(model_path), "--layout", "vid4", "--quiet", str(root)]) == 0


def test_errors_are_one_line(model_path, vid4, tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "nope"), "--layout", "vid4", str(vid4)]) == 2
    assert "no such model" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(model_path), "--layout", "reds4", str(vid4)]) == 2
    assert "train_sharp" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(model_path), "--layout", "vid4", "--clips", "foliage", str(vid4)]) == 2
    assert "foliage" in capsys.readouterr().err
