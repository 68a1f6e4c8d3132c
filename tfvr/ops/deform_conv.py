"""Modulated deformable convolution (DCNv2, Zhu et al., "Deformable ConvNets v2", CVPR 2019) for NHWC tensors.

`deform_conv2d(x, offset, mask, kernel, ...)` computes, for every output pixel (i, j), output channel o:

    y[n, i, j, o] = bias[o] + Σ_{k=(a,b)} Σ_c kernel[a, b, c, o] · mask[n, i, j, g(c)·K + k]
                    · bilinear(x[n, :, :, c], i·sh − pt + a·dh + Δy,  j·sw − pl + b·dw + Δx)

with Δy = offset[n, i, j, 2·(g(c)·K + k)], Δx = offset[n, i, j, 2·(g(c)·K + k) + 1], K = kh·kw, k = a·kw + b
(row-major), g(c) = c // (C / G) the offset group of input channel c, and bilinear sampling that reads zeros
outside the image — the semantics of `torchvision.ops.deform_conv2d`.

Layouts (NHWC / HWIO):
  x       [N, H, W, C]
  offset  [N, Ho, Wo, 2·G·K]   channel 2·(g·K + k) is the row offset Δy, channel 2·(g·K + k) + 1 the column offset Δx
  mask    [N, Ho, Wo, G·K]     channel g·K + k (modulation, usually a sigmoid output); None means all ones (DCNv1)
  kernel  [kh, kw, C, O]
  bias    [O] or None
This is torchvision's channel order moved to channels-last, so `from_torchvision_offset` is the identity and a
PyTorch `conv_offset` (OIHW) converts with the usual OIHW → HWIO transpose and no row permutation. EDVR's
DCNv2Pack (BasicSR) builds its offset as cat(o1, o2) of the first two thirds of `conv_offset`'s output and reads it
in exactly this order (see `tfvr.layers.deform_conv.ModulatedDeformConv2D`).

Three implementations behind `impl`:
  "reference"  pure TensorFlow (`deform_conv_reference.py`): autodiff gradients, graph mode, XLA, SavedModels that
               stock TF Serving loads (no custom op).
  "kernel"     the C++ custom op from `tfvr/ops/cc/` (CPU, multithreaded with TF's intra-op pool; CUDA kernel when
               built with `python -m tfvr.ops.build --cuda`), with a registered gradient. Raises if not built.
               float32, float16 and bfloat16 inputs run in their own dtype (columns and matmul; sampling weights,
               offsets, masks and every sum inside the op in float32); other dtypes in float32. Output rows are
               processed in chunks when the columns would exceed `max_cols_bytes` (memory bound for HD frames).
  "auto"       (default) the kernel when it is loaded and usable here, else the reference. The reference is chosen
               inside XLA (`jit_compile=True`, custom ops cannot compile), while `tf.saved_model.save` traces, and
               inside `with implementation("reference"):`, which exporters should use to trace serving functions.
               If the kernel is missing, one warning says why.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections.abc import Sequence

import tensorflow as tf

from tfvr.ops.deform_conv_reference import deform_conv2d_reference, in_xla_context

__all__ = ["deform_conv2d", "from_torchvision_offset", "implementation", "kernel_status", "IMPLS"]

IMPLS = ("auto", "reference", "kernel")
LIBRARY_NAME = "_deform_conv_ops.so"
LIBRARY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)


# ---------------------------------------------------------------------------------------------------- arguments
def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    raise ValueError(f"deform_conv2d: {name} must be an int or a pair of ints, got {value!r}")


def _resolve_padding(padding, size, k: int, s: int, d: int):
    """(pad before, output size) along one axis; `size` may be a Python int or a scalar tensor."""
    span = (k - 1) * d + 1
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return 0, (size - span) // s + 1
        # TF's SAME: ceil(size / s) outputs, the odd pixel of padding goes after.
        out = (size + s - 1) // s
        total = (out - 1) * s + span - size
        total = max(total, 0) if isinstance(total, int) else tf.maximum(total, 0)
        return total // 2, out
    return padding, (size + 2 * padding - span) // s + 1


def _parse_padding(padding) -> str | tuple[int, int]:
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(f'deform_conv2d: padding must be "SAME", "VALID", an int or a pair, got {padding!r}')
        return padding.upper()
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"deform_conv2d: padding must be ≥ 0, got {padding!r}")
    return ph, pw


def from_torchvision_offset(offset_nhwc, offset_groups: int, kernel_size):
    """Converts a torchvision offset tensor (already moved to NHWC) to tfvr's layout: the identity.

    tfvr adopted torchvision's interleaved (Δy, Δx) channel order per (offset group, kernel position), so nothing
    moves; the channel count is checked against 2·offset_groups·kh·kw.
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    offset_nhwc = tf.convert_to_tensor(offset_nhwc)
    want = 2 * offset_groups * kh * kw
    if offset_nhwc.shape[-1] is not None and offset_nhwc.shape[-1] != want:
        raise ValueError(
            f"from_torchvision_offset: expected 2·{offset_groups}·{kh}·{kw} = {want} channels, "
            f"got {offset_nhwc.shape[-1]}"
        )
    return offset_nhwc


# ---------------------------------------------------------------------------------------------------- kernel
_lib_lock = threading.Lock()
_lib = None  # the loaded op module, once loaded
_lib_error: str | None = None  # why it could not be loaded, once tried
_warned = False
_impl_override = threading.local()


def _load_library():
    """The custom-op module, or None; the reason for a failure is kept in `_lib_error`."""
    global _lib, _lib_error
    with _lib_lock:
        if _lib is None and _lib_error is None:
            if os.environ.get("TFVR_DISABLE_KERNEL"):
                _lib_error = "TFVR_DISABLE_KERNEL is set"
            elif not os.path.exists(LIBRARY_PATH):
                _lib_error = f"{LIBRARY_PATH} is not built (run `python -m tfvr.ops.build`)"
            else:
                try:
                    _lib = tf.load_op_library(LIBRARY_PATH)
                except Exception as e:  # noqa: BLE001 — any load failure means "use the reference"
                    _lib_error = f"{LIBRARY_PATH} failed to load: {type(e).__name__}: {str(e).strip()[:300]}"
        return _lib


def kernel_status() -> tuple[bool, str]:
    """(loaded, reason): whether the compiled kernel is usable, and if not, why. Loads it on first call."""
    lib = _load_library()
    if lib is None:
        return False, _lib_error or "not loaded"
    return True, "loaded" + (" (CPU and GPU kernels)" if _has_gpu_kernel() else " (CPU kernel)")


def _has_gpu_kernel() -> bool:
    from tensorflow.python.framework import kernels

    try:
        found = kernels.get_registered_kernels_for_op("TfvrDeformIm2col").kernel
    except Exception:  # noqa: BLE001
        return False
    return any(kd.device_type == "GPU" for kd in found)


@contextlib.contextmanager
def implementation(impl: str):
    """Within the block, `impl="auto"` resolves to `impl` (e.g. "reference" while tracing a serving function)."""
    if impl not in IMPLS:
        raise ValueError(f"implementation: impl must be one of {IMPLS}, got {impl!r}")
    stack = getattr(_impl_override, "stack", [])
    _impl_override.stack = stack + [impl]
    try:
        yield
    finally:
        _impl_override.stack = stack


def _in_xla_or_saving() -> bool:
    from tensorflow.python.saved_model import save_context

    return save_context.in_save_context() or in_xla_context()


def _warn_once(why: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"tfvr deform_conv2d: using the pure-TF reference implementation because {why}",
                      RuntimeWarning, stacklevel=4)


def _resolve_impl(impl: str, on_gpu: bool) -> str:
    if impl not in IMPLS:
        raise ValueError(f"deform_conv2d: impl must be one of {IMPLS}, got {impl!r}")
    stack = getattr(_impl_override, "stack", None)
    if impl == "auto" and stack:
        impl = stack[-1]
    if impl != "auto":
        if impl == "kernel" and _load_library() is None:
            raise RuntimeError(f"deform_conv2d(impl='kernel'): the compiled kernel is unavailable: {_lib_error}")
        return impl
    if _in_xla_or_saving():
        return "reference"
    if _load_library() is None:
        _warn_once(_lib_error)
        return "reference"
    if on_gpu and not _has_gpu_kernel():
        _warn_once("the compiled kernel has no GPU kernel (build it with `python -m tfvr.ops.build --cuda`)")
        return "reference"
    return "kernel"


def _on_gpu(x) -> bool:
    if tf.executing_eagerly():
        return "GPU" in (x.device or "").upper()
    # In a graph the placer decides later; it prefers a GPU whenever one is visible.
    return bool(tf.config.list_logical_devices("GPU"))


@tf.RegisterGradient("TfvrDeformIm2col")
def _deform_im2col_grad(op, grad_cols):
    grads = _lib.tfvr_deform_im2col_grad(
        op.inputs[0],
        op.inputs[1],
        op.inputs[2],
        op.inputs[3],
        grad_cols,
        kernel_size=op.get_attr("kernel_size"),
        strides=op.get_attr("strides"),
        dilations=op.get_attr("dilations"),
        offset_groups=op.get_attr("offset_groups"),
    )
    return [grads[0], grads[1], grads[2], None]


# The kernel's element types (x, columns, grad_x); offsets and masks always go in as float32.
KERNEL_DTYPES = (tf.float32, tf.float16, tf.bfloat16)
# Largest im2col working set (bytes of one chunk of columns) before the kernel path splits the output rows into
# chunks. $TFVR_DCN_COLS_MB overrides it; 0 disables chunking.
DEFAULT_MAX_COLS_BYTES = int(float(os.environ.get("TFVR_DCN_COLS_MB", "256")) * (1 << 20))


def chunk_rows(n, wo, kc, itemsize: int, max_cols_bytes: int):
    """Output rows per chunk so that one chunk's columns [n, rows, wo, kc] stay within `max_cols_bytes` (at least
    one row). Python ints in, Python int out; tensors in, int32 tensor out."""
    row = n * wo * kc * itemsize
    if isinstance(row, int):
        return max(1, max_cols_bytes // max(row, 1))
    return tf.maximum(tf.constant(1, row.dtype), tf.constant(max_cols_bytes, row.dtype) // tf.maximum(row, 1))


def _im2col(x, offset, mask, pads, kh, kw, strides, dilations, offset_groups):
    return _lib.tfvr_deform_im2col(
        x, offset, mask, pads,
        kernel_size=[kh, kw], strides=list(strides), dilations=list(dilations), offset_groups=offset_groups,
    )


def _chunked_conv(x, offset, mask, kernel2d, pads, rows, kh, kw, strides, dilations, offset_groups):
    """The im2col + matmul of the kernel path over chunks of `rows` output rows (a tf.while_loop, so any shape
    works), with a custom gradient that recomputes each chunk's columns: forward and backward both hold one
    chunk of columns at a time. `pads` = (top, left) ints or scalars; chunk i starts at output row r0 and sees
    top padding pads[0] - r0·stride, so slicing the offsets and masks by rows is all the op needs."""
    kc, cout = kernel2d.shape
    attrs = (kh, kw, strides, dilations, offset_groups)
    pad_top = tf.cast(pads[0], tf.int32)
    pad_left = tf.cast(pads[1], tf.int32)
    rows = tf.cast(rows, tf.int32)
    dtype = x.dtype

    def bounds(i, ho):
        r0 = i * rows
        return r0, tf.minimum(r0 + rows, ho)

    def chunk_cols(x, offset, mask, r0, r1):
        pads_c = tf.stack([pad_top - r0 * strides[0], pad_left])
        return _im2col(x, offset[:, r0:r1], mask[:, r0:r1], pads_c, *attrs)

    @tf.custom_gradient
    def conv(x, offset, mask, kernel2d):
        shape = tf.shape(offset)
        n, ho, wo = shape[0], shape[1], shape[2]
        num = (ho + rows - 1) // rows

        def body(i, ta):
            r0, r1 = bounds(i, ho)
            cols = chunk_cols(x, offset, mask, r0, r1)
            y = tf.reshape(tf.matmul(tf.reshape(cols, [-1, kc]), kernel2d), [n, r1 - r0, wo, cout])
            return i + 1, ta.write(i, tf.transpose(y, [1, 0, 2, 3]))

        ta = tf.TensorArray(dtype, size=num, infer_shape=False, element_shape=tf.TensorShape([None, None, None, cout]))
        _, ta = tf.while_loop(lambda i, _: i < num, body, [tf.constant(0), ta])
        y = tf.transpose(ta.concat(), [1, 0, 2, 3])

        def grad(dy):
            dy = tf.cast(dy, dtype)

            def gbody(i, gx, gk, ta_off, ta_mask):
                r0, r1 = bounds(i, ho)
                cols = tf.reshape(chunk_cols(x, offset, mask, r0, r1), [-1, kc])
                dy_c = tf.reshape(dy[:, r0:r1], [-1, cout])
                gk = gk + tf.cast(tf.matmul(cols, dy_c, transpose_a=True), tf.float32)
                dcols = tf.reshape(tf.matmul(dy_c, kernel2d, transpose_b=True), [n, r1 - r0, wo, kc])
                pads_c = tf.stack([pad_top - r0 * strides[0], pad_left])
                gx_c, goff_c, gmask_c = _lib.tfvr_deform_im2col_grad(
                    x, offset[:, r0:r1], mask[:, r0:r1], pads_c, dcols,
                    kernel_size=[kh, kw], strides=list(strides), dilations=list(dilations),
                    offset_groups=offset_groups)
                gx = gx + tf.cast(gx_c, tf.float32)
                ta_off = ta_off.write(i, tf.transpose(goff_c, [1, 0, 2, 3]))
                ta_mask = ta_mask.write(i, tf.transpose(gmask_c, [1, 0, 2, 3]))
                return i + 1, gx, gk, ta_off, ta_mask

            tas = [tf.TensorArray(tf.float32, size=num, infer_shape=False,
                                  element_shape=tf.TensorShape([None, None, None, t.shape[-1]]))
                   for t in (offset, mask)]
            init = [tf.constant(0), tf.zeros(tf.shape(x), tf.float32), tf.zeros([kc, cout], tf.float32), *tas]
            _, gx, gk, ta_off, ta_mask = tf.while_loop(lambda i, *_: i < num, gbody, init)
            goff = tf.transpose(ta_off.concat(), [1, 0, 2, 3])
            gmask = tf.transpose(ta_mask.concat(), [1, 0, 2, 3])
            return tf.cast(gx, dtype), goff, gmask, tf.cast(gk, kernel2d.dtype)

        return y, grad

    return conv(x, offset, mask, kernel2d)


def _deform_conv2d_kernel(x, offset, mask, kernel, bias, strides, pads, dilations, offset_groups,
                          max_cols_bytes=None):
    """The custom-op path. x's dtype is kept when the kernel has it (float32, float16, bfloat16: columns and the
    matmul in that dtype, float32 sampling arithmetic inside the op), other float dtypes run in float32. Offsets
    and masks are sampled in float32 whatever their dtype. Above `max_cols_bytes` of columns the output rows are
    processed in chunks (`_chunked_conv`)."""
    kh, kw, cin, cout = kernel.shape
    dtype = x.dtype
    work = dtype if dtype in KERNEL_DTYPES else tf.float32
    cast = lambda t, d: tf.cast(t, d) if t.dtype != d else t  # noqa: E731
    x, offset = cast(x, work), cast(offset, tf.float32)
    if mask is None:
        mask = tf.ones(tf.concat([tf.shape(offset)[:3], [offset_groups * kh * kw]], 0), tf.float32)
    mask = cast(mask, tf.float32)
    kernel2d = tf.reshape(cast(tf.convert_to_tensor(kernel), work), [-1, cout])
    budget = DEFAULT_MAX_COLS_BYTES if max_cols_bytes is None else int(max_cols_bytes)
    kc = kh * kw * cin
    itemsize = work.size

    def single():
        pads_t = tf.cast(tf.stack(list(pads)), tf.int32)
        cols = _im2col(x, offset, mask, pads_t, kh, kw, strides, dilations, offset_groups)  # [N, Ho, Wo, K·C]
        shape = tf.shape(cols)
        y = tf.matmul(tf.reshape(cols, [-1, kc]), kernel2d)
        return tf.reshape(y, tf.concat([shape[:3], [cout]], 0))

    def chunked(rows):
        return _chunked_conv(x, offset, mask, kernel2d, pads, rows, kh, kw, strides, dilations, offset_groups)

    n, ho, wo = offset.shape[0], offset.shape[1], offset.shape[2]
    if budget <= 0:
        y = single()
    elif None not in (n, ho, wo) and all(isinstance(p, int) for p in pads):
        rows = chunk_rows(n, wo, kc, itemsize, budget)
        y = single() if rows >= ho else chunked(rows)
    else:
        shape = tf.shape(offset, out_type=tf.int64)
        rows = chunk_rows(shape[0], shape[2], kc, itemsize, budget)
        y = tf.cond(rows >= shape[1], single, lambda: chunked(rows))
    if bias is not None:
        y = y + cast(tf.convert_to_tensor(bias), work)
    return cast(y, dtype)


# ---------------------------------------------------------------------------------------------------- API
# Nothing here branches on tensor values, and autograph would mangle the module-level state of the switch.
@tf.autograph.experimental.do_not_convert
def deform_conv2d(
    x,
    offset,
    mask,
    kernel,
    bias=None,
    strides=1,
    padding="SAME",
    dilations=1,
    offset_groups: int | None = None,
    impl: str = "auto",
    max_cols_bytes: int | None = None,
):
    """Modulated deformable 2-D convolution (DCNv2) on NHWC tensors; layouts in the module docstring.

    Args:
      x: [N, H, W, C] float tensor.
      offset: [N, Ho, Wo, 2·G·kh·kw] sampling offsets in pixels, torchvision's (Δy, Δx) order.
      mask: [N, Ho, Wo, G·kh·kw] modulation scalars, or None for all ones.
      kernel: [kh, kw, C, O] (HWIO).
      bias: [O] or None.
      strides, dilations: int or (row, column).
      padding: int or (row, column) zero padding on both sides (as torchvision), or "SAME" / "VALID" (as
        `tf.nn.conv2d`).
      offset_groups: G; C must be divisible by it. None: read from offset's channel count.
      impl: "auto", "reference" or "kernel" (see the module docstring).
      max_cols_bytes: kernel path only: the im2col columns of one chunk of output rows stay within this many bytes
        (default `DEFAULT_MAX_COLS_BYTES`, 256 MiB or $TFVR_DCN_COLS_MB; 0: never chunk). A 720p feature map
        with 64 channels and a 3×3 kernel has 2.1 GB of float32 columns in one piece.
    Returns:
      [N, Ho, Wo, O].
    """
    x = tf.convert_to_tensor(x)
    offset = tf.convert_to_tensor(offset)
    mask = None if mask is None else tf.convert_to_tensor(mask)
    kernel = tf.convert_to_tensor(kernel)
    bias = None if bias is None else tf.convert_to_tensor(bias)
    if x.shape.rank != 4 or offset.shape.rank != 4 or (mask is not None and mask.shape.rank != 4):
        raise ValueError(
            f"deform_conv2d: x, offset and mask must be 4-D NHWC; got x {x.shape}, offset {offset.shape}, "
            f"mask {None if mask is None else mask.shape}"
        )
    if kernel.shape.rank != 4 or not kernel.shape.is_fully_defined():
        raise ValueError(f"deform_conv2d: kernel must be a fully known [kh, kw, C, O] tensor, got {kernel.shape}")
    kh, kw, cin, cout = kernel.shape
    k = kh * kw
    c = x.shape[-1]
    if c is None:
        raise ValueError("deform_conv2d: x needs a known channel count")
    if c != cin:
        raise ValueError(f"deform_conv2d: x has {c} channels but kernel expects {cin} (kernel shape {kernel.shape})")
    if offset_groups is None:
        if offset.shape[-1] is None or offset.shape[-1] % (2 * k):
            raise ValueError(f"deform_conv2d: cannot infer offset_groups from offset channels {offset.shape[-1]}")
        offset_groups = offset.shape[-1] // (2 * k)
    g = int(offset_groups)
    if g < 1 or c % g:
        raise ValueError(f"deform_conv2d: offset_groups={g} must divide the {c} input channels")
    if offset.shape[-1] is not None and offset.shape[-1] != 2 * g * k:
        raise ValueError(f"deform_conv2d: offset needs 2·G·kh·kw = {2 * g * k} channels, got {offset.shape[-1]}")
    if mask is not None and mask.shape[-1] is not None and mask.shape[-1] != g * k:
        raise ValueError(f"deform_conv2d: mask needs G·kh·kw = {g * k} channels, got {mask.shape[-1]}")
    if bias is not None and tuple(bias.shape) != (cout,):
        raise ValueError(f"deform_conv2d: bias must have shape [{cout}], got {bias.shape}")
    strides = _pair(strides, "strides")
    dilations = _pair(dilations, "dilations")
    if min(strides) < 1 or min(dilations) < 1:
        raise ValueError(f"deform_conv2d: strides and dilations must be ≥ 1, got {strides}, {dilations}")
    padding = _parse_padding(padding)

    pads, out = [], []
    for axis in (0, 1):
        size = x.shape[1 + axis]
        if size is None:
            size = tf.shape(x)[1 + axis]
        p = padding if isinstance(padding, str) else padding[axis]
        before, n_out = _resolve_padding(p, size, (kh, kw)[axis], strides[axis], dilations[axis])
        pads.append(before)
        out.append(n_out)
    for t, name in ((offset, "offset"), (mask, "mask")):
        if t is None:
            continue
        for axis in (0, 1):
            have = t.shape[1 + axis]
            if isinstance(out[axis], int) and have is not None and have != out[axis]:
                raise ValueError(
                    f"deform_conv2d: {name} must be [N, {out[0]}, {out[1]}, ...] for x {x.shape} with "
                    f"strides {strides}, padding {padding!r}, dilations {dilations}, kernel {kh}×{kw}; "
                    f"got {t.shape}"
                )

    which = _resolve_impl(impl, _on_gpu(x))
    if which == "kernel":
        return _deform_conv2d_kernel(x, offset, mask, kernel, bias, strides, tuple(pads), dilations, g, max_cols_bytes)
    return deform_conv2d_reference(x, offset, mask, kernel, bias, strides, tuple(pads), dilations, g)
