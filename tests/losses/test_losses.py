import numpy as np
import pytest
import tensorflow as tf

from tfvr import losses


def test_charbonnier_eps_and_reductions():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(2, 3, 4, 4, 3)).astype(np.float32)
    t = rng.uniform(size=p.shape).astype(np.float32)
    ref = np.sqrt((p.astype(np.float64) - t) ** 2 + 1e-12)
    assert float(losses.charbonnier(p, t)) == pytest.approx(ref.mean(), rel=1e-5)
    assert float(losses.charbonnier(p, t, reduction="sum")) == pytest.approx(ref.sum(), rel=1e-5)
    assert losses.charbonnier(p, t, reduction="none").shape == p.shape
    # eps goes under the square root un-squared: an exact match costs sqrt(eps) per element
    assert float(losses.charbonnier(t, t, eps=1e-6)) == pytest.approx(1e-3, rel=1e-4)
    # weighted mean divides by the element count (BasicSR weight_reduce_loss)
    w = np.zeros(p.shape, np.float32)
    w[0] = 1
    assert float(losses.charbonnier(p, t, weight=w)) == pytest.approx((ref * w).mean(), rel=1e-5)


def test_charbonnier_graph_mode_gradient_finite_at_zero():
    x = tf.Variable(tf.ones([2, 4, 4, 3]))
    with tf.GradientTape() as tape:
        loss = tf.function(losses.charbonnier)(x, tf.ones([2, 4, 4, 3]))
    g = tape.gradient(loss, x)
    assert np.all(np.isfinite(g.numpy())) and float(tf.reduce_max(tf.abs(g))) == 0.0


def test_l1_mse_masked_mean():
    p = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    t = np.zeros_like(p)
    assert float(losses.l1(p, t)) == 2.5
    assert float(losses.mse(p, t, reduction="sum")) == 30.0
    assert float(losses.masked_mean(p, [[1, 0], [0, 1]])) == pytest.approx(2.5)


def test_total_variation_and_flow_smoothness():
    x = np.zeros([1, 4, 5, 2], np.float32)
    x[:, :, 3:, 0] = 2.0  # a vertical edge of height 2 in channel 0
    # dx terms: 4 rows x 4 cols x 2 ch = 32 elements, 4 of them are 2 -> mean 0.25; dy is all 0
    assert float(losses.total_variation(x)) == pytest.approx(0.25)
    assert float(losses.flow_smoothness(x)) == pytest.approx(0.25)
    assert float(losses.total_variation(x, reduction="sum")) == pytest.approx(8.0)
    # edge-aware: an image edge at the same place switches the penalty (almost) off
    img = np.zeros([1, 4, 5, 3], np.float32)
    img[:, :, 3:] = 1.0
    assert float(losses.flow_smoothness(x, image=img, edge_weight=10.0)) < 0.25 * 1e-3


def test_hinge_matches_sttn_adversarial_loss():
    real = np.array([[0.5, 2.0], [-1.0, 0.0]], np.float32)
    fake = np.array([[-0.5, 1.0], [-2.0, 0.2]], np.float32)
    relu = lambda z: np.maximum(z, 0)  # noqa: E731
    d_real = relu(1 - real).mean()
    d_fake = relu(1 + fake).mean()
    assert float(losses.adversarial_loss(real, True, "hinge")) == pytest.approx(d_real)
    assert float(losses.adversarial_loss(fake, False, "hinge")) == pytest.approx(d_fake)
    assert float(losses.discriminator_loss(real, fake, "hinge")) == pytest.approx((d_real + d_fake) / 2)
    assert float(losses.generator_loss(fake, "hinge")) == pytest.approx(-fake.mean())


def test_lsgan_multiscale_and_feature_matching():
    # two scales, each [features..., prediction]
    f = lambda v: tf.fill([1, 2, 2, 1], v)  # noqa: E731
    fake = [[f(1.0), f(2.0), f(0.5)], [f(0.0), f(1.0), f(0.25)]]
    real = [[f(0.0), f(2.0), f(0.9)], [f(1.0), f(1.0), f(0.8)]]
    assert float(losses.generator_loss(fake, "lsgan")) == pytest.approx((0.5 - 1) ** 2 + (0.25 - 1) ** 2)
    assert float(losses.adversarial_loss(fake, False, "lsgan")) == pytest.approx(0.5 ** 2 + 0.25 ** 2)
    # NVIDIA vid2vid: sum_i sum_j (1/num_D) * (4/(n_layers_D+1)) * lambda_feat * L1(fake_ij, real_ij)
    n_layers = 1
    expected = 0.5 * (4 / (n_layers + 1)) * 10 * (1.0 + 0.0) + 0.5 * (4 / (n_layers + 1)) * 10 * (1.0 + 0.0)
    got = losses.feature_matching_loss(fake, real, num_layers_d=n_layers, weight=10.0)
    assert float(got) == pytest.approx(expected)
    # gradients do not flow into the real features
    rv = tf.Variable(1.0)
    with tf.GradientTape() as tape:
        loss = losses.feature_matching_loss([[f(0.0) * 1.0, f(0.0)]], [[f(1.0) * rv, f(0.0)]], num_layers_d=1)
    assert tape.gradient(loss, rv) is None


def test_nsgan():
    x = np.array([0.0, 2.0], np.float32)
    expected = np.mean(np.log1p(np.exp(-x)))
    assert float(losses.adversarial_loss(x, True, "nsgan")) == pytest.approx(expected, rel=1e-5)


def test_pixel_loss_by_name_and_masked_l1():
    rng = np.random.default_rng(1)
    p = rng.uniform(size=(2, 4, 4, 3)).astype(np.float32)
    t = rng.uniform(size=p.shape).astype(np.float32)
    d = p.astype(np.float64) - t
    assert float(losses.pixel_loss("l1", p, t)) == pytest.approx(np.abs(d).mean(), rel=1e-5)
    assert float(losses.pixel_loss("l2", p, t)) == pytest.approx((d ** 2).mean(), rel=1e-5)
    assert float(losses.pixel_loss("mse", p, t)) == pytest.approx((d ** 2).mean(), rel=1e-5)
    assert float(losses.pixel_loss("charbonnier", p, t)) == pytest.approx(np.sqrt(d ** 2 + 1e-6).mean(), rel=1e-5)
    with pytest.raises(ValueError, match="pixel loss must be one of"):
        losses.pixel_loss("l3", p, t)
    # vid2vid's MaskedL1: the mean over every element of |m·a − m·b|, the mask broadcast over channels
    m = (rng.uniform(size=(2, 4, 4, 1)) > 0.5).astype(np.float32)
    assert float(losses.masked_l1(p, t, m)) == pytest.approx(np.abs(m * p - m * t).mean(), rel=1e-5)


def test_gan_feature_losses_and_flow_warp_losses_by_hand():
    from tfvr.ops.warp import backward_warp

    rng = np.random.default_rng(2)
    feats = lambda: [[rng.normal(size=(1, 2, 2, 2)).astype(np.float32), rng.normal(size=(1, 2, 2, 1)).astype(np.float32)]]  # noqa: E731
    real, fake = feats(), feats()
    g_gan, g_fm, d = losses.gan_feature_losses(real, fake, "lsgan", num_layers_d=1, fm_weight=10.0)
    assert float(g_gan) == pytest.approx(((fake[0][-1] - 1) ** 2).mean(), rel=1e-5)
    assert float(g_fm) == pytest.approx(10.0 * 4 / 2 * np.abs(fake[0][0] - real[0][0]).mean(), rel=1e-5)
    assert float(d) == pytest.approx(0.5 * (((real[0][-1] - 1) ** 2).mean() + (fake[0][-1] ** 2).mean()), rel=1e-5)

    b, t, h, w = 1, 3, 4, 5
    clip = lambda c: rng.uniform(-1, 1, size=(b, t, h, w, c)).astype(np.float32)  # noqa: E731
    real_v, fake_v = clip(3), clip(3)
    flow, flow_ref = clip(2)[:, 1:], clip(2)[:, 1:]
    weight = rng.uniform(size=(b, t - 1, h, w, 1)).astype(np.float32)
    conf = (rng.uniform(size=(b, t - 1, h, w, 1)) > 0.3).astype(np.float32)
    out = losses.flow_warp_losses(real_v, fake_v, flow, weight, flow_ref, conf, 2.0, 3.0, 4.0)
    merge = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
    ml1 = lambda a, c: np.abs(merge(conf) * a - merge(conf) * c).mean()  # noqa: E731
    warp = lambda img, f: backward_warp(merge(img), merge(f)).numpy()  # noqa: E731
    assert float(out["f_flow"]) == pytest.approx(2.0 * ml1(merge(flow), merge(flow_ref)), rel=1e-5)
    assert float(out["f_warp"]) == pytest.approx(3.0 * ml1(warp(real_v[:, :-1], flow), merge(real_v[:, 1:])), rel=1e-5)
    assert float(out["w"]) == pytest.approx(4.0 * ml1(merge(weight), 0.0), rel=1e-5)
    assert float(out["g_warp"]) == pytest.approx(3.0 * ml1(merge(fake_v[:, 1:]), warp(fake_v[:, :-1], flow_ref)),
                                                 rel=1e-5)
