"""The degradation chain (`tfvr.data.degrade_chain`): each step eagerly and inside Dataset.map, the order of the
steps, one kernel / noise level per clip, stateless seeds; and rectangular crops / the chain in `build_dataset`."""

import dataclasses

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfvr.data import degrade, degrade_chain, pipeline, records
from tfvr.data.config import DataConfig, DegradeConfig, EvalDataConfig, format_size, parse_size
from tfvr.data.prepare import write_dataset
from tfvr.errors import ConfigError, UserError

SEED = np.array([11, 5], np.int64)


def both_ways(fn, *args):
    eager = tf.nest.map_structure(lambda t: t.numpy(), fn(*[tf.convert_to_tensor(a) for a in args]))
    ds = tf.data.Dataset.from_tensors(tuple(tf.convert_to_tensor(a) for a in args)).map(lambda *a: fn(*a))
    mapped = tf.nest.map_structure(lambda t: t.numpy(), next(iter(ds)))
    return eager, mapped


def _frames(t=3, h=24, w=32, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.random((t, h // 4, w // 4, 3))
    return np.stack([np.kron(b, np.ones((4, 4, 1))) for b in base]).astype(np.float32) * 0.8 + 0.1


# ---------------------------------------------------------------------------------------------------------------
# Kernels and steps


@pytest.mark.parametrize("sx,sy,theta", [(1.3, 1.3, 0.0), (2.5, 0.7, 0.6), (0.4, 2.0, -2.1)])
def test_bivariate_gaussian_matches_basicsr_formula(sx, sy, theta):
    ref = degrade_chain.bivariate_gaussian_np(21, sx, sy, theta, isotropic=False)
    got = degrade_chain.bivariate_gaussian(21, sx, sy, theta).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-7)
    assert abs(got.sum() - 1) < 1e-5
    # Hand check at the centre and one tap: exp(-x^T Sigma^-1 x / 2) / Z.
    u = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    inv = np.linalg.inv(u @ np.diag([sx**2, sy**2]) @ u.T)
    v = np.array([1.0, 0.0])  # x = +1 (column), y = 0
    assert abs(got[10, 11] / got[10, 10] - np.exp(-0.5 * v @ inv @ v)) < 1e-5


def test_filter2d_is_cv2_filter2d_with_reflect101():
    x = _frames(2, 20, 28)
    k = degrade_chain.bivariate_gaussian_np(7, 1.7, 0.9, 0.4)
    ref = np.stack([cv2.filter2D(f, -1, k.astype(np.float32)) for f in x])  # default border: REFLECT_101
    e, m = both_ways(lambda a, b: degrade_chain.filter2d(a, b), x, k.astype(np.float32))
    np.testing.assert_allclose(e, ref, atol=1e-5)
    np.testing.assert_array_equal(e, m)


def _cfg(**kw):
    return dataclasses.replace(DegradeConfig(), **kw)


@pytest.mark.parametrize("steps,shape", [
    (("blur",), (3, 24, 32, 3)),
    (("down",), (3, 12, 16, 3)),
    (("down", "up"), (3, 24, 32, 3)),
    (("noise",), (3, 24, 32, 3)),
    (("poisson",), (3, 24, 32, 3)),
    (("temporal_blur",), (1, 24, 32, 3)),
    (("quantize",), (3, 24, 32, 3)),
])
def test_each_step_eagerly_and_in_dataset_map(steps, shape):
    cfg = _cfg(poisson_prob=1.0, temporal_blur_frames=3, blur_kernel_size=7)
    x = _frames()
    e, m = both_ways(lambda f, s: degrade_chain.apply_chain(f, steps, cfg, 2, s), x, SEED)
    assert e.shape == shape
    np.testing.assert_allclose(e, m, atol=1e-6)
    if steps != ("quantize",):
        assert not np.allclose(e, x[: shape[0], : shape[1], : shape[2]])
    else:
        np.testing.assert_allclose(e * 255, np.round(x * 255), atol=1e-3)


def test_down_step_is_matlab_bicubic_bit_exact():
    x = _frames(2, 24, 32)
    got = degrade_chain.apply_chain(x, ("down",), DegradeConfig(), 2, SEED).numpy()
    np.testing.assert_array_equal(got, degrade.tf_imresize(x, 0.5).numpy())
    np.testing.assert_allclose(got[0], degrade.imresize(x[0], 0.5), atol=1e-6)


def test_down_up_for_same_size_models(rect_dirs):
    x = _frames(2, 24, 32)
    got = degrade_chain.apply_chain(x, ("down", "up"), DegradeConfig(), 2, SEED).numpy()
    np.testing.assert_array_equal(got, degrade.tf_imresize(degrade.tf_imresize(x, 0.5), 2.0).numpy())
    cfg = _data(task="denoise", scale=2, crop_size="16x24", degradations=("blur", "down", "noise", "up"))
    b = _first(pipeline.build_dataset(cfg, records_dir=rect_dirs / "plain"))
    assert b["lq"].shape == b["gt"].shape == (2, 3, 16, 24, 3)


def test_temporal_blur_step_is_the_gopro_average():
    x = _frames(5, 8, 8)
    got = degrade_chain.apply_chain(x, ("temporal_blur",), _cfg(temporal_blur_frames=3), 1, SEED).numpy()
    np.testing.assert_allclose(got, degrade.temporal_blur(x, 3), atol=1e-6)


def test_blur_is_one_kernel_per_clip():
    # Identical frames stay identical: every frame of the clip gets the same kernel.
    x = np.repeat(_frames(1), 4, axis=0)
    out, params = degrade_chain.apply_chain(x, ("blur",), _cfg(blur_sigma_min=1.0), 1, SEED, return_params=True)
    out = out.numpy()
    for t in range(1, 4):
        np.testing.assert_array_equal(out[t], out[0])
    k = params["0/blur/kernel"].numpy()
    np.testing.assert_allclose(out, degrade_chain.filter2d(x, k).numpy(), atol=1e-6)
    # Different clips (seeds) get different kernels.
    _, p2 = degrade_chain.apply_chain(x, ("blur",), _cfg(), 1, SEED + 1, return_params=True)
    assert not np.allclose(p2["0/blur/kernel"].numpy(), k)


def test_noise_level_is_per_clip_and_in_range():
    x = np.full((4, 32, 32, 3), 0.5, np.float32)
    cfg = _cfg(noise_sigma_min=5.0, noise_sigma_max=20.0, clip=False)
    sigmas = []
    for k in range(6):
        out, p = degrade_chain.apply_chain(x, ("noise",), cfg, 1, SEED + k, return_params=True)
        sigma = float(p["0/noise/sigma"])
        assert 5.0 <= sigma <= 20.0
        sigmas.append(sigma)
        per_frame = (out.numpy() - x).reshape(4, -1).std(axis=1) * 255
        np.testing.assert_allclose(per_frame, sigma, rtol=0.1)  # the same level in every frame
        assert not np.allclose(out[0], out[1])  # but not the same noise
    assert max(sigmas) - min(sigmas) > 1


def test_gray_noise_shares_the_channels():
    x = np.full((2, 8, 8, 3), 0.5, np.float32)
    out = degrade_chain.apply_chain(x, ("noise",), _cfg(noise_gray_prob=1.0, clip=False), 1, SEED).numpy()
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_poisson_noise_statistics():
    x = np.full((2, 64, 64, 3), 0.25, np.float32)
    out, p = degrade_chain.apply_chain(x, ("poisson",), _cfg(poisson_prob=1.0, poisson_scale_min=1.0,
                                                             poisson_scale_max=1.0, clip=False), 1, SEED,
                                       return_params=True)
    noise = out.numpy() - x
    # Poisson(0.25 * 256) / 256 has mean 0.25 and std sqrt(64) / 256 = 1/32.
    assert abs(noise.mean()) < 2e-3
    assert abs(noise.std() - 1 / 32) < 2e-3
    assert float(p["0/poisson/scale"]) == 1.0


def test_probabilities_switch_steps_off():
    x = _frames()
    cfg = _cfg(blur_prob=0.0, noise_prob=0.0, poisson_prob=0.0)
    out = degrade_chain.apply_chain(x, ("blur", "noise", "poisson"), cfg, 1, SEED).numpy()
    np.testing.assert_array_equal(out, x)
    runs = [bool(degrade_chain.apply_chain(x, ("blur",), _cfg(blur_prob=0.5), 1, SEED + k,
                                           return_params=True)[1]["0/blur/run"]) for k in range(20)]
    assert 0 < sum(runs) < 20


def test_chain_order_matters_and_is_the_composition():
    x = _frames(2, 32, 32)
    cfg = _cfg(blur_sigma_min=1.5, blur_sigma_max=2.5, noise_sigma_min=10.0, noise_sigma_max=10.0, clip=False,
               blur_kernel_size=9)
    a, pa = degrade_chain.apply_chain(x, ("blur", "down", "noise"), cfg, 2, SEED, return_params=True)
    b = degrade_chain.apply_chain(x, ("down", "blur", "noise"), cfg, 2, SEED)
    assert a.shape == b.shape == (2, 16, 16, 3)
    assert np.abs(a.numpy() - b.numpy()).mean() > 1e-3
    # blur -> down by hand with the drawn kernel; the remaining difference is exactly the noise step.
    k = pa["0/blur/kernel"].numpy()
    manual = degrade.tf_imresize(degrade_chain.filter2d(x, k), 0.5).numpy()
    res = a.numpy() - manual
    assert abs(res.std() * 255 - 10.0) < 1.0 and abs(res.mean()) < 2e-3
    # Same seed, same output (stateless); eager and Dataset.map agree for the whole chain.
    e, m = both_ways(lambda f, s: degrade_chain.apply_chain(f, ("blur", "down", "noise"), cfg, 2, s), x, SEED)
    np.testing.assert_allclose(e, a.numpy(), atol=1e-6)
    np.testing.assert_allclose(e, m, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Config: sizes and chain validation


def test_parse_size_forms():
    assert parse_size(64) == (64, 64)
    assert parse_size("64") == (64, 64)
    for text in ("360x640", "360X640", "360×640", "360,640", "(360, 640)", "[360, 640]"):
        assert parse_size(text) == (360, 640), text
    assert parse_size((360, 640)) == (360, 640)
    assert format_size((64, 64)) == "64" and format_size("360, 640") == "360x640"
    with pytest.raises(ConfigError, match="crop_size"):
        parse_size("big")
    assert DataConfig(crop_size=96).crop_hw == (96, 96)
    assert DataConfig(crop_size=96).crop_size == "96"


def test_old_config_json_with_int_crop_size_loads(tmp_path):
    import json

    from tfvr.config import from_dict, to_dict
    from tfvr.models.sttn_restore.config import STTNRestoreExperiment

    d = to_dict(STTNRestoreExperiment())
    d["data"]["crop_size"] = 48  # what runs before rectangular crops wrote
    d["data"]["eval"]["crop_size"] = 0
    exp = from_dict(STTNRestoreExperiment, json.loads(json.dumps(d)))
    assert exp.data.crop_hw == (48, 48) and exp.data.eval.crop_hw == (0, 0)


@pytest.mark.parametrize("kw,field", [
    (dict(task="sr", scale=4, crop_size="32x30"), "crop_size"),
    (dict(task="sr", scale=2, degradations=("blur", "noise")), "degradations"),
    (dict(task="denoise", degradations=("down",)), "degradations"),
    (dict(task="denoise", scale=2, degradations=("up", "down")), "degradations"),
    (dict(task="denoise", scale=2, crop_size=15, degradations=("down", "up")), "crop_size"),
    (dict(task="denoise", degradations=("sharpen",)), "degradations"),
    (dict(task="inpaint", degradations=("noise",)), "degradations"),
    (dict(task="deblur", lq_kind="blur_lr"), "lq_kind"),
    (dict(task="sr", lq_kind="blur_comp"), "lq_kind"),
    (dict(task="sr", lq_kind="rgb"), "lq_kind"),
    (dict(degrade=DegradeConfig(blur_kernel_size=4), degradations=("blur",)), "degrade.blur_kernel_size"),
])
def test_chain_and_size_validation(kw, field):
    with pytest.raises(ConfigError, match=f"data.{field}"):
        DataConfig(**kw).validate()


# ---------------------------------------------------------------------------------------------------------------
# In build_dataset


def _clips(n, h=40, w=64, t=6, seed=0, lr_scale=0):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        base = rng.random((t, h // 8, w // 8, 3))
        frames = (np.stack([np.kron(b, np.ones((8, 8, 1))) for b in base]) * 200 + 28).astype(np.uint8)
        kw = {}
        if lr_scale:
            lq = frames.astype(np.float64).reshape(t, h // lr_scale, lr_scale, w // lr_scale, lr_scale, 3)
            kw.update(lq=np.round(lq.mean(axis=(2, 4))).astype(np.uint8), lq_kind="lr")
        out.append(records.Clip(frames=frames, source=f"c{k}", frame_indices=list(range(t)), clip=k, **kw))
    return out


@pytest.fixture(scope="module")
def rect_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("rect")
    write_dataset(root / "plain", {"train": _clips(3), "val": _clips(2, seed=1)})
    write_dataset(root / "lr", {"train": _clips(3, lr_scale=4), "val": _clips(2, seed=1, lr_scale=4)})
    return root


def _data(**kw):
    base = dict(batch_size=2, num_frames=3, deterministic=True, shuffle_buffer=2, eval=EvalDataConfig(batch_size=1))
    base.update(kw)
    return DataConfig(**base)


def _first(ds):
    return tf.nest.map_structure(lambda t: t.numpy(), next(iter(ds)))


def test_rectangular_crop_for_sr_keeps_the_lr_grid(rect_dirs):
    cfg = _data(task="sr", scale=4, crop_size="16x32", eval=EvalDataConfig(crop_size="24x40"))
    for b in pipeline.build_dataset(cfg, records_dir=rect_dirs / "lr").take(3):
        b = tf.nest.map_structure(lambda t: t.numpy(), b)
        assert b["gt"].shape == (2, 3, 16, 32, 3) and b["lq"].shape == (2, 3, 4, 8, 3)
        gt = b["gt"].reshape(2, 3, 4, 4, 8, 4, 3).mean(axis=(3, 5))
        np.testing.assert_allclose(gt, b["lq"], atol=0.6 / 255)  # the LR crop covers exactly the HR crop
    ev = _first(pipeline.build_eval_dataset(cfg, records_dir=rect_dirs / "lr"))
    assert ev["gt"].shape == (1, 3, 24, 40, 3) and ev["lq"].shape == (1, 3, 6, 10, 3)
    # On-the-fly bicubic on a rectangular crop.
    b = _first(pipeline.build_dataset(dataclasses.replace(cfg, crop_size="16x24"), records_dir=rect_dirs / "plain"))
    assert b["gt"].shape == (2, 3, 16, 24, 3) and b["lq"].shape == (2, 3, 4, 6, 3)


def test_rectangular_crop_too_large_names_the_field(rect_dirs):
    with pytest.raises(UserError, match="crop_size=32x72 is larger"):
        pipeline.build_dataset(_data(task="denoise", crop_size="32x72"), records_dir=rect_dirs / "plain")


def test_chain_in_build_dataset(rect_dirs):
    cfg = _data(task="sr", scale=2, crop_size="16x24", degradations=("blur", "down", "noise"),
                degrade=DegradeConfig(blur_kernel_size=7, noise_sigma_min=5, noise_sigma_max=5))
    a = _first(pipeline.build_dataset(cfg, records_dir=rect_dirs / "plain"))
    b = _first(pipeline.build_dataset(cfg, records_dir=rect_dirs / "plain"))
    assert a["gt"].shape == (2, 3, 16, 24, 3) and a["lq"].shape == (2, 3, 8, 12, 3)
    np.testing.assert_array_equal(a["lq"], b["lq"])  # deterministic mode: stateless seeds
    np.testing.assert_allclose(a["lq"] * 255, np.round(a["lq"] * 255), atol=1e-3)
    plain = _first(pipeline.build_dataset(dataclasses.replace(cfg, degradations=()), records_dir=rect_dirs / "plain"))
    np.testing.assert_array_equal(plain["gt"], a["gt"])  # same crops; only the degradation differs
    assert np.abs(plain["lq"] - a["lq"]).mean() > 2 / 255
    # A temporal_blur step reads extra frames and keeps gt at the centre of each average.
    cfg = _data(task="deblur", crop_size=16, degradations=("temporal_blur",), quantize=False, hflip=False,
                vflip=False, rot90=False, temporal_reverse=False, degrade=DegradeConfig(temporal_blur_frames=3))
    b = _first(pipeline.build_dataset(cfg, records_dir=rect_dirs / "plain"))
    assert b["lq"].shape == b["gt"].shape == (2, 3, 16, 16, 3)
    np.testing.assert_allclose(b["lq"][:, 1], b["gt"].mean(axis=1), atol=1e-6)


def test_explicit_lq_kind_must_be_in_the_records(rect_dirs):
    with pytest.raises(UserError, match="lq_kind='blur'"):
        pipeline.build_dataset(_data(task="deblur", lq_kind="blur"), records_dir=rect_dirs / "plain")
    b = _first(pipeline.build_dataset(_data(task="sr", scale=4, lq_kind="lr", crop_size=16),
                                      records_dir=rect_dirs / "lr"))
    assert b["lq"].shape == (2, 3, 4, 4, 3)
