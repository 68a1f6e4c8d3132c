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


def _deform_conv2d_kernel(x, offset, mask, kernel, bias, strides, pads, dilations, offset_groups):
    kh, kw, cin, cout = kernel.shape
    dtype = x.dtype
    f32 = lambda t: tf.cast(t, tf.float32) if t.dtype != tf.float32 else t  # noqa: E731
    x, offset = f32(x), f32(offset)
    if mask is None:
        mask = tf.ones(tf.concat([tf.shape(offset)[:3], [offset_groups * kh * kw]], 0), tf.float32)
    mask = f32(mask)
    pads_t = tf.cast(tf.stack(list(pads)), tf.int32)
    cols = _lib.tfvr_deform_im2col(
        x, offset, mask, pads_t,
        kernel_size=[kh, kw], strides=list(strides), dilations=list(dilations), offset_groups=offset_groups,
    )  # [N, Ho, Wo, K·C]
    shape = tf.shape(cols)
    y = tf.matmul(tf.reshape(cols, [-1, kh * kw * cin]), tf.reshape(f32(tf.convert_to_tensor(kernel)), [-1, cout]))
    y = tf.reshape(y, tf.concat([shape[:3], [cout]], 0))
    if bias is not None:
        y = y + f32(tf.convert_to_tensor(bias))
    return tf.cast(y, dtype) if dtype != tf.float32 else y


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
    fn = _deform_conv2d_kernel if which == "kernel" else deform_conv2d_reference
    return fn(x, offset, mask, kernel, bias, strides, tuple(pads), dilations, g)
