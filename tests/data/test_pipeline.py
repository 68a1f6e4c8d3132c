"""The tf.data pipeline: every transform eagerly and inside Dataset.map, then whole datasets per task."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tfvr.data import pipeline, records
from tfvr.data.config import DataConfig, EvalDataConfig
from tfvr.data.prepare import write_dataset
from tfvr.errors import ConfigError, RecordError, UserError


def both_ways(fn, *args):
    """fn(*args) eagerly and inside Dataset.map, as NumPy (nested dicts/tuples kept)."""
    eager = tf.nest.map_structure(lambda t: t.numpy(), fn(*args))
    ds = tf.data.Dataset.from_tensors(tuple(tf.convert_to_tensor(a) for a in args)).map(lambda *a: fn(*a))
    mapped = tf.nest.map_structure(lambda t: t.numpy(), next(iter(ds)))
    return eager, mapped


def seeds_both_ways(fn, seeds):
    """fn(seed) for each seed eagerly, and over a Dataset of the seeds with one map: lists of NumPy results."""
    eager = [tf.nest.map_structure(lambda t: t.numpy(), fn(tf.constant(s))) for s in seeds]
    ds = tf.data.Dataset.from_tensor_slices(np.asarray(seeds, np.int64)).map(fn)
    mapped = [tf.nest.map_structure(lambda t: t.numpy(), x) for x in ds]
    return eager, mapped


def same(a, b):
    tf.nest.map_structure(np.testing.assert_array_equal, a, b)


def block_mean(x, s):
    *lead, h, w, c = x.shape
    return x.reshape(*lead, h // s, s, w // s, s, c).mean(axis=(-4, -2))


SEED = np.array([7, 3], np.int64)


# ---------------------------------------------------------------------------------------------------------------
# Transforms


def test_window_indices_training():
    eager, mapped = seeds_both_ways(lambda s: pipeline.window_indices(12, 5, s), [[k, 1] for k in range(100)])
    same(eager, mapped)
    for e in eager:
        assert e[0] >= 0 and e[-1] <= 11 and np.all(np.diff(e) == 1)
    assert {int(e[0]) for e in eager} == set(range(8))  # every start 0..n-T is drawn


def test_window_indices_random_frames_and_short_clips():
    e, m = both_ways(lambda n, s: pipeline.window_indices(n, 5, s, random_frames_prob=1.0), np.int32(30), SEED)
    same(e, m)
    assert len(set(e)) == 5 and np.all(np.diff(e) > 0) and e.max() < 30
    # A clip shorter than the window repeats its last frame (and random frames need a long enough clip).
    e, m = both_ways(lambda n, s: pipeline.window_indices(n, 5, s, random_frames_prob=1.0), np.int32(3), SEED)
    same(e, m)
    np.testing.assert_array_equal(e, [0, 1, 2, 2, 2])


def test_window_indices_eval():
    idx = [pipeline.window_indices(20, 5, window=k, num_windows=3).numpy() for k in range(3)]
    assert [int(i[0]) for i in idx] == [0, 8, 15]
    np.testing.assert_array_equal(pipeline.window_indices(20, 5, window=0).numpy(), np.arange(7, 12))
    e, m = both_ways(lambda w: pipeline.window_indices(20, 5, window=w, num_windows=3), np.int64(1))
    same(e, m)


def test_paired_random_crop_keeps_lr_aligned():
    rng = np.random.default_rng(0)
    hr = rng.random((3, 40, 48, 3)).astype(np.float32)
    lr = block_mean(hr, 4)

    def fn(hr, lr, seed):
        return pipeline.paired_random_crop({"gt": hr}, {"lq": lr}, 16, 4, seed)

    for k in range(5):
        e, m = both_ways(fn, hr, lr, np.array([k, 9], np.int64))
        same(e, m)
        (h_out, l_out) = e
        assert h_out["gt"].shape == (3, 16, 16, 3) and l_out["lq"].shape == (3, 4, 4, 3)
        np.testing.assert_allclose(block_mean(h_out["gt"], 4), l_out["lq"], atol=1e-6)


def test_centre_crop_offsets():
    y, x = pipeline.crop_offsets(40, 48, 16, 4)
    assert (int(y), int(x)) == (12, 16)
    y, x = pipeline.crop_offsets(41, 48, 16, 1)
    assert (int(y), int(x)) == (12, 16)


def test_augment_is_the_same_for_every_tensor():
    rng = np.random.default_rng(1)
    hr = rng.random((4, 16, 16, 3)).astype(np.float32)
    lr = block_mean(hr, 4)
    labels = rng.integers(0, 5, (4, 16, 16)).astype(np.int32)
    seen = set()
    eager, mapped = seeds_both_ways(lambda s: pipeline.augment({"hr": hr, "lr": lr, "lab": labels}, s),
                                    [[k, 0] for k in range(24)])
    same(eager, mapped)
    for e in eager:
        np.testing.assert_allclose(block_mean(e["hr"], 4), e["lr"], atol=1e-6)
        # labels were made to follow the image: recover the transform from the image and check it on labels
        found = None
        for rev in (False, True):
            for rot in range(4):
                for vf in (False, True):
                    for hf in (False, True):
                        x = hr[:, :, ::-1] if hf else hr
                        x = x[:, ::-1] if vf else x
                        x = np.rot90(x, rot, axes=(1, 2))
                        x = x[::-1] if rev else x
                        if np.array_equal(x, e["hr"]):
                            found = (hf, vf, rot, rev)
                            y = labels[:, :, ::-1] if hf else labels
                            y = y[:, ::-1] if vf else y
                            y = np.rot90(y, rot, axes=(1, 2))
                            y = y[::-1] if rev else y
                            np.testing.assert_array_equal(y, e["lab"])
        assert found is not None
        seen.add(found)
    assert len(seen) > 8  # the transforms really vary
    # Every symmetry of the square turns up; rot90 alone gives the 4 rotations only.
    spatial = {pipeline.augment({"x": hr[:1]}, [k, 5], temporal_reverse=False)["x"].numpy().tobytes()
               for k in range(64)}
    assert len(spatial) == 8
    rots = {pipeline.augment({"x": hr[:1]}, [k, 5], hflip=False, vflip=False, temporal_reverse=False)["x"].numpy()
            .tobytes() for k in range(32)}
    assert rots == {np.rot90(hr[:1], r, axes=(1, 2)).tobytes() for r in range(4)}
    off = pipeline.augment({"x": tf.constant(hr)}, SEED, hflip=False, vflip=False, rot90=False,
                           temporal_reverse=False)
    np.testing.assert_array_equal(off["x"].numpy(), hr)


def test_noise_blur_quantize():
    x = np.full((3, 32, 32, 3), 0.5, np.float32)
    e, m = both_ways(lambda a, s: pipeline.add_noise(a, 25.0, s), x, SEED)
    same(e, m)
    assert abs((e - 0.5).std() - 25 / 255) < 0.005 and e.min() >= 0 and e.max() <= 1
    frames = np.random.default_rng(2).random((7, 4, 4, 3)).astype(np.float32)
    e, m = both_ways(lambda a: pipeline.temporal_blur(a, 3), frames)
    np.testing.assert_allclose(e, m, atol=1e-6)
    np.testing.assert_allclose(e, np.stack([frames[t:t + 3].mean(0) for t in range(5)]), atol=1e-6)
    e, m = both_ways(pipeline.quantize, frames)
    same(e, m)
    np.testing.assert_allclose(e * 255, np.round(frames * 255), atol=1e-4)


def test_downscale_is_matlab_bicubic():
    from tfvr.data import degrade

    img = np.random.default_rng(3).random((2, 16, 24, 3)).astype(np.float32)
    e, m = both_ways(lambda a: pipeline.downscale(a, 4), img)
    np.testing.assert_allclose(e, m, atol=1e-6)
    ref = np.stack([degrade.imresize(f.astype(np.float64), 0.25) for f in img])
    np.testing.assert_allclose(e, ref, atol=1e-5)
    # Unknown H, W at trace time (whole frames of varying size): the NumPy path, same numbers.
    ds = tf.data.Dataset.from_generator(lambda: iter([img]), output_signature=tf.TensorSpec([2, None, None, 3]))
    dyn = next(iter(ds.map(lambda a: pipeline.downscale(a, 4)))).numpy()
    np.testing.assert_allclose(dyn, ref, atol=1e-5)


def test_polygon_masks():
    e, m = both_ways(lambda s: pipeline.polygon_masks(5, 32, 40, s), SEED)
    same(e, m)
    assert e.shape == (5, 32, 40, 1) and set(np.unique(e)) <= {0.0, 1.0} and e.max() == 1.0


# ---------------------------------------------------------------------------------------------------------------
# Datasets on records written here


def _clips(n, t=8, h=24, w=32, seed=0, lr_scale=0, labels=False, source="s"):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        # Smooth content (random values at 1/8 resolution, upsampled): noise statistics stay measurable.
        base = rng.random((t, h // 8 + 1, w // 8 + 1, 3))
        frames = np.stack([np.kron(b, np.ones((8, 8, 1)))[:h, :w] for b in base])
        frames = (frames * 200 + 28).astype(np.uint8)
        kw = {}
        if lr_scale:
            kw.update(lq=np.round(block_mean(frames.astype(np.float64), lr_scale)).astype(np.uint8), lq_kind="lr")
        if labels:
            kw.update(labels=rng.integers(0, 5, (t, h, w)), instances=rng.integers(0, 9, (t, h, w)))
        out.append(records.Clip(frames=frames, source=f"{source}{k}", frame_indices=list(range(t)), clip=k, **kw))
    return out


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("plain") / "recs"
    write_dataset(d, {"train": _clips(6), "val": _clips(3, seed=1)}, num_shards=2)
    return d


@pytest.fixture(scope="module")
def lr_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("lr") / "recs"
    write_dataset(d, {"train": _clips(4, lr_scale=4, labels=True), "val": _clips(2, lr_scale=4, labels=True)})
    return d


def _cfg(**kw):
    base = dict(task="denoise", batch_size=2, crop_size=16, num_frames=3, deterministic=True, shuffle_buffer=4,
                eval=EvalDataConfig(batch_size=1))
    base.update(kw)
    return DataConfig(**base)


def _take(ds, n):
    return [tf.nest.map_structure(lambda t: t.numpy(), b) for b in ds.take(n)]


def test_denoise_batches(plain_dir):
    (b,) = _take(pipeline.build_dataset(_cfg(), records_dir=plain_dir), 1)
    assert set(b) == {"lq", "gt"}
    assert b["gt"].shape == (2, 3, 16, 16, 3) and b["gt"].dtype == np.float32
    assert 0 <= b["gt"].min() and b["gt"].max() <= 1 and 0 <= b["lq"].min() and b["lq"].max() <= 1
    assert abs((b["lq"] - b["gt"]).std() - 25 / 255) < 0.01
    np.testing.assert_allclose(b["lq"] * 255, np.round(b["lq"] * 255), atol=1e-3)  # 8-bit levels


def test_deterministic_and_seeded(plain_dir):
    a = _take(pipeline.build_dataset(_cfg(), records_dir=plain_dir), 4)
    b = _take(pipeline.build_dataset(_cfg(), records_dir=plain_dir), 4)
    same(a, b)
    c = _take(pipeline.build_dataset(_cfg(seed=5), records_dir=plain_dir), 4)
    assert not np.array_equal(a[0]["gt"], c[0]["gt"])
    # Parallel (non-deterministic order) mode still gives valid batches.
    (d,) = _take(pipeline.build_dataset(_cfg(deterministic=False), records_dir=plain_dir), 1)
    assert d["gt"].shape == (2, 3, 16, 16, 3)


def test_blind_denoise_sigma_range(plain_dir):
    cfg = _cfg(noise_sigma=0.0, noise_sigma_max=50.0, batch_size=6, clip_noise=False, quantize=False)
    (b,) = _take(pipeline.build_dataset(cfg, records_dir=plain_dir), 1)
    stds = (b["lq"] - b["gt"]).reshape(6, -1).std(axis=1) * 255
    assert stds.min() < stds.max() - 3 and stds.max() < 52


def test_deblur_by_temporal_average(plain_dir):
    cfg = _cfg(task="deblur", blur_frames=3, quantize=False, hflip=False, vflip=False, rot90=False,
               temporal_reverse=False)
    (b,) = _take(pipeline.build_dataset(cfg, records_dir=plain_dir), 1)
    assert b["lq"].shape == b["gt"].shape == (2, 3, 16, 16, 3)
    # lq[t] is the mean of frames t-1, t, t+1 of the clip: gt[t] is frames[t], so lq[1] = mean(gt[0..2]).
    np.testing.assert_allclose(b["lq"][:, 1], b["gt"].mean(axis=1), atol=1e-6)


def test_sr_with_paired_lr_stays_aligned(lr_dir):
    cfg = _cfg(task="sr", scale=4, crop_size=16)
    for b in _take(pipeline.build_dataset(cfg, records_dir=lr_dir), 3):
        assert b["lq"].shape == (2, 3, 4, 4, 3) and b["gt"].shape == (2, 3, 16, 16, 3)
        np.testing.assert_allclose(block_mean(b["gt"], 4), b["lq"], atol=0.6 / 255)


def test_sr_bicubic_on_the_fly(plain_dir):
    (b,) = _take(pipeline.build_dataset(_cfg(task="sr", scale=2, crop_size=16), records_dir=plain_dir), 1)
    assert b["lq"].shape == (2, 3, 8, 8, 3)
    assert np.abs(block_mean(b["gt"], 2) - b["lq"]).mean() < 0.05


def test_label2video(lr_dir):
    (b,) = _take(pipeline.build_dataset(_cfg(task="label2video"), records_dir=lr_dir), 1)
    assert set(b) == {"frames", "labels", "instances"}
    assert b["labels"].dtype == np.int32 and b["labels"].shape == (2, 3, 16, 16)
    assert b["labels"].max() <= 4 and b["instances"].max() <= 8


def test_label2video_needs_labels(plain_dir):
    with pytest.raises(UserError, match="label maps"):
        pipeline.build_dataset(_cfg(task="label2video"), records_dir=plain_dir)


def test_inpaint(plain_dir):
    (b,) = _take(pipeline.build_dataset(_cfg(task="inpaint"), records_dir=plain_dir), 1)
    assert b["frames"].shape == (2, 3, 16, 16, 3) and b["masks"].shape == (2, 3, 16, 16, 1)


def test_input_context_per_replica_batch_and_file_shards(plain_dir):
    cfg = _cfg(batch_size=4, eval=EvalDataConfig(batch_size=2, crop_size=8))
    ctx = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i, num_replicas_in_sync=2)
           for i in range(2)]
    (b,) = _take(pipeline.build_dataset(cfg, input_context=ctx[0], records_dir=plain_dir), 1)
    assert b["gt"].shape[0] == 2
    # Evaluation (file order): each pipeline reads its own shard; together they read every clip once.
    seen = []
    for c in ctx:
        gts = np.concatenate([x["gt"] for x in _take(pipeline.build_eval_dataset(cfg, c, records_dir=plain_dir), 10)])
        seen.append({g.tobytes() for g in gts})
    assert not seen[0] & seen[1] and len(seen[0]) + len(seen[1]) == 3


def test_more_pipelines_than_files_shards_records(tmp_path):
    d = tmp_path / "one"
    write_dataset(d, {"val": _clips(4)})
    cfg = _cfg(eval=EvalDataConfig(batch_size=2, crop_size=8))
    seen = []
    for i in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i, num_replicas_in_sync=2)
        gts = np.concatenate([x["gt"] for x in _take(pipeline.build_eval_dataset(cfg, ctx, records_dir=d), 10)])
        seen.append({g.tobytes() for g in gts})
    assert len(seen[0]) == len(seen[1]) == 2 and not seen[0] & seen[1]


def test_eval_dataset(plain_dir):
    cfg = _cfg(eval=EvalDataConfig(batch_size=1, windows_per_clip=2, seed=3))
    a = _take(pipeline.build_eval_dataset(cfg, records_dir=plain_dir), 100)
    assert len(a) == 6  # 3 clips x 2 windows
    assert a[0]["gt"].shape == (1, 3, 24, 32, 3)  # whole frames
    same(a, _take(pipeline.build_eval_dataset(cfg, records_dir=plain_dir), 100))
    # Training seed does not change evaluation; the eval seed does.
    same(a, _take(pipeline.build_eval_dataset(dataclasses.replace(cfg, seed=99), records_dir=plain_dir), 100))
    other = dataclasses.replace(cfg, eval=EvalDataConfig(batch_size=1, windows_per_clip=2, seed=4))
    assert not np.array_equal(a[0]["lq"], _take(pipeline.build_eval_dataset(other, records_dir=plain_dir), 1)[0]["lq"])
    # Windows: first at the clip start, second at its end (8 frames, 3 per window), whole frames.
    clip0 = _clips(3, seed=1)[0].frames / 255.0
    np.testing.assert_allclose(a[0]["gt"][0], clip0[0:3], atol=1e-6)
    np.testing.assert_allclose(a[1]["gt"][0], clip0[5:8], atol=1e-6)
    few = dataclasses.replace(cfg, eval=EvalDataConfig(batch_size=2, num_clips=2, crop_size=16))
    b = _take(pipeline.build_eval_dataset(few, records_dir=plain_dir), 100)
    assert [x["gt"].shape for x in b] == [(2, 3, 16, 16, 3)]


def test_eval_sr_whole_frames_are_cut_to_the_scale(tmp_path):
    d = tmp_path / "odd"
    write_dataset(d, {"val": _clips(1, h=26, w=30)})
    cfg = _cfg(task="sr", scale=4, crop_size=16)
    ds = pipeline.build_eval_dataset(cfg, records_dir=d)
    assert ds.element_spec["lq"].shape.as_list() == [None, 3, 6, 7, 3]  # one frame size: static shapes
    (b,) = _take(ds, 1)
    assert b["gt"].shape == (1, 3, 24, 28, 3) and b["lq"].shape == (1, 3, 6, 7, 3)
    # Frames of several sizes: dynamic shapes, resized through NumPy.
    d2 = tmp_path / "mixed"
    write_dataset(d2, {"val": _clips(1, h=26, w=30) + _clips(1, h=32, w=40, seed=4)})
    ds = pipeline.build_eval_dataset(cfg, records_dir=d2)
    assert ds.element_spec["lq"].shape.as_list() == [None, 3, None, None, 3]
    assert [b["lq"].shape for b in _take(ds, 2)] == [(1, 3, 6, 7, 3), (1, 3, 8, 10, 3)]


def test_errors(plain_dir, tmp_path):
    with pytest.raises(UserError, match="no 'test' split"):
        pipeline.build_dataset(_cfg(), "test", records_dir=plain_dir)
    with pytest.raises(UserError, match="crop_size=64 is larger"):
        pipeline.build_dataset(_cfg(crop_size=64), records_dir=plain_dir)
    with pytest.raises(ConfigError, match="num_frames"):
        pipeline.build_dataset(_cfg(num_frames=4), records_dir=plain_dir)
    with pytest.raises(UserError, match="no such directory"):
        pipeline.build_dataset(_cfg(source=str(tmp_path / "nope")))
    bad = tmp_path / "bad"
    write_dataset(bad, {"train": _clips(2)})
    shard = bad / "train-00000-of-00001.tfrecord"
    shard.write_bytes(shard.read_bytes()[:-50])
    with pytest.raises(RecordError, match="train-00000-of-00001.tfrecord: truncated"):
        pipeline.build_dataset(_cfg(), records_dir=bad)
    shard.write_bytes(b"garbage" * 100)
    with pytest.raises(RecordError, match="train-00000-of-00001.tfrecord: corrupt"):
        pipeline.build_dataset(_cfg(), records_dir=bad)
