"""`tfvr.data.prepare.prepare`: videos and frame layouts → shards + manifest, failures, atomic output."""

import json

import cv2
import numpy as np
import pytest

from tfvr.data import prepare as prep
from tfvr.data import records, synthetic, video_io
from tfvr.data.scenes import SceneSettings
from tfvr.errors import UserError, VideoReadError


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    synthetic.write_mp4(synthetic.generate(11, 36, 48, 64, cuts=[20], fps=10.0), d / "good.mp4", fps=10.0)
    synthetic.write_mp4(synthetic.generate(12, 24, 48, 64, fps=10.0), d / "sub" / "second.mp4", fps=10.0)
    (d / "broken.mp4").write_text("this is not a video")
    (d / "README.txt").write_text("ignored")
    return d


SETTINGS = SceneSettings(clip_len=5, interval=0.1)


def _all_clips(out, split="train"):
    return [c for p in records.list_shards(out, split) for c in records.read_clips(p)]


def test_good_and_broken_video(video_dir, tmp_path):
    out = tmp_path / "out"
    result = prep.prepare(video_dir, out, settings=SETTINGS, progress=False)
    assert not result.ok and [r.path for r in result.failed] == ["broken.mp4"]
    m = json.loads((out / "manifest.json").read_text())
    assert m == result.manifest and m["format"] == "tfvr-clips" and m["layout"] == "videos"
    videos = {v["path"]: v for v in m["videos"]}
    assert set(videos) == {"broken.mp4", "good.mp4", "sub/second.mp4"}
    assert "broken.mp4" in videos["broken.mp4"]["error"] and videos["broken.mp4"]["clips"] == 0
    good = videos["good.mp4"]
    assert good["error"] is None and good["scenes"] == [[0, 20], [20, 36]] and good["clips"] == 4 + 3
    assert videos["sub/second.mp4"]["scenes"] == [[0, 24]] and videos["sub/second.mp4"]["clips"] == 4
    assert m["counts"]["clips"] == 11 and m["counts"]["failed"] == 1 and m["counts"]["sources"] == 3
    assert m["settings"]["clip_len"] == 5 and m["settings"]["threshold"] == 25.0
    assert m["splits"]["train"]["clips"] == 11 and m["splits"]["train"]["min_clip_len"] == 5
    assert m["splits"]["train"]["shards"] == ["train-00000-of-00001.tfrecord"]

    clips = _all_clips(out)
    assert len(clips) == 11
    decoded = video_io.read_video(video_dir / "good.mp4").frames
    for c in clips:
        assert c["frames"].shape == (5, 48, 64, 3) and c["fps"] == pytest.approx(10.0)
        if c["source"] == "good.mp4":
            np.testing.assert_array_equal(c["frames"], decoded[c["frame_indices"]])
            a, b = good["scenes"][c["scene"]]
            assert a <= c["frame_indices"][0] and c["frame_indices"][-1] < b
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_output_is_atomic_on_crash(video_dir, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = records.serialize_clip

    def flaky(clip):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")
        return real(clip)

    monkeypatch.setattr(records, "serialize_clip", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        prep.prepare(video_dir, tmp_path / "out", settings=SETTINGS, progress=False)
    assert list(tmp_path.iterdir()) == [], "a crashed run left files behind"


def test_video_breaking_midway_contributes_no_clips(video_dir, tmp_path, monkeypatch):
    real = video_io.iter_frames

    def breaking(path, max_frames=None):
        def gen():
            for i, f in enumerate(real(path, max_frames)):
                if str(path).endswith("good.mp4") and i == 30:
                    raise VideoReadError(f"{path}: truncated or corrupt")
                yield f
        return gen()

    monkeypatch.setattr(video_io, "iter_frames", breaking)
    result = prep.prepare(video_dir, tmp_path / "out", settings=SETTINGS, progress=False)
    assert sorted(r.path for r in result.failed) == ["broken.mp4", "good.mp4"]
    clips = _all_clips(tmp_path / "out")
    assert {c["source"] for c in clips} == {"sub/second.mp4"} and len(clips) == 4
    assert result.manifest["counts"]["clips"] == 4


def test_existing_output_and_overwrite(video_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    with pytest.raises(UserError, match="already exists"):
        prep.prepare(video_dir, out, settings=SETTINGS, progress=False)
    # a folder prepare did not write is never replaced, even with overwrite (issue 12 case 2)
    with pytest.raises(UserError, match="did not write"):
        prep.prepare(video_dir, out, settings=SETTINGS, progress=False, overwrite=True)
    assert (out / "old.txt").read_text() == "x"
    mine = tmp_path / "mine"
    prep.prepare(video_dir, mine, settings=SETTINGS, progress=False, num_shards=2)
    prep.prepare(video_dir, mine, settings=SETTINGS, progress=False, overwrite=True, num_shards=3)
    assert sorted(p.name for p in mine.iterdir()) == [".tfvr-output", "manifest.json"] + [
        f"train-0000{k}-of-00003.tfrecord" for k in range(3)]
    with pytest.raises(UserError, match="inside the input folder"):
        prep.prepare(video_dir, video_dir / "out", settings=SETTINGS, progress=False)


def test_val_fraction_holds_out_whole_videos(video_dir, tmp_path):
    result = prep.prepare(video_dir, tmp_path / "out", settings=SETTINGS, progress=False, val_fraction=0.34)
    splits = {v["path"]: v["split"] for v in result.manifest["videos"]}
    assert sorted(splits.values()).count("val") == 1
    val_video = next(p for p, s in splits.items() if s == "val")
    assert {c["source"] for c in _all_clips(tmp_path / "out", "val")} <= {val_video}
    assert val_video not in {c["source"] for c in _all_clips(tmp_path / "out", "train")}


def _png(path, img):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img[..., ::-1])


def test_reds_layout_with_lr_pairs(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "REDS"
    hr = {}
    for clip in ("000", "001", "002"):
        hr[clip] = rng.integers(0, 256, (7, 16, 24, 3), dtype=np.uint8)
        for i, f in enumerate(hr[clip]):
            _png(src / "train_sharp" / clip / f"{i:08d}.png", f)
            _png(src / "train_sharp_bicubic" / "X4" / clip / f"{i:08d}.png", f[::4, ::4])
    result = prep.prepare(src, tmp_path / "out", settings=SceneSettings(clip_len=3), progress=False)
    m = result.manifest
    assert result.ok and m["layout"] == "reds"
    assert m["splits"]["train"]["clips"] == 4 and m["splits"]["val"]["clips"] == 2  # 7 frames -> 2 clips of 3
    assert m["splits"]["train"]["lq_kind"] == "lr" and m["splits"]["train"]["lq_scale"] == 4
    clips = _all_clips(tmp_path / "out")
    c = next(c for c in clips if c["source"] == "train_sharp/002" and c["clip"] == 1)
    np.testing.assert_array_equal(c["frames"], hr["002"][3:6])
    np.testing.assert_array_equal(c["lq"], hr["002"][3:6, ::4, ::4])
    assert c["lq_kind"] == "lr" and list(c["frame_indices"]) == [3, 4, 5]
    assert {c["source"] for c in _all_clips(tmp_path / "out", "val")} == {"train_sharp/000"}


def test_bad_sequence_is_listed_and_others_prepared(tmp_path):
    rng = np.random.default_rng(1)
    src = tmp_path / "frames"
    for i in range(4):
        _png(src / "ok" / f"{i}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        _png(src / "mixed" / f"{i}.png", rng.integers(0, 256, (8 + i % 2, 8, 3), dtype=np.uint8))
    result = prep.prepare(src, tmp_path / "out", settings=SceneSettings(clip_len=4), progress=False)
    assert [r.path for r in result.failed] == ["mixed"]
    assert "different sizes" in result.failed[0].error
    assert result.manifest["counts"]["clips"] == 1


def test_vimeo_septuplet_is_one_clip(tmp_path):
    rng = np.random.default_rng(2)
    root = tmp_path / "vimeo"
    for key in ("00001/0001", "00001/0002"):
        for i in range(1, 8):
            _png(root / "sequences" / key / f"im{i}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    (root / "sep_trainlist.txt").write_text("00001/0001\n")
    (root / "sep_testlist.txt").write_text("00001/0002\n")
    m = prep.prepare(root, tmp_path / "out", settings=SceneSettings(clip_len=3), progress=False).manifest
    assert m["splits"]["train"]["clips"] == 1 and m["splits"]["train"]["min_clip_len"] == 7
    assert m["splits"]["val"]["clips"] == 1


def test_load_manifest_errors(tmp_path):
    with pytest.raises(UserError, match="manifest.json: not found"):
        prep.load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{nope")
    with pytest.raises(UserError, match=r"manifest.json: unreadable manifest \(.* at line 1\)$"):
        prep.load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("[]")  # was an AttributeError traceback
    with pytest.raises(UserError, match=r"manifest.json: not a tfvr clip manifest \(not a JSON object\)$"):
        prep.load_manifest(tmp_path)
