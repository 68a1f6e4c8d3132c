"""DCNv2 in float16 / bfloat16 (kernel and reference path) and the kernel's row chunking (bounded im2col memory)."""

import numpy as np
import pytest
import tensorflow as tf

from tfvr.ops import deform_conv as dc
from tfvr.ops.deform_conv import deform_conv2d

LOADED, REASON = dc.kernel_status()
needs_kernel = pytest.mark.skipif(not LOADED, reason=f"compiled kernel unavailable: {REASON}")

HALF = {"float16": tf.float16, "bfloat16": tf.bfloat16}
# Relative tolerances (to the largest magnitude of the compared tensor): a few roundings of the 16-bit format.
REL_TOL = {"float16": 4e-3, "bfloat16": 2.5e-2}


def _problem(seed, n=2, h=9, w=11, c=8, o=6, g=2, k=3, strides=1):
    rng = np.random.default_rng(seed)
    ho, wo = -(-h // strides), -(-w // strides)
    return dict(
        x=rng.normal(size=(n, h, w, c)).astype(np.float32),
        offset=rng.uniform(-3, 3, size=(n, ho, wo, 2 * g * k * k)).astype(np.float32),
        mask=rng.uniform(size=(n, ho, wo, g * k * k)).astype(np.float32),
        kernel=(rng.normal(size=(k, k, c, o)) / np.sqrt(k * k * c)).astype(np.float32),
        bias=rng.normal(size=(o,)).astype(np.float32),
    ), rng.normal(size=(n, ho, wo, o)).astype(np.float32)


def _run(inputs, upstream, dtype, impl, **kw):
    ts = {k: tf.cast(tf.constant(v), dtype) for k, v in inputs.items()}
    with tf.GradientTape() as tape:
        tape.watch(list(ts.values()))
        y = deform_conv2d(ts["x"], ts["offset"], ts["mask"], ts["kernel"], ts["bias"], impl=impl, **kw)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
    grads = tape.gradient(loss, list(ts.values()))
    assert y.dtype == dtype
    for name, gr in zip(ts, grads):
        assert gr.dtype == dtype, f"grad {name} is {gr.dtype.name}, want {dtype.name}"
    as32 = lambda t: tf.cast(t, tf.float32).numpy()  # noqa: E731
    return as32(y), {k: as32(v) for k, v in zip(ts, grads)}


def _rounded(inputs, dtype):
    return {k: tf.cast(tf.cast(v, dtype), tf.float32).numpy() for k, v in inputs.items()}


def _close(got, want, rel, what):
    scale = max(float(np.abs(want).max()), 1e-6)
    err = float(np.abs(got - want).max())
    assert err <= rel * scale, f"{what}: max abs error {err:.3g} > {rel} × {scale:.3g}"


@pytest.mark.parametrize("impl", [pytest.param("kernel", marks=needs_kernel), "reference"])
@pytest.mark.parametrize("name", list(HALF))
@pytest.mark.parametrize("strides", [1, 2])
def test_half_precision_matches_float32(impl, name, strides):
    """Values and all five gradients in float16 / bfloat16 against float32 on the same (rounded) inputs and the
    same implementation (rounded offsets land exactly on integer positions now and then, where the two
    implementations take different one-sided offset derivatives; kernel == reference in float32 is tested on
    unrounded offsets in test_deform_conv_kernel.py)."""
    inputs, upstream = _problem(3 + strides, strides=strides)
    dtype = HALF[name]
    y16, g16 = _run(inputs, upstream, dtype, impl, strides=strides)
    y32, g32 = _run(_rounded(inputs, dtype), upstream, tf.float32, impl, strides=strides)
    _close(y16, y32, REL_TOL[name], f"{impl} {name} output")
    for k in g32:
        _close(g16[k], g32[k], REL_TOL[name], f"{impl} {name} grad {k}")


@needs_kernel
@pytest.mark.parametrize("name", list(HALF))
# channels per offset group 8, 16, 32 (the kernel's vector paths, bfloat16's own among them), 4 and 5 (generic)
@pytest.mark.parametrize("c,g", [(16, 2), (32, 2), (64, 2), (12, 3), (10, 2)])
def test_kernel_sums_in_float32_and_rounds_once(name, c, g):
    """The op's 16-bit columns and grad_x are the float32 results on the same inputs rounded once (half an ulp),
    which a kernel summing in 16 bits would miss: with small offsets every input pixel receives ~9·G terms. NaN
    and infinity come through the 16-bit columns where they come through the float32 ones. (Not bit-exact against
    TensorFlow's cast: the compiler may fuse multiply-adds differently in the two instantiations, and a float32 sum
    then and again lands on a 16-bit tie.)"""
    lib = dc._load_library()
    dtype = HALF[name]
    rng = np.random.default_rng(11)
    n, h, w = 1, 12, 13
    x = tf.cast(rng.normal(size=(n, h, w, c)).astype(np.float32), dtype)
    off = tf.constant(rng.uniform(-0.7, 0.7, size=(n, h, w, 2 * g * 9)).astype(np.float32))
    mask = tf.constant(rng.uniform(0.5, 1, size=(n, h, w, g * 9)).astype(np.float32))
    attrs = dict(kernel_size=[3, 3], strides=[1, 1], dilations=[1, 1], offset_groups=g)
    gc = tf.cast(rng.normal(size=(n, h, w, 9 * c)).astype(np.float32), dtype)
    x32, gc32 = tf.cast(x, tf.float32), tf.cast(gc, tf.float32)
    cols16 = lib.tfvr_deform_im2col(x, off, mask, [1, 1], **attrs)
    cols32 = lib.tfvr_deform_im2col(x32, off, mask, [1, 1], **attrs)
    gx16, goff16, gm16 = lib.tfvr_deform_im2col_grad(x, off, mask, [1, 1], gc, **attrs)
    gx32, goff32, gm32 = lib.tfvr_deform_im2col_grad(x32, off, mask, [1, 1], gc32, **attrs)
    assert cols16.dtype == dtype and gx16.dtype == dtype and goff16.dtype == tf.float32
    half_ulp = {"float16": 2.0**-11, "bfloat16": 2.0**-8}[name]
    for got, want, what in ((cols16, cols32, "cols"), (gx16, gx32, "grad_x")):
        got, want = tf.cast(got, tf.float32).numpy(), want.numpy()
        bound = half_ulp * np.abs(want) + 1e-7
        assert np.all(np.abs(got - want) <= bound), f"{what}: not the float32 result rounded once"
    # Offsets and masks: float32 arithmetic on the same (16-bit) values: equal up to float32 summation.
    np.testing.assert_allclose(goff16, goff32, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(gm16, gm32, rtol=1e-5, atol=1e-4)
    # Non-finite and huge inputs in the mix: the same non-finite columns, the finite ones rounded once.
    xs = rng.normal(size=(n, h, w, c)).astype(np.float32)
    xs.flat[::37], xs.flat[5::41], xs.flat[9::43] = np.nan, -np.inf, -3.0e38 if name == "bfloat16" else 6.0e4
    x = tf.cast(xs, dtype)
    # and a NaN mask entry whose payload is all ones (rounding it up as a number would carry into the sign: -0)
    ms = mask.numpy()
    ms.flat[::53] = np.array(0x7FFFFFFF, np.uint32).view(np.float32)
    ms = tf.constant(ms)
    got = tf.cast(lib.tfvr_deform_im2col(x, off, ms, [1, 1], **attrs), tf.float32).numpy()
    want = lib.tfvr_deform_im2col(tf.cast(x, tf.float32), off, ms, [1, 1], **attrs).numpy()
    finite = np.isfinite(want) & (np.abs(want) <= float(tf.as_dtype(dtype).max))
    assert np.isnan(want).any() and np.isinf(want).any()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got[np.isinf(want)], want[np.isinf(want)])
    assert np.all(np.abs(got[finite] - want[finite]) <= half_ulp * np.abs(want[finite]) + 1e-7)


@needs_kernel
@pytest.mark.parametrize("strides,padding", [(1, "SAME"), (2, "SAME"), (1, 1), (2, "VALID")])
def test_chunked_rows_equal_one_piece(strides, padding):
    """A tiny column budget forces several chunks (static shapes: unrolled decision, tf.while_loop inside);
    values and gradients equal the one-piece kernel."""
    inputs, _ = _problem(21, n=2, h=13, w=10, strides=1)
    pads = padding
    n, h, w, c = inputs["x"].shape
    ho, wo = (dc._resolve_padding(pads, s, 3, strides, 1)[1] for s in (h, w))
    rng = np.random.default_rng(5)
    inputs["offset"] = rng.uniform(-3, 3, size=(n, ho, wo, inputs["offset"].shape[-1])).astype(np.float32)
    inputs["mask"] = rng.uniform(size=(n, ho, wo, inputs["mask"].shape[-1])).astype(np.float32)
    upstream = rng.normal(size=(n, ho, wo, inputs["kernel"].shape[-1])).astype(np.float32)
    row_bytes = n * wo * 9 * c * 4
    assert dc.chunk_rows(n, wo, 9 * c, 4, 2 * row_bytes) == 2
    kw = dict(strides=strides, padding=pads)
    y1, g1 = _run(inputs, upstream, tf.float32, "kernel", max_cols_bytes=0, **kw)
    yc, gc = _run(inputs, upstream, tf.float32, "kernel", max_cols_bytes=2 * row_bytes, **kw)
    np.testing.assert_allclose(yc, y1, rtol=1e-6, atol=1e-6)
    for k in g1:
        np.testing.assert_allclose(gc[k], g1[k], rtol=1e-5, atol=1e-5, err_msg=f"grad {k}")


@needs_kernel
def test_chunking_with_dynamic_shapes_and_bfloat16():
    inputs, upstream = _problem(8, n=1, h=11, w=9)
    spec = lambda c: tf.TensorSpec([None, None, None, c])  # noqa: E731
    budget = 3 * 9 * 9 * 8 * 4  # three rows of float32 columns: 4 chunks of 11 rows
    fn = tf.function(lambda x, o, m: deform_conv2d(x, o, m, inputs["kernel"], inputs["bias"], impl="kernel",
                                                   max_cols_bytes=budget),
                     input_signature=[spec(8), spec(36), spec(18)])
    want = deform_conv2d(inputs["x"], inputs["offset"], inputs["mask"], inputs["kernel"], inputs["bias"],
                         impl="kernel", max_cols_bytes=0)
    np.testing.assert_allclose(fn(inputs["x"], inputs["offset"], inputs["mask"]), want, rtol=1e-6, atol=1e-6)
    # bfloat16 through the chunked path, with gradients, against float32 on the rounded inputs.
    y16, g16 = _run(inputs, upstream, tf.bfloat16, "kernel", max_cols_bytes=budget // 2)
    y32, g32 = _run(_rounded(inputs, tf.bfloat16), upstream, tf.float32, "kernel", max_cols_bytes=0)
    _close(y16, y32, REL_TOL["bfloat16"], "chunked bf16 output")
    for k in g32:
        _close(g16[k], g32[k], REL_TOL["bfloat16"], f"chunked bf16 grad {k}")


def test_default_budget_bounds_a_720p_feature_map():
    # EDVR-M's DCN on a 720p feature map: 64 channels, 3×3 taps, batch 1 (2.1 GB of float32 columns in one piece).
    kc, wo, ho = 9 * 64, 1280, 720
    rows = dc.chunk_rows(1, wo, kc, 4, dc.DEFAULT_MAX_COLS_BYTES)
    assert 1 <= rows < ho
    assert rows * wo * kc * 4 <= dc.DEFAULT_MAX_COLS_BYTES
    assert dc.chunk_rows(1, wo, kc, 4, 1) == 1  # never zero rows


@needs_kernel
def test_kernel_runs_on_the_requested_device():
    """With $TFVR_TEST_DEVICE=/GPU:0 (scripts/gpu_check.sh) the op must really run there, in every dtype."""
    import os

    device = os.environ.get("TFVR_TEST_DEVICE", "/CPU:0")
    if "GPU" in device.upper() and not dc._has_gpu_kernel():
        pytest.fail(f"TFVR_TEST_DEVICE={device} but the library has no GPU kernel (build with --cuda)")
    inputs, _ = _problem(2, n=1, h=6, w=7)
    for dtype in (tf.float32, tf.float16, tf.bfloat16):
        ts = {k: tf.cast(tf.constant(v), dtype) for k, v in inputs.items()}
        y = deform_conv2d(ts["x"], ts["offset"], ts["mask"], ts["kernel"], ts["bias"], impl="kernel")
        assert device.split(":")[0].strip("/").upper() in y.device.upper(), (dtype, y.device)
