"""tfvr.ops.deform_conv: the pure-TF reference against torchvision's golden outputs, identities, XLA, the switch."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import golden
from tfvr.ops import deform_conv as dc
from tfvr.ops.deform_conv import deform_conv2d, from_torchvision_offset

NAMES = ("x", "offset", "mask", "kernel", "bias")


def nhwc(a):
    return a.transpose(0, 2, 3, 1)


def golden_case(case):
    z = golden("deform_conv2d")
    g = lambda k: z[f"{case}/{k}"]  # noqa: E731
    stride, pad, dil, groups = (int(v) for v in g("conf"))
    inputs = dict(
        x=nhwc(g("x")), offset=nhwc(g("offset")), mask=nhwc(g("mask")),
        kernel=g("weight").transpose(2, 3, 1, 0), bias=g("bias"),
    )
    grads = dict(
        x=nhwc(g("grad_x")), offset=nhwc(g("grad_offset")), mask=nhwc(g("grad_mask")),
        kernel=g("grad_weight").transpose(2, 3, 1, 0), bias=g("grad_bias"),
    )
    conf = dict(strides=stride, padding=pad, dilations=dil, offset_groups=groups)
    return inputs, conf, nhwc(g("upstream")), nhwc(g("y")), grads


def value_and_grads(fn, inputs, upstream):
    ts = {k: tf.constant(v) for k, v in inputs.items()}
    with tf.GradientTape() as tape:
        tape.watch(list(ts.values()))
        y = fn(**ts)
        loss = tf.reduce_sum(y * upstream)
    return y.numpy(), dict(zip(ts, (g.numpy() for g in tape.gradient(loss, list(ts.values())))))


def check_golden(impl, case):
    inputs, conf, upstream, y_ref, grads_ref = golden_case(case)
    y, grads = value_and_grads(lambda **t: deform_conv2d(**t, **conf, impl=impl), inputs, upstream)
    assert np.abs(y - y_ref).max() <= 1e-4
    for name in NAMES:
        err = np.abs(grads[name] - grads_ref[name]).max()
        assert err <= 1e-4, f"grad {name}: max abs error {err}"


@pytest.mark.parametrize("case", ["s1", "s2d2"])
def test_reference_matches_torchvision_golden(case):
    inputs, _, _, _, _ = golden_case(case)
    # The golden offsets are large: make sure the case really samples outside the image.
    assert np.abs(inputs["offset"]).max() > 5
    check_golden("reference", case)


@pytest.mark.parametrize(
    "strides,padding,dilations,size",
    [(1, "SAME", 1, (7, 9)), (2, "SAME", 1, (7, 8)), (2, "VALID", 2, (11, 9)), (1, 2, 2, (6, 5)), (3, "SAME", 1, (5, 7))],
)
def test_zero_offset_unit_mask_equals_conv2d(strides, padding, dilations, size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *size, 6)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 6, 5)).astype(np.float32)
    if isinstance(padding, int):
        want = tf.nn.conv2d(np.pad(x, [[0, 0], [padding] * 2, [padding] * 2, [0, 0]]), kernel, strides, "VALID",
                            dilations=dilations)
    else:
        want = tf.nn.conv2d(x, kernel, strides, padding, dilations=dilations)
    _, ho, wo, _ = want.shape
    g = 3
    offset = np.zeros((2, ho, wo, 2 * g * 9), np.float32)
    mask = np.ones((2, ho, wo, g * 9), np.float32)
    for m in (mask, None):
        got = deform_conv2d(x, offset, m, kernel, strides=strides, padding=padding, dilations=dilations,
                            offset_groups=g, impl="reference")
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_integer_offsets_shift_the_sampling_grid():
    # Δy = 1, Δx = -1 on every tap: tap (a, b) of output (i, j) reads x[i + a, j + b - 2] (zero outside).
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 6, 7, 4)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 4, 2)).astype(np.float32)
    offset = np.tile(np.array([1.0, -1.0], np.float32), (1, 6, 7, 9))
    got = deform_conv2d(x, offset, None, kernel, impl="reference")
    xp = np.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]])
    np.testing.assert_allclose(got, tf.nn.conv2d(xp[:, 2:, :-2], kernel, 1, "VALID"), atol=1e-5)


def test_reference_in_graph_mode_and_under_xla():
    inputs, conf, upstream, y_ref, grads_ref = golden_case("s2d2")
    for jit in (False, True):
        fn = tf.function(lambda **t: deform_conv2d(**t, **conf, impl="auto"), jit_compile=jit)
        y, grads = value_and_grads(fn, inputs, upstream)
        assert np.abs(y - y_ref).max() <= 1e-4
        assert max(np.abs(grads[k] - grads_ref[k]).max() for k in NAMES) <= 1e-4


def test_reference_dynamic_shapes_and_float16():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 9, 10, 4)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 4, 3)).astype(np.float32) * 0.1
    offset = rng.normal(size=(1, 5, 5, 36)).astype(np.float32)
    mask = rng.uniform(size=(1, 5, 5, 18)).astype(np.float32)
    want = deform_conv2d(x, offset, mask, kernel, strides=2, offset_groups=2, impl="reference")
    spec = lambda c: tf.TensorSpec([None, None, None, c])  # noqa: E731
    fn = tf.function(
        lambda x, o, m: deform_conv2d(x, o, m, kernel, strides=2, impl="reference"),
        input_signature=[spec(4), spec(36), spec(18)],
    )
    np.testing.assert_allclose(fn(x, offset, mask), want, atol=1e-5)
    half = deform_conv2d(x.astype(np.float16), offset, mask, kernel.astype(np.float16), strides=2, impl="reference")
    assert half.dtype == tf.float16
    np.testing.assert_allclose(half.numpy().astype(np.float32), want, atol=2e-2)


def test_from_torchvision_offset_is_identity_and_checks_channels():
    off = np.random.default_rng(3).normal(size=(1, 4, 5, 2 * 2 * 9)).astype(np.float32)
    np.testing.assert_array_equal(from_torchvision_offset(off, 2, 3), off)
    with pytest.raises(ValueError, match="36 channels"):
        from_torchvision_offset(off[..., :30], 2, 3)


def test_bad_arguments_raise():
    x = np.zeros((1, 5, 5, 4), np.float32)
    k = np.zeros((3, 3, 4, 2), np.float32)
    off = np.zeros((1, 5, 5, 18), np.float32)
    with pytest.raises(ValueError, match="offset_groups=3"):
        deform_conv2d(x, np.zeros((1, 5, 5, 54), np.float32), None, k, offset_groups=3)
    with pytest.raises(ValueError, match="offset must be"):
        deform_conv2d(x, off, None, k, strides=2)
    with pytest.raises(ValueError, match="mask needs"):
        deform_conv2d(x, off, np.zeros((1, 5, 5, 3), np.float32), k)
    with pytest.raises(ValueError, match="padding"):
        deform_conv2d(x, off, None, k, padding="full")
    with pytest.raises(ValueError, match="impl"):
        deform_conv2d(x, off, None, k, impl="fast")


def test_auto_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setattr(dc, "_lib", None)
    monkeypatch.setattr(dc, "_lib_error", "it was never built (test)")
    monkeypatch.setattr(dc, "_warned", False)
    x = np.ones((1, 4, 4, 2), np.float32)
    k = np.ones((3, 3, 2, 1), np.float32)
    off = np.zeros((1, 4, 4, 18), np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            deform_conv2d(x, off, None, k)
    msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(msgs) == 1 and "it was never built (test)" in msgs[0]
    with pytest.raises(RuntimeError, match="it was never built"):
        deform_conv2d(x, off, None, k, impl="kernel")


def test_implementation_context_and_xla_pick_reference(monkeypatch):
    picked = []
    monkeypatch.setattr(dc, "deform_conv2d_reference", lambda *a: picked.append("reference") or a[0])
    monkeypatch.setattr(dc, "_deform_conv2d_kernel", lambda *a: picked.append("kernel") or a[0])
    monkeypatch.setattr(dc, "_load_library", lambda: object())
    args = (np.ones((1, 4, 4, 2), np.float32), np.zeros((1, 4, 4, 18), np.float32), None,
            np.ones((3, 3, 2, 2), np.float32))
    deform_conv2d(*args)
    with dc.implementation("reference"):
        deform_conv2d(*args)
    tf.function(lambda: deform_conv2d(*args), jit_compile=True).get_concrete_function()
    tf.function(lambda: deform_conv2d(*args)).get_concrete_function()
    assert picked == ["kernel", "reference", "reference", "kernel"]
