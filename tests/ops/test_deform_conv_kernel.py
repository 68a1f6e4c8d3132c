"""The compiled DCNv2 kernel (tfvr/ops/cc): golden parity, kernel == reference, build. Skips without the .so."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tests.ops.test_deform_conv import NAMES, check_golden
from tfvr.ops import build
from tfvr.ops import deform_conv as dc
from tfvr.ops.deform_conv import deform_conv2d

LOADED, REASON = dc.kernel_status()
from tests.helpers import STRICT, unavailable  # noqa: E402

# Under CI a kernel that failed to build fails these tests (they run and the kernel call raises).
needs_kernel = pytest.mark.skipif(not LOADED and not STRICT, reason=f"compiled kernel unavailable: {REASON}")


@needs_kernel
@pytest.mark.parametrize("case", ["s1", "s2d2"])
def test_kernel_matches_torchvision_golden(case):
    check_golden("kernel", case)


# (n, h, w, c, o, kernel, strides, padding, dilations, groups, mask?)
CONFIGS = [
    (2, 7, 9, 6, 5, (3, 3), 1, "SAME", 1, 3, True),
    (1, 11, 6, 4, 3, (3, 3), 2, "SAME", 1, 2, True),
    (2, 9, 10, 8, 4, (3, 2), (2, 1), 1, (1, 2), 4, True),
    (1, 13, 8, 3, 2, (1, 3), 1, "VALID", 2, 1, False),
    (1, 5, 17, 4, 4, (3, 3), 1, "VALID", 2, 1, True),  # one output row: a single band in the backward
    (3, 6, 5, 10, 7, (2, 2), 2, 0, 1, 5, True),
]


@needs_kernel
@pytest.mark.parametrize("config", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_kernel_equals_reference(config):
    n, h, w, c, o, (kh, kw), strides, padding, dilations, g, with_mask = config
    rng = np.random.default_rng(sum(map(hash, map(str, config))) % 2**32)
    x = rng.normal(size=(n, h, w, c)).astype(np.float32)
    kernel = rng.normal(size=(kh, kw, c, o)).astype(np.float32)
    bias = rng.normal(size=(o,)).astype(np.float32)
    pads = padding if isinstance(padding, str) else np.broadcast_to(padding, 2)
    ho, wo = (dc._resolve_padding(pads if isinstance(pads, str) else int(pads[a]), (h, w)[a], (kh, kw)[a],
                                  *(np.broadcast_to(v, 2)[a] for v in (strides, dilations)))[1] for a in (0, 1))
    # Offsets up to ±4 px: many samples cross the border or leave the image.
    offset = rng.uniform(-4, 4, size=(n, ho, wo, 2 * g * kh * kw)).astype(np.float32)
    mask = rng.uniform(size=(n, ho, wo, g * kh * kw)).astype(np.float32) if with_mask else None
    upstream = rng.normal(size=(n, ho, wo, o)).astype(np.float32)
    inputs = dict(x=x, offset=offset, kernel=kernel, bias=bias)
    if with_mask:
        inputs["mask"] = mask

    def run(impl):
        ts = {k: tf.constant(v) for k, v in inputs.items()}
        with tf.GradientTape() as tape:
            tape.watch(list(ts.values()))
            y = deform_conv2d(ts["x"], ts["offset"], ts.get("mask"), ts["kernel"], ts["bias"], strides=strides,
                              padding=padding, dilations=dilations, offset_groups=g, impl=impl)
            loss = tf.reduce_sum(y * upstream)
        return y.numpy(), dict(zip(ts, (v.numpy() for v in tape.gradient(loss, list(ts.values())))))

    y_ref, g_ref = run("reference")
    y_k, g_k = run("kernel")
    np.testing.assert_allclose(y_k, y_ref, atol=1e-4, rtol=1e-5)
    for name in g_ref:
        np.testing.assert_allclose(g_k[name], g_ref[name], atol=1e-4, rtol=1e-5, err_msg=f"grad {name}")


@needs_kernel
def test_kernel_zero_offset_unit_mask_equals_conv2d():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(2, 8, 9, 6)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 6, 4)).astype(np.float32)
    want = tf.nn.conv2d(x, kernel, 2, "SAME")
    offset = np.zeros((2, 4, 5, 2 * 2 * 9), np.float32)
    mask = np.ones((2, 4, 5, 2 * 9), np.float32)
    np.testing.assert_allclose(deform_conv2d(x, offset, mask, kernel, strides=2, impl="kernel"), want, atol=1e-4)


@needs_kernel
def test_auto_uses_the_kernel_in_graphs_with_dynamic_shapes():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(1, 9, 10, 4)).astype(np.float32)
    kernel = rng.normal(size=(3, 3, 4, 3)).astype(np.float32)
    offset = rng.normal(size=(1, 5, 5, 36)).astype(np.float32)
    mask = rng.uniform(size=(1, 5, 5, 18)).astype(np.float32)
    spec = lambda c: tf.TensorSpec([None, None, None, c])  # noqa: E731
    fn = tf.function(lambda x, o, m: deform_conv2d(x, o, m, kernel, strides=2),
                     input_signature=[spec(4), spec(36), spec(18)])
    # With dynamic shapes the op sits in a tf.cond branch (one piece or row chunks, decided at run time).
    gdef = fn.get_concrete_function().graph.as_graph_def()
    types = {n.op for n in gdef.node} | {n.op for f in gdef.library.function for n in f.node_def}
    assert "TfvrDeformIm2col" in types
    want = deform_conv2d(x, offset, mask, kernel, strides=2, impl="reference")
    np.testing.assert_allclose(fn(x, offset, mask), want, atol=1e-4)
    # Inside XLA, auto must fall back to the reference (custom ops cannot be compiled).
    jit = tf.function(lambda x, o, m: deform_conv2d(x, o, m, kernel, strides=2), jit_compile=True)
    np.testing.assert_allclose(jit(x, offset, mask), want, atol=1e-4)


@needs_kernel
def test_kernel_rejects_mismatched_inputs():
    lib = dc._load_library()
    x = tf.zeros([1, 4, 4, 4])
    with pytest.raises(tf.errors.InvalidArgumentError, match="offset must be"):
        lib.tfvr_deform_im2col(x, tf.zeros([1, 4, 4, 17]), tf.zeros([1, 4, 4, 9]), [1, 1], kernel_size=[3, 3],
                               strides=[1, 1], dilations=[1, 1], offset_groups=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match="divide"):
        lib.tfvr_deform_im2col(x, tf.zeros([1, 4, 4, 54]), tf.zeros([1, 4, 4, 27]), [1, 1], kernel_size=[3, 3],
                               strides=[1, 1], dilations=[1, 1], offset_groups=3)


def test_build_is_a_no_op_when_up_to_date():
    if not LOADED:
        unavailable(f"compiled kernel unavailable: {REASON}")
    if not build.up_to_date(build._signature(False), False):
        pytest.skip("the library on disk is older than its sources (rebuild with python -m tfvr.ops.build)")
    before = build.LIBRARY.stat().st_mtime_ns
    assert build.main(["--quiet"]) == 0
    assert build.LIBRARY.stat().st_mtime_ns == before


NVCC = build.find_nvcc()


@pytest.mark.skipif(NVCC is None, reason="nvcc not found: the CUDA kernels cannot be compiled here")
def test_cuda_kernels_compile_with_nvcc(tmp_path):
    # The GPU cannot be used on this machine: this checks that the CUDA source compiles, nothing more.
    for src in build.CUDA_SOURCES:
        obj = tmp_path / (src.name + ".o")
        r = subprocess.run(build.nvcc_command(NVCC, src, obj), capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]
        assert obj.stat().st_size > 0


@pytest.mark.slow
@pytest.mark.skipif(NVCC is None, reason="nvcc not found: the CUDA kernels cannot be compiled here")
def test_cuda_build_links_and_loads(tmp_path, request):
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("a full CUDA build takes about a minute: run with -m slow")
    # Full --cuda build into a scratch folder, loaded in a fresh process (the op names are already registered
    # here): both device kernels registered, the CPU kernel runs.
    lib = build.build(cuda=True, quiet=True, out=tmp_path / "_deform_conv_ops.so")
    code = textwrap.dedent(
        f"""
        import numpy as np, tensorflow as tf
        from tensorflow.python.framework import kernels
        lib = tf.load_op_library({str(lib)!r})
        devices = sorted(k.device_type for k in kernels.get_registered_kernels_for_op('TfvrDeformIm2col').kernel)
        assert devices == ['CPU'] * 3 + ['GPU'] * 3, devices  # float, half, bfloat16 on each
        cols = lib.tfvr_deform_im2col(tf.ones([1, 4, 4, 2]), tf.zeros([1, 4, 4, 18]), tf.ones([1, 4, 4, 9]),
                                      [1, 1], kernel_size=[3, 3], strides=[1, 1], dilations=[1, 1], offset_groups=1)
        assert cols.shape == (1, 4, 4, 18) and float(cols[0, 1, 1, 0]) == 1.0
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                   timeout=300)
