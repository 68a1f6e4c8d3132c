"""`tfvr inpaint` on the real clip ../shared/data/schoolgirls (first frames only, a tiny untrained model)."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import SHARED, unavailable
from tfvr.cli import main
from tfvr.cli.inpaint import effective_holes, read_masks, windows
from tfvr.data.video_io import read_video
from tfvr.models.sttn_inpaint import STTNInpaintGenerator
from tfvr.models.sttn_inpaint.export import InpaintExportModule

CLIP = SHARED / "data" / "schoolgirls"
N = 12  # frames used: 3 windows of the authors' scheme, reference frames 0 and 10


def _saved_model(path, height, width):
    gen = STTNInpaintGenerator(channels=16, num_blocks=1, name="generator")
    gen.build()
    module = InpaintExportModule(gen, height=height, width=width)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serving_default})
    return path


@pytest.fixture(scope="module")
def clip():
    if not (CLIP / "video.mp4").exists():
        unavailable(f"{CLIP} not found")
    frames = read_video(CLIP / "video.mp4", max_frames=N).frames
    return frames


def _read_pngs(folder, n):
    files = sorted(folder.glob("*.png"))
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(n)]
    return np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])


def _dilate(masks, size, iterations):
    kernel = np.ones((size, size), np.uint8) if size > 3 else cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    return np.stack([cv2.dilate(m.astype(np.uint8), kernel, iterations=iterations) > 0 for m in masks])


def test_the_dilation_scales_with_the_frame_size():
    m = np.zeros((1, 480, 864), bool)
    m[0, 240, 432] = True
    assert effective_holes(m, 4).sum() == 2 * 8 * 9 + 1  # 8 cross dilations at twice 432x240: an L1 ball of radius 8
    assert effective_holes(m, 0).sum() == 1


def test_windows_are_the_authors():
    plan = windows(12, 5, 10)
    assert plan == [([0, 1, 2, 3, 4, 5], [10]), ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], []),
                    ([5, 6, 7, 8, 9, 10, 11], [0])]


def test_every_unmasked_pixel_is_kept_at_the_native_size(clip, tmp_path, capsys):
    model = _saved_model(tmp_path / "model", 240, 432)  # the clip's own size: the authors' setting
    out = tmp_path / "out"
    assert main(["inpaint", "--model", str(model), str(CLIP / "video.mp4"), "--masks", str(CLIP / "masks"),
                 str(out), "--max-frames", str(N), "--quiet"]) == 0
    # the clip's 80 masks for the 12 frames inpainted: one line on stderr says so
    assert capsys.readouterr().err.strip().splitlines() == [
        f"tfvr inpaint: warning: {CLIP / 'masks'}: 80 mask images for {N} frames; the last {80 - N} are not used "
        f"(--max-frames {N})"]
    got = _read_pngs(out, N)
    user = read_masks(CLIP / "masks", N, 240, 432)
    assert user.mean() > 0.03  # the clip's masks are not empty
    # The authors dilate with a 3x3 cross, 4 times: every pixel outside that is the input, bit for bit.
    hole = _dilate(user, 3, 4)
    np.testing.assert_array_equal(got[~hole], clip[~hole])
    assert (got[user] != clip[user]).mean() > 0.5  # and the holes were filled


def test_other_model_size_and_mp4_output(clip, tmp_path):
    model = _saved_model(tmp_path / "model", 96, 192)  # frames resized inside the SavedModel, composited at 432x240
    png = tmp_path / "png"
    assert main(["inpaint", "--model", str(model), str(CLIP / "video.mp4"), "--masks", str(CLIP / "masks"),
                 str(png), "--max-frames", "6", "--quiet"]) == 0
    got = _read_pngs(png, 6)
    user = read_masks(CLIP / "masks", 6, 240, 432)
    holes = effective_holes(user, 4)
    np.testing.assert_array_equal(holes, _dilate(user, 3, 4))  # the margin does not depend on the model size
    np.testing.assert_array_equal(got[~holes], clip[:6][~holes])
    assert (got[user] != clip[:6][user]).mean() > 0.5
    # the same masks as a (lossy) mask video give the same holes
    from tfvr.data.video_io import write_video

    mask_video = write_video(tmp_path / "masks.mp4", (user[..., None] * np.uint8(128)).repeat(3, -1), fps=24)
    np.testing.assert_array_equal(read_masks(mask_video, 6, 240, 432), user)
    mp4 = tmp_path / "o.mp4"
    assert main(["inpaint", "--model", str(model), str(CLIP / "video.mp4"), "--masks", str(CLIP / "masks" / "00000.png"),
                 str(mp4), "--max-frames", "3", "--quiet"]) == 0
    video = read_video(mp4)
    assert video.frames.shape == (3, 240, 432, 3)


def test_bad_inputs_fail_in_one_line(clip, tmp_path, capsys):
    model = _saved_model(tmp_path / "model", 48, 48)
    masks = tmp_path / "m"
    masks.mkdir()
    for i in range(2):
        cv2.imwrite(str(masks / f"{i}.png"), np.zeros((10, 10), np.uint8))
    code = main(["inpaint", "--model", str(model), str(CLIP / "video.mp4"), "--masks", str(masks),
                 str(tmp_path / "o"), "--max-frames", "5", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "2 mask images for 5 frames" in err and str(masks) in err
    assert main(["inpaint", "--model", str(tmp_path), str(CLIP / "video.mp4"), "--masks", str(masks),
                 str(tmp_path / "o"), "--max-frames", "2", "--quiet"]) == 2
    assert "not a SavedModel" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
