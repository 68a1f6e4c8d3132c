import numpy as np
import pytest
import tensorflow as tf

from tfvr.models.memvsr.memory import VARIANTS, MemoryModule

B, S, H, W, E, M = 2, 3, 5, 6, 4, 3


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    return (tf.constant(rng.normal(size=(B, H, W, E)), tf.float32),
            tf.constant(rng.normal(size=(B, S, H, W, E)), tf.float32))


CASES = [(v, c, n, f) for v in VARIANTS for c in ((0, 3, 5) if v == "pixwise" else (0,))
         for n in (False, True) for f in ("concat", "add")]


@pytest.mark.parametrize("variant,crop,normalize,fusion", CASES)
def test_shapes_every_variant(variant, crop, normalize, fusion):
    mem = MemoryModule(E, M, S, hops=1, variant=variant, crop=crop, normalize=normalize, fusion=fusion)
    q, s = _inputs()
    fused, weights = mem(q, s)
    assert fused.shape == (B, H, W, E)
    assert weights.shape == (B, H, W, M)
    # the read weights are a distribution over the slots (summed over the neighbourhood / positions)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_hops_and_gradients_reach_every_parameter(variant):
    mem = MemoryModule(E, M, S, hops=3, variant=variant, crop=3 if variant == "pixwise" else 0, normalize=True)
    q, s = _inputs(1)
    with tf.GradientTape() as tape:
        fused, _ = mem(q, s)
        loss = tf.reduce_mean(tf.square(fused - 0.3))
    names = [v.path for v in mem.trainable_variables]
    assert sum("key_embed_" in n for n in names) == 2 * 3  # kernel + bias per hop
    assert any("log_temperature" in n for n in names)
    grads = tape.gradient(loss, mem.trainable_variables)
    for v, g in zip(mem.trainable_variables, grads):
        assert g is not None, v.path
        assert float(tf.reduce_max(tf.abs(g))) > 0, v.path


def test_more_hops_change_the_read():
    q, s = _inputs(2)
    one = MemoryModule(E, M, S, hops=1, variant="pixwise")
    two = MemoryModule(E, M, S, hops=2, variant="pixwise")
    one(q, s)
    two(q, s)
    # same hop-0 and fusion weights: only the second hop differs
    two.query_embed.set_weights(one.query_embed.get_weights())
    two.key_embed_0.set_weights(one.key_embed_0.get_weights())
    two.value_embed_0.set_weights(one.value_embed_0.get_weights())
    two.fuse.set_weights(one.fuse.get_weights())
    a, _ = one(q, s)
    b, _ = two(q, s)
    assert float(tf.reduce_max(tf.abs(a - b))) > 1e-4


def _brute_force_read(u, keys, values, crop, scale):
    """Loops over every pixel: softmax over the slots at every in-map position of the crop×crop window."""
    b, h, w, m, e = keys.shape
    r = crop // 2
    out = np.zeros((b, h, w, e))
    weights = np.zeros((b, h, w, m))
    for bi in range(b):
        for y in range(h):
            for x in range(w):
                cands = []
                for dy in range(-r, r + 1):
                    for dx in range(-r, r + 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < h and 0 <= xx < w:
                            for mi in range(m):
                                cands.append((float(u[bi, y, x] @ keys[bi, yy, xx, mi]) * scale,
                                              values[bi, yy, xx, mi], mi))
                s = np.array([c[0] for c in cands])
                p = np.exp(s - s.max())
                p /= p.sum()
                for pi, (_, v, mi) in zip(p, cands):
                    out[bi, y, x] += pi * v
                    weights[bi, y, x, mi] += pi
    return out, weights


@pytest.mark.parametrize("crop", [0, 3, 5])
def test_crop_search_equals_brute_force(crop):
    rng = np.random.default_rng(crop)
    mem = MemoryModule(E, M, S, variant="pixwise", crop=crop)
    mem.build()
    u = rng.normal(size=(B, H, W, E)).astype(np.float32)
    keys = rng.normal(size=(B, H, W, M, E)).astype(np.float32)
    values = rng.normal(size=(B, H, W, M, E)).astype(np.float32)
    o, wts = mem.read(tf.constant(u), tf.constant(keys), tf.constant(values))
    want_o, want_w = _brute_force_read(u, keys, values, max(crop, 1), 1.0 / np.sqrt(E))
    np.testing.assert_allclose(o.numpy(), want_o, atol=1e-5)
    np.testing.assert_allclose(wts.numpy(), want_w, atol=1e-5)


def test_pixsentence_equals_brute_force():
    rng = np.random.default_rng(7)
    mem = MemoryModule(E, M, S, variant="pixsentence")
    mem.build()
    u = rng.normal(size=(1, 3, 4, E)).astype(np.float32)
    keys = rng.normal(size=(1, 3, 4, M, E)).astype(np.float32)
    values = rng.normal(size=(1, 3, 4, M, E)).astype(np.float32)
    o, _ = mem.read(tf.constant(u), tf.constant(keys), tf.constant(values))
    # the whole map is the neighbourhood: a window larger than twice the map
    want, _ = _brute_force_read(u, keys, values, 9, 1.0 / np.sqrt(E))
    np.testing.assert_allclose(o.numpy(), want, atol=1e-5)


def test_pixsim_one_weight_per_slot():
    mem = MemoryModule(E, M, S, variant="pixsim")
    q, s = _inputs(3)
    _, wts = mem(q, s)
    np.testing.assert_allclose(wts.numpy(), np.broadcast_to(wts.numpy()[:, :1, :1], wts.shape), atol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(variant="nope"), dict(crop=2, variant="pixwise"),
                                    dict(crop=3, variant="pixsim"), dict(fusion="mul"), dict(hops=0)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        MemoryModule(E, M, S, **kwargs)


def test_get_config_round_trip():
    mem = MemoryModule(E, M, S, hops=2, variant="pixwise", crop=3, normalize=True, fusion="add")
    again = MemoryModule.from_config(mem.get_config())
    assert again.get_config() == mem.get_config()


def test_feature_channels_differ_from_embed_size():
    mem = MemoryModule(embed_size=8, memory_size=M, input_size=S, variant="pixwise", crop=3, channels=E)
    q, s = _inputs(4)
    fused, weights = mem(q, s)
    assert fused.shape == (B, H, W, E) and weights.shape == (B, H, W, M)


def test_crop_search_in_float16_has_no_nan():
    import keras

    keras.mixed_precision.set_dtype_policy("mixed_float16")  # as the trainer does: every sub-layer in float16
    try:
        mem = MemoryModule(E, M, S, variant="pixwise", crop=5)
        q, s = _inputs(5)
        fused, weights = mem(q, s)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert fused.dtype == tf.float16
    assert np.isfinite(fused.numpy()).all() and np.isfinite(weights.numpy()).all()
