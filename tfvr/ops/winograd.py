"""Winograd minimal-filtering 3x3 convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
CVPR 2016), written in TensorFlow ops: the same function as `tf.nn.conv2d(x, kernel, 1, padding)` for a 3x3 kernel,
stride 1, dilation 1, channels-last, with fewer multiplications.

F(m x m, 3 x 3) cuts the output into m x m tiles; each needs an (m+2) x (m+2) input tile (alpha = m + 2). Per tile
and channel pair the direct conv does 9 m^2 multiplications, Winograd alpha^2: F(2x2, 3x3) 2.25x fewer,
F(4x4, 3x3) 4x fewer. The work:

1. input transform V = B^T d B for every input tile: the tiles are gathered by reshapes and two concats (no
   im2col), then one [alpha^2, alpha^2] x [alpha^2, tiles * C] matmul applies B^T (x) B^T;
2. alpha^2 independent GEMMs over channels, [tiles, C] x [C, K] (one batched `tf.matmul`); the kernel is
   transformed on every call, U = G g G^T (alpha^2 C K values, negligible);
3. output transform Y = A^T M A by additions and constant multiples, the m x m tiles put back in place with
   `tf.nn.depth_to_space`; the zero-padded tail rows / columns are cropped.

With `xla=True` (the default) the whole computation is one `tf.function(jit_compile=True)` (XLA fuses the
transforms' passes over memory; without it, TensorFlow runs each slice and add as its own op and the transforms cost
as much as the multiplications saved: bench/winograd.py prints both). Compiled once per input shape and dtype.

Numerics: for m = 2 the transforms' constants are exact in binary; for m = 4 (points 0, +-1, +-2) G holds 1/6,
1/12, 1/24 and B^T entries up to 5, so float32 results carry an error of about 1e-5 of the output's scale (direct:
about 3e-7); tests/ops/test_winograd.py checks it, docs/performance.md quotes the figures at STTN-I's shapes. Any float
dtype (the constants are cast to x's). Gradients: TensorFlow's autodiff (checked against `tf.nn.conv2d`'s).

Static spatial sizes only (the tile grid is Python arithmetic): with an unknown height or width, or an output
smaller than one pixel, `conv2d_winograd` falls back to `tf.nn.conv2d` (the same function).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Transform matrices (Lavin & Gray 2016): B^T (alpha x alpha), G (alpha x 3), A^T (m x alpha).
BT = {
    2: np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float64),
    4: np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                 [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], np.float64),
}
G = {
    2: np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float64),
    4: np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
                 [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], np.float64),
}
AT = {
    2: np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float64),
    4: np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]], np.float64),
}
TILES = tuple(sorted(G))


def _at(mm, m):
    """A^T applied to a list of alpha tensors -> m tensors (factored: fewer operations than the matrix)."""
    if m == 2:
        m0, m1, m2, m3 = mm
        return [m0 + m1 + m2, m1 - m2 - m3]
    m0, m1, m2, m3, m4, m5 = mm
    a, b, c, d = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return [m0 + a + c, b + d * 2.0, a + c * 4.0, b + d * 8.0 + m5]


def transform_kernel(kernel, m=4):
    """[3, 3, C, K] -> [alpha^2, C, K]: U = G g G^T for every (C, K) pair, index i * alpha + j."""
    g = tf.constant(G[m], kernel.dtype)
    u = tf.einsum("ia,jb,abck->ijck", g, g, kernel)
    alpha = m + 2
    return tf.reshape(u, [alpha * alpha, tf.shape(kernel)[2], tf.shape(kernel)[3]])


def _winograd(x, kernel, bias, m, padding):
    h, w = x.shape[1], x.shape[2]
    ho, wo = (h, w) if padding == "SAME" else (h - 2, w - 2)
    alpha = m + 2
    th, tw = -(-ho // m), -(-wo // m)  # tiles down and across
    lo = 1 if padding == "SAME" else 0
    n = tf.shape(x)[0]
    c, k = tf.shape(kernel)[2], tf.shape(kernel)[3]
    # Padded to m (th + 1) rows and m (tw + 1) columns (zeros at the bottom / right beyond what the tiles read), so
    # that rows / columns split into blocks of m: tile t reads block t and the first 2 of block t + 1.
    xp = tf.pad(x, [[0, 0], [lo, m * (th + 1) - h - lo], [lo, m * (tw + 1) - w - lo], [0, 0]])
    xb = tf.reshape(xp, [n, th + 1, m, tw + 1, m, c])
    d = tf.concat([xb[:, :th], xb[:, 1:, :2]], axis=2)  # [n, th, alpha, tw + 1, m, c]
    d = tf.concat([d[:, :, :, :tw], d[:, :, :, 1:, :2]], axis=4)  # [n, th, alpha(k), tw, alpha(l), c]
    d = tf.reshape(tf.transpose(d, [2, 4, 0, 1, 3, 5]), [alpha * alpha, -1])  # [(k, l), n th tw c]
    bb = tf.constant(np.kron(BT[m], BT[m]), x.dtype)  # [(i, j), (k, l)]
    v = tf.reshape(tf.matmul(bb, d), [alpha * alpha, n * th * tw, c])
    mm = tf.matmul(v, transform_kernel(kernel, m))  # [alpha^2, tiles, K]
    mm = [tf.reshape(p, [n, th, tw, k]) for p in tf.unstack(mm, num=alpha * alpha)]
    z = [_at([mm[i * alpha + j] for i in range(alpha)], m) for j in range(alpha)]  # z[j][r]
    ys = []
    for r in range(m):
        ys.extend(_at([z[j][r] for j in range(alpha)], m))  # y[r][s]: depth index (r m + s) K + k
    y = tf.nn.depth_to_space(tf.concat(ys, axis=-1), m)
    if m * th != ho or m * tw != wo:
        y = y[:, :ho, :wo]
    return y if bias is None else tf.nn.bias_add(y, bias)


_winograd_xla = tf.function(_winograd, jit_compile=True, autograph=False)


def conv2d_winograd(x, kernel, padding="SAME", tile=4, xla=True, bias=None):
    """`tf.nn.conv2d(x, kernel, strides=1, padding=padding)` for a 3x3 kernel, by Winograd F(tile x tile, 3 x 3).

    Args:
        x: [N, H, W, C] float tensor (H and W static; else `tf.nn.conv2d` runs).
        kernel: [3, 3, C, K] (cast to x's dtype).
        padding: "SAME" or "VALID" (TensorFlow's meaning; "SAME" pads 1 pixel on each side).
        tile: 4 (F(4x4, 3x3), 4x fewer multiplications) or 2 (F(2x2, 3x3), 2.25x, exact constants).
        xla: compile the whole computation with XLA (see the module docstring).
        bias: optional [K], added inside the same XLA computation (`tf.nn.bias_add(conv, bias)`).
    Returns:
        [N, H', W', K] in x's dtype.
    """
    m = int(tile)
    if m not in G:
        raise ValueError(f"conv2d_winograd: tile must be one of {TILES}, got {tile}")
    padding = padding.upper()
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"conv2d_winograd: padding must be SAME or VALID, got {padding!r}")
    x = tf.convert_to_tensor(x)
    kernel = tf.cast(kernel, x.dtype)
    if tuple(kernel.shape[:2]) != (3, 3):
        raise ValueError(f"conv2d_winograd: needs a 3x3 kernel, got shape {tuple(kernel.shape)}")
    if bias is not None:
        bias = tf.cast(bias, x.dtype)
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None or (padding == "VALID" and (h < 3 or w < 3)):
        y = tf.nn.conv2d(x, kernel, 1, padding)
        return y if bias is None else tf.nn.bias_add(y, bias)
    return (_winograd_xla if xla else _winograd)(x, kernel, bias, m, padding)


# ------------------------------------------------------------------------------------------- C++ transforms
def cc_status() -> tuple[bool, str]:
    """(usable, reason): whether the compiled Winograd transforms (`tfvr/ops/cc/winograd_ops.cc`, in the same
    library as the DCN kernel) are loaded. False (with the reason) when the library is not built, fails to load,
    predates the Winograd ops or `TFVR_DISABLE_KERNEL` is set; `conv2d` callers then keep the TF path."""
    from tfvr.ops import deform_conv

    lib = deform_conv._load_library()
    if lib is None:
        return False, deform_conv._lib_error or "not loaded"
    if not hasattr(lib, "tfvr_winograd_input"):
        return False, f"{deform_conv.LIBRARY_PATH} has no Winograd ops (rebuild: python -m tfvr.ops.build)"
    return True, "loaded"


def winograd_cc_usable() -> bool:
    """Whether a conv traced now may use `conv2d_winograd_cc`: the compiled ops are loaded (`cc_status`), no GPU is
    visible (the ops have CPU kernels only), and the trace is not an XLA compile, a SavedModel export (serving graphs
    hold stock TF ops only) or inside `tfvr.ops.deform_conv.implementation("reference")` (what `tfvr export` uses
    for the same reason)."""
    from tfvr.ops import deform_conv

    stack = getattr(deform_conv._impl_override, "stack", None)
    if stack and stack[-1] == "reference":
        return False
    if deform_conv._in_xla_or_saving() or tf.config.list_logical_devices("GPU"):
        return False
    return cc_status()[0]


def _cc_lib():
    ok, why = cc_status()
    if not ok:
        raise RuntimeError(f"conv2d_winograd_cc: the compiled Winograd transforms are unavailable: {why}")
    from tfvr.ops import deform_conv

    return deform_conv._lib


def _direct_dilated(x, kernel, dilation):
    if dilation == 1:
        return tf.nn.conv2d(x, kernel, 1, "SAME")
    # space-to-batch form: TensorFlow's CPU Conv2DBackpropInput / Filter reject dilations > 1
    return tf.nn.atrous_conv2d(x, kernel, dilation, "SAME")


CHUNK_BYTES = 8 << 20  # the most bytes of one V or M chunk (see winograd_chunks)


def winograd_chunks(n, h, w, c, k, dilation=1, chunk_bytes=None) -> int:
    """How many tile chunks `conv2d_winograd_cc` splits V [36, P, C] and M [36, P, K] into: enough that none is over
    `chunk_bytes` (default CHUNK_BYTES). Large buffers cost a page fault per 4 KiB on every call (glibc maps
    allocations over 32 MiB afresh); small ones are reused by the allocator and stay in cache between the transform
    and the GEMM. 1 when the batch size is not static."""
    if n is None or c is None or k is None:
        return 1
    d = int(dilation)
    tiles = int(n) * d * d * -(-(-(-int(h) // d)) // 4) * -(-(-(-int(w) // d)) // 4)
    per_tile = 36 * 4 * max(int(c), int(k))
    limit = chunk_bytes or CHUNK_BYTES
    return max(1, min(tiles, -(-tiles * per_tile // limit)))


def _transform_kernel_matmul(kernel):
    """`transform_kernel(kernel, 4)` as one [36, 9] x [9, C K] matmul (the einsum form costs ~30 ms at 256 x 256 on
    the 2-core test machine, this one a few)."""
    c, k = tf.shape(kernel)[2], tf.shape(kernel)[3]
    gg = tf.constant(np.kron(G[4], G[4]), kernel.dtype)  # [(i, j), (a, b)]
    return tf.reshape(tf.matmul(gg, tf.reshape(kernel, [9, -1])), [36, c, k])


def conv2d_winograd_cc(x, kernel, bias=None, dilation=1, lrelu=False, alpha=0.2, direct=None, chunks=None):
    """`act(tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "SAME", dilations=dilation), bias))` for a 3x3 float32 kernel,
    act = LeakyReLU(alpha) if `lrelu` else identity, by Winograd F(4x4, 3x3) with the compiled transforms.

    The input transform (every 6x6 tile, B^T d B, on each of the dilation^2 sub-grids) and the output transform
    (A^T m A + bias, LeakyReLU, the 4x4 tiles put in place) are one C++ pass over memory each
    (`TfvrWinogradInput` / `TfvrWinogradOutput`, CPU only); between them 36 GEMMs [P, C] x [C, K] are one batched
    `tf.matmul` (oneDNN), with U = G g G^T computed by TF ops on every call (negligible). float32 only; H and W
    static. Results within ~1e-5 of the output's scale (the F(4x4) constants), like `conv2d_winograd`.

    Gradient: `tf.custom_gradient` with the gradient of the direct computation (`direct(x, kernel)`, default
    `tf.nn.conv2d`, or `tf.nn.atrous_conv2d` when dilated, then bias_add and LeakyReLU): the same math as training the direct conv.
    `direct` is re-run inside the gradient only to differentiate it; under `tf.function` its forward result is
    unused there and pruned (a conv's gradient needs its inputs, not its output). `chunks`: see `winograd_chunks`
    (the default).
    """
    lib = _cc_lib()
    x = tf.convert_to_tensor(x)
    if x.dtype != tf.float32:
        raise ValueError(f"conv2d_winograd_cc: float32 only, got {x.dtype.name}")
    kernel = tf.cast(kernel, tf.float32)
    if tuple(kernel.shape[:2]) != (3, 3):
        raise ValueError(f"conv2d_winograd_cc: needs a 3x3 kernel, got shape {tuple(kernel.shape)}")
    h, w = x.shape[1], x.shape[2]
    if h is None or w is None:
        raise ValueError("conv2d_winograd_cc: needs a static height and width")
    k = kernel.shape[3] if kernel.shape[3] is not None else tf.shape(kernel)[3]
    bias = tf.zeros([k], tf.float32) if bias is None else tf.cast(bias, tf.float32)
    d = int(dilation)
    direct = direct or (lambda a, b: _direct_dilated(a, b, d))
    slope = float(alpha)

    chunks = chunks or winograd_chunks(x.shape[0], h, w, x.shape[3], kernel.shape[3], d)

    @tf.custom_gradient
    def run(x, kernel, bias):
        u = _transform_kernel_matmul(kernel)
        vs = lib.tfvr_winograd_input(x, dilation=d, chunks=chunks)
        ms = [tf.matmul(v, u) for v in vs]
        y = lib.tfvr_winograd_output(ms, bias, height=int(h), width=int(w), dilation=d, lrelu=bool(lrelu),
                                     alpha=slope)

        def grad(dy):
            dz = tf.where(y > 0, dy, dy * slope) if lrelu else dy  # LeakyReluGrad: y > 0 exactly when z > 0
            with tf.GradientTape() as tape:
                tape.watch([x, kernel])
                z = direct(x, kernel)
            dx, dk = tape.gradient(z, [x, kernel], output_gradients=dz)
            return dx, dk, tf.reduce_sum(dz, axis=[0, 1, 2])

        return y, grad

    return run(x, kernel, bias)
