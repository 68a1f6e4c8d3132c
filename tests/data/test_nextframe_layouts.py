"""Readers for the seed's layouts on fake copies: HumanEva (image folders, .avi videos, CSVs) and Charades."""

import dataclasses

import cv2
import numpy as np
import pytest

from tfvr.data import video_io
from tfvr.data.layouts import nextframe as datasets
from tfvr.errors import UserError
from tfvr.models.memvsr.config import NextFrameDataConfig


def _frames(n, h=12, w=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _write_folder(folder, frames, digits=6):
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:0{digits}d}.png"), f[..., ::-1])


@pytest.fixture()
def humaneva(tmp_path):
    root = tmp_path / "HumanEva"
    _write_folder(root / "image" / "S1_Box_1_(C1)", _frames(7, seed=1))
    _write_folder(root / "image" / "S2_Walking_1_(C2)", _frames(5, seed=2))
    (root / "video" / "S3").mkdir(parents=True)
    video_io.write_video(root / "video" / "S3" / "Jog_1_(C1).avi", _frames(6, 16, 16, seed=3), fps=25)
    (root / "train_list.csv").write_text("name\nS1_Box_1_(C1)\nS3_Jog_1_(C1)\n")
    (root / "val_list.csv").write_text("S2_Walking_1_(C2)\n")
    (root / "test_list.csv").write_text("S3/Jog_1_(C1).avi\n")
    return root


def test_humaneva_splits(humaneva):
    train = datasets.humaneva_videos(str(humaneva), "train")
    assert [v.num_frames for v in train] == [7, 6]
    img = train[0].read(3)
    assert img.shape == (12, 16, 3) and np.array_equal(img, _frames(7, seed=1)[3])
    assert train[1].read(5).shape == (16, 16, 3)  # from the .avi (lossy: shape only)
    assert [v.num_frames for v in datasets.humaneva_videos(str(humaneva), "val")] == [5]
    assert len(datasets.humaneva_videos(str(humaneva), "test")) == 1


def test_humaneva_errors_name_the_file(humaneva):
    (humaneva / "val_list.csv").write_text("S2_Walking_1_(C2)\nS9_Missing_(C1)\n")
    with pytest.raises(UserError, match="val_list.csv.*S9_Missing"):
        datasets.humaneva_videos(str(humaneva), "val")
    (humaneva / "test_list.csv").unlink()
    with pytest.raises(UserError, match="test_list.csv: missing"):
        datasets.humaneva_videos(str(humaneva), "test")


def test_charades_folders_and_clips(tmp_path):
    root = tmp_path / "Charades_v1_480_img"
    for k, name in enumerate(["0A8CF", "0A8ZT", "0B1AA"]):
        _write_folder(root / name, _frames(9, seed=10 + k), digits=7)
    assert [v.name for v in datasets.charades_videos(str(root), "train")] == ["0A8CF", "0A8ZT"]
    assert [v.name for v in datasets.charades_videos(str(root), "val")] == ["0B1AA"]
    (root / "Charades_v1_test.csv").write_text("id,subject\n0A8ZT,x\n")
    assert [v.name for v in datasets.charades_videos(str(root), "val")] == ["0A8ZT"]

    cfg = NextFrameDataConfig(dataset="charades", root=str(root), input_size=3, frame_interval=2, width=8,
                              height=6, eval_clips_per_video=2)
    frames, targets = datasets.eval_clips(cfg, 3, "val")
    assert frames.shape == (2, 3, 6, 8, 3) and targets.shape == (2, 6, 8, 3)
    # clip 0 starts at frame 0: inputs 0, 2, 4, target 6 (resized with INTER_AREA)
    want = cv2.resize(_frames(9, seed=11)[6], (8, 6), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    np.testing.assert_allclose(targets[0], want, atol=1e-6)
    ds = datasets.build_train_dataset(dataclasses.replace(cfg, random_interval=True), 3, batch_size=2, seed=0)
    batch = next(iter(ds))
    assert batch["frames"].shape == (2, 3, 6, 8, 3) and batch["target"].shape == (2, 6, 8, 3)


def test_clips_too_long_for_the_videos(tmp_path):
    root = tmp_path / "c"
    _write_folder(root / "a", _frames(4))
    _write_folder(root / "b", _frames(4))
    cfg = NextFrameDataConfig(dataset="charades", root=str(root), input_size=3, frame_interval=2)
    with pytest.raises(UserError, match="frames a clip needs"):
        datasets.eval_clips(cfg, 3, "val")
