"""Degradations, with the same maths in NumPy (offline) and TensorFlow (graph mode, inside `tf.data`).

- `imresize` / `tf_imresize`: MATLAB's `imresize(img, scale, 'bicubic')` with antialiasing, as ported by BasicSR
  (`basicsr/utils/matlab_functions.py`), which is how the LR frames of REDS, Vimeo-90K and Vid4 (BIx4) were made.
  `cv2.resize`, PIL and `tf.image.resize` use other kernels / no antialiasing and change PSNR by tenths of a dB.
  The 1-D resampling along each axis is a fixed matrix (MATLAB's cubic weights over a symmetrically padded
  input, with the padding folded in), so the image is resized as `M_h @ img @ M_w^T`.
- `add_gaussian_noise` / `tf_add_gaussian_noise`: additive white Gaussian noise, sigma on the 0–255 scale.
- `temporal_blur` / `tf_temporal_blur`: blur by averaging consecutive sharp frames (the GoPro recipe).

Images are float HWC (or `[..., H, W, C]` for the TF versions) in [0, 1] unless stated; nothing clips unless
asked, so the maths matches the references.
"""

from __future__ import annotations

import functools
import math

import numpy as np


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic kernel with a = -0.5 (MATLAB's `cubic`)."""
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * (
        (absx > 1) & (absx <= 2)
    )


@functools.lru_cache(maxsize=256)
def resize_matrix(in_length: int, out_length: int, scale: float, antialiasing: bool = True) -> np.ndarray:
    """The `[out_length, in_length]` float64 matrix of MATLAB bicubic resampling along one axis.

    Follows BasicSR's `calculate_weights_indices` step by step (kernel width 4, widened by 1/scale when
    down-sampling with antialiasing; weights normalised per output; all-zero edge taps dropped), then folds the
    symmetric (mirror, edge included) padding into the matrix so no padded copy of the image is needed.
    """
    # BasicSR computes the weights in float32 (torch's default dtype); doing the same keeps parity within 1e-6
    # (float64 weights differ from it by up to 1.5e-6 at scale 0.75).
    f32 = np.float32
    kernel_width = 4.0
    if scale < 1 and antialiasing:
        kernel_width = kernel_width / scale
    x = np.linspace(1, out_length, out_length).astype(f32)
    u = x / f32(scale) + f32(0.5 * (1 - 1 / scale))
    left = np.floor(u - f32(kernel_width / 2))
    p = int(math.ceil(kernel_width) + 2)
    indices = left[:, None] + np.arange(p, dtype=f32)[None, :]
    distance = u[:, None] - indices
    if scale < 1 and antialiasing:
        weights = f32(scale) * _cubic(distance * f32(scale)).astype(f32)
    else:
        weights = _cubic(distance).astype(f32)
    weights = weights / weights.sum(axis=1, keepdims=True, dtype=f32)
    zeros_per_column = (weights == 0).sum(axis=0)
    if not math.isclose(zeros_per_column[0], 0, rel_tol=1e-6):
        indices, weights = indices[:, 1 : p - 1], weights[:, 1 : p - 1]
    if not math.isclose(zeros_per_column[-1], 0, rel_tol=1e-6):
        # As BasicSR: keep the first p-2 columns (a no-op after the first cut; the extra tap then has weight 0).
        indices, weights = indices[:, : p - 2], weights[:, : p - 2]
    # 1-based MATLAB indices → 0-based, mirrored at both ends (symmetric padding includes the edge sample).
    idx = indices.astype(np.int64) - 1
    idx = np.where(idx < 0, -idx - 1, idx)
    idx = np.where(idx >= in_length, 2 * in_length - idx - 1, idx)
    if idx.min() < 0 or idx.max() >= in_length:
        raise ValueError(f"cannot resize a length-{in_length} axis by {scale}: the kernel overruns the mirror padding")
    matrix = np.zeros((out_length, in_length), np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_length), idx.shape[1]), idx.ravel()), weights.ravel().astype(np.float64))
    return matrix


def output_size(in_length: int, scale: float) -> int:
    """MATLAB's output length: ceil(in_length · scale)."""
    return int(math.ceil(in_length * scale))


def imresize(img: np.ndarray, scale: float, antialiasing: bool = True) -> np.ndarray:
    """MATLAB-exact bicubic resize of an HWC (or HW) float image; returns the same dtype.

    Args:
      img: float array `[H, W, C]` or `[H, W]`, any range (values are not clipped, as in MATLAB for floats).
      scale: the scale factor (0.25 for ×4 down-sampling); output size is ceil(H·scale) × ceil(W·scale).
      antialiasing: widen the kernel when down-sampling (MATLAB's default).
    """
    img = np.asarray(img)
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f"imresize takes a float image, got {img.dtype} (convert uint8 with img / 255.)")
    squeeze = img.ndim == 2
    x = img[:, :, None] if squeeze else img
    h, w = x.shape[:2]
    mh = resize_matrix(h, output_size(h, scale), float(scale), bool(antialiasing))
    mw = resize_matrix(w, output_size(w, scale), float(scale), bool(antialiasing))
    # The reference converts the image to float32 first (`torch.from_numpy(img).float()`).
    out = np.einsum("oh,hwc->owc", mh, x.astype(np.float32).astype(np.float64))
    out = np.einsum("pw,owc->opc", mw, out)
    out = out.astype(img.dtype)
    return out[:, :, 0] if squeeze else out


def tf_imresize(images, scale: float, antialiasing: bool = True):
    """TensorFlow version of `imresize` for `[..., H, W, C]` float tensors (graph mode, `tf.data`, XLA).

    H and W must be known when the graph is traced (the resampling matrices are constants); inside `tf.data`,
    crop to a fixed size first. Computes in float32 unless given float64.
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise TypeError(f"tf_imresize takes a float tensor, got {images.dtype.name}")
    h, w = images.shape[-3], images.shape[-2]
    if h is None or w is None:
        raise ValueError(
            "tf_imresize needs a static height and width (got shape "
            f"{images.shape}); crop to a fixed size before resizing"
        )
    compute = tf.float64 if images.dtype == tf.float64 else tf.float32
    mh = tf.constant(resize_matrix(h, output_size(h, scale), float(scale), bool(antialiasing)), compute)
    mw = tf.constant(resize_matrix(w, output_size(w, scale), float(scale), bool(antialiasing)), compute)
    x = tf.cast(images, compute)
    out = tf.einsum("oh,...hwc->...owc", mh, x)
    out = tf.einsum("pw,...owc->...opc", mw, out)
    return tf.cast(out, images.dtype)


def add_gaussian_noise(img: np.ndarray, sigma: float, seed=None) -> np.ndarray:
    """`img + N(0, (sigma/255)^2)` for float images in [0, 1]; `sigma` on the 0–255 scale (σ=25 is the usual test).

    `seed` is an int or a `np.random.Generator`. Not clipped (clip yourself if the model sees 8-bit input).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    img = np.asarray(img)
    noise = rng.standard_normal(img.shape) * (sigma / 255.0)
    return (img + noise).astype(img.dtype)


def tf_add_gaussian_noise(images, sigma, seed):
    """Graph-mode Gaussian noise: `images + N(0, (sigma/255)^2)`, deterministic for a given `seed` (shape [2] int).

    Uses `tf.random.stateless_normal`, so the same seed gives the same noise in eager mode, `tf.function` and
    `tf.data` alike.
    """
    import tensorflow as tf

    images = tf.convert_to_tensor(images)
    noise = tf.random.stateless_normal(tf.shape(images), seed=seed, dtype=images.dtype)
    return images + noise * tf.cast(sigma, images.dtype) / 255.0


def temporal_blur(frames: np.ndarray, window: int) -> np.ndarray:
    """Blur by averaging `window` consecutive frames: `[T, H, W, C]` → `[T - window + 1, H, W, C]` (float).

    Averaging sharp frames of a high-frame-rate video is how GoPro/REDS blur was made; `synthetic.generate`
    renders sub-frames for exactly this.
    """
    frames = np.asarray(frames)
    if window < 1 or window > frames.shape[0]:
        raise ValueError(f"window must be in [1, {frames.shape[0]}], got {window}")
    x = frames.astype(np.float64)
    c = np.cumsum(np.concatenate([np.zeros_like(x[:1]), x]), axis=0)
    out = (c[window:] - c[:-window]) / window
    return out.astype(frames.dtype if np.issubdtype(frames.dtype, np.floating) else np.float32)


def tf_temporal_blur(frames, window: int):
    """Graph-mode `temporal_blur` for float `[T, H, W, C]` (or `[B, T, H, W, C]` with `axis` = time second)."""
    import tensorflow as tf

    frames = tf.convert_to_tensor(frames)
    time_axis = frames.shape.rank - 4
    stacked = [tf.gather(frames, tf.range(k, tf.shape(frames)[time_axis] - window + 1 + k), axis=time_axis)
               for k in range(window)]
    return tf.add_n(stacked) / tf.cast(window, frames.dtype)
