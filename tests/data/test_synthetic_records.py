"""The embedded default data: synthetic videos through the real prepare path, cached by settings."""

import dataclasses
import json

import numpy as np
import pytest

from tfvr.data import records, synthetic, synthetic_records
from tfvr.data.config import DataConfig, SyntheticConfig


def _cfg(cache, **kw):
    s = dict(num_train_videos=2, num_eval_videos=1, num_frames=20, height=40, width=48, clip_len=6, seed=5)
    s.update(kw)
    return DataConfig(num_frames=3, cache_dir=str(cache), synthetic=SyntheticConfig(**s))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    cfg = _cfg(cache)
    return cfg, synthetic_records.ensure(cfg)


def test_layout_and_manifest(made):
    cfg, d = made
    m = json.loads((d / "manifest.json").read_text())
    assert d.parent == (d.parent) and d.name.startswith("synthetic-")
    assert m["layout"] == "videos" and m["counts"]["failed"] == 0
    assert {v["path"]: v["split"] for v in m["videos"]} == {
        "train/video_000.mp4": "train", "train/video_001.mp4": "train", "val/video_000.mp4": "val"}
    for split in ("train", "val"):
        info = m["splits"][split]
        assert info["clips"] > 0 and info["lq_kind"] == "blur" and info["labels"]
    assert m["synthetic"]["num_frames"] == 20 and m["synthetic"]["version"] == synthetic_records.VERSION
    # Scenes come from PySceneDetect on the .mp4 and match the generator's cuts.
    for split, name, seed, opts in synthetic_records.video_plan(cfg.synthetic):
        v = next(v for v in m["videos"] if v["path"] == name)
        video = synthetic.generate(seed, 20, 40, 48, fps=cfg.synthetic.fps, **opts)
        assert v["scenes"] == [list(s) for s in video.scenes]


def test_records_hold_generator_ground_truth(made):
    cfg, d = made
    plan = {name: (seed, opts) for _, name, seed, opts in synthetic_records.video_plan(cfg.synthetic)}
    clips = [c for p in records.list_shards(d, "train") for c in records.read_clips(p)]
    assert clips
    for c in clips:
        seed, opts = plan[c["source"]]
        v = synthetic.generate(seed, 20, 40, 48, fps=cfg.synthetic.fps, **opts)
        idx = c["frame_indices"]
        np.testing.assert_array_equal(c["frames"], v.frames[idx])  # exact frames, not mp4-decoded
        np.testing.assert_array_equal(c["lq"], v.blurred[idx])
        np.testing.assert_array_equal(c["labels"], v.labels[idx])
        np.testing.assert_array_equal(c["instances"], v.instances[idx])
        assert c["lq_kind"] == "blur" and len(idx) == 6 and np.all(np.diff(idx) == 1)


def test_train_and_held_out_use_disjoint_seeds(made):
    cfg, _ = made
    plan = synthetic_records.video_plan(cfg.synthetic)
    train = {seed for split, _, seed, _ in plan if split == "train"}
    val = {seed for split, _, seed, _ in plan if split == "val"}
    assert train and val and not train & val


def test_cached_second_call(made):
    cfg, d = made
    before = (d / "manifest.json").stat().st_mtime_ns
    assert synthetic_records.ensure(dataclasses.replace(cfg, seed=123, batch_size=1)) == d  # data-irrelevant fields
    assert (d / "manifest.json").stat().st_mtime_ns == before
    other = synthetic_records.settings_hash(dataclasses.replace(cfg.synthetic, num_frames=21))
    assert other != synthetic_records.settings_hash(cfg.synthetic)


def test_decoded_frames_option(tmp_path):
    cfg = _cfg(tmp_path, num_train_videos=1, num_eval_videos=0, height=33, width=48, exact_frames=False, cuts=False)
    d = synthetic_records.ensure(cfg)
    (c,) = records.read_clips(records.list_shards(d, "train")[0])[:1]
    v = synthetic.generate(5, 20, 33, 48, fps=cfg.synthetic.fps, cuts=0, fade_frames=0)
    idx = c["frame_indices"]
    assert c["frames"].shape[1:] == (33, 48, 3)  # the odd height padded by the mp4 writer is cut away
    assert not np.array_equal(c["frames"], v.frames[idx])  # mpeg-4 decoded
    assert np.abs(c["frames"].astype(int) - v.frames[idx]).mean() < 12


def test_pipeline_reads_the_default_data(made):
    from tfvr.data import pipeline

    cfg, _ = made
    cfg = dataclasses.replace(cfg, crop_size=32, batch_size=2, deterministic=True, task="deblur")
    b = next(iter(pipeline.build_dataset(cfg)))
    assert b["lq"].shape == (2, 3, 32, 32, 3)
    e = next(iter(pipeline.build_eval_dataset(dataclasses.replace(cfg, task="label2video"))))
    assert e["labels"].shape == (1, 3, 40, 48)
