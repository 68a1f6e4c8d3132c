"""A configurable degradation chain for `tf.data`: blur kernels, MATLAB-bicubic down-sampling, Gaussian and Poisson
noise, GoPro temporal averaging, 8-bit quantisation — applied to the clean frames of a clip in a configured order.

    --config.data.task=sr --config.data.scale=2
    --config.data.degradations="('blur', 'down', 'noise')"
    --config.data.degrade.blur_sigma_max=2.0 --config.data.degrade.noise_sigma_max=15

`apply_chain(frames, steps, cfg, scale, seed)` runs the steps on float `[L, H, W, C]` frames in [0, 1] and returns
`[L', h, w, C]` (L' = L - temporal_blur_frames + 1 with a "temporal_blur" step, h = H / scale with "down").
"up" is MATLAB bicubic up-sampling by `scale` back to the HR grid, for same-size models (STTN-R, EDVR hr_in)
restoring down-sampled video: ("blur", "down", "noise", "up") is "blurred, ×2 down-sampled, noisy" video at its
original size. Every step works eagerly and inside `Dataset.map` ("down" / "up" need a static H, W: a crop).

Randomness: every choice of a clip — whether a step runs (its `*_prob`), the kernel type, sigmas and angle, the
noise level, gray or colour noise — is drawn once per clip from stateless seeds derived from the clip seed and the
step's position, so **every frame of a clip gets the same kernel and noise level** (video degradations must not
flicker), the same (seed, clip) always gives the same sample, and parallel maps / `deterministic` mode do not
change the result. The noise values themselves are independent per pixel and frame.

Kernels follow BasicSR (`basicsr/data/degradations.py`): `bivariate_gaussian(kernel_size, sig_x, sig_y, theta,
isotropic)` = exp(-½ xᵀ Σ⁻¹ x) normalised to sum 1, Σ = R diag(σx², σy²) Rᵀ, on the grid
`-(k//2) .. k//2`; `random_mixed_kernels` picks iso / aniso by `blur_iso_prob`, σ uniform in
[blur_sigma_min, blur_sigma_max] (iso: σy = σx, θ = 0), θ uniform in [-π, π]. The blur is a depthwise 2-D
convolution with reflect padding (`cv2.filter2D`'s default BORDER_REFLECT_101, as BasicSR uses).
Poisson noise as BasicSR's `generate_poisson_noise`: out = Poisson(img · vals) / vals, noise = (out − img) · scale,
with vals = 256 (BasicSR: 2 ** ceil(log2(number of unique values)), 256 for natural 8-bit content; tfvr fixes it so
the noise level does not depend on the image content).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfvr.data import degrade

STEPS = ("blur", "temporal_blur", "down", "up", "noise", "poisson", "quantize")
_MAX_STEPS = 16


# ---------------------------------------------------------------------------------------------------------------
# Kernels (NumPy reference = BasicSR's formula; TF version for the graph)


def bivariate_gaussian_np(kernel_size: int, sig_x: float, sig_y: float, theta: float,
                          isotropic: bool = False) -> np.ndarray:
    """BasicSR's `bivariate_Gaussian`: [k, k] float64 kernel summing to 1."""
    if isotropic:
        sigma = np.array([[sig_x**2, 0], [0, sig_x**2]])
    else:
        d = np.array([[sig_x**2, 0], [0, sig_y**2]])
        u = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        sigma = u @ d @ u.T
    inv = np.linalg.inv(sigma)
    ax = np.arange(-kernel_size // 2 + 1.0, kernel_size // 2 + 1.0)
    xx, yy = np.meshgrid(ax, ax)
    grid = np.stack([xx, yy], axis=-1)
    k = np.exp(-0.5 * np.sum((grid @ inv) * grid, axis=2))
    return k / k.sum()


def bivariate_gaussian(kernel_size: int, sig_x, sig_y, theta):
    """TF version of `bivariate_gaussian_np` (isotropic = sig_y == sig_x with theta 0): float32 [k, k]."""
    sig_x = tf.cast(sig_x, tf.float32)
    sig_y = tf.cast(sig_y, tf.float32)
    theta = tf.cast(theta, tf.float32)
    c, s = tf.cos(theta), tf.sin(theta)
    # Σ = R diag(σx², σy²) Rᵀ; Σ⁻¹ = R diag(1/σx², 1/σy²) Rᵀ.
    a, b = 1.0 / (sig_x * sig_x), 1.0 / (sig_y * sig_y)
    i00 = c * c * a + s * s * b
    i11 = s * s * a + c * c * b
    i01 = c * s * (a - b)
    r = float(kernel_size // 2)
    ax = tf.range(-r, r + 1.0, dtype=tf.float32)
    xx, yy = tf.meshgrid(ax, ax)
    q = i00 * xx * xx + 2.0 * i01 * xx * yy + i11 * yy * yy
    k = tf.exp(-0.5 * q)
    return k / tf.reduce_sum(k)


def random_kernel(kernel_size: int, seed, *, iso_prob: float = 0.5, sigma_min: float = 0.2,
                  sigma_max: float = 3.0):
    """A random iso / aniso Gaussian kernel (BasicSR `random_mixed_kernels` with those two types)."""
    s = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    iso = tf.random.stateless_uniform([], s[0]) < iso_prob
    sx = tf.random.stateless_uniform([], s[1], sigma_min, sigma_max)
    sy = tf.where(iso, sx, tf.random.stateless_uniform([], s[2], sigma_min, sigma_max))
    theta = tf.where(iso, 0.0, tf.random.stateless_uniform([], s[3], -math.pi, math.pi))
    return bivariate_gaussian(kernel_size, sx, sy, theta)


def filter2d(frames, kernel):
    """Depthwise 2-D correlation of `[..., H, W, C]` frames with a `[k, k]` kernel, reflect-101 padding
    (`cv2.filter2D(img, -1, kernel)`, what BasicSR blurs with). Same kernel for every frame and channel.

    Computed by FFT on the padded frames (exact up to float32 rounding, ~1e-6): on CPU it is 6x faster than
    `tf.nn.depthwise_conv2d` for BasicSR's 21x21 kernels (measured 16 vs 99 ms for 5 frames of 48x48x3)."""
    frames = tf.convert_to_tensor(frames)
    kernel = tf.cast(kernel, frames.dtype)
    k = int(kernel.shape[0])
    p = k // 2
    if p == 0:
        return frames * kernel[0, 0]
    rank = frames.shape.rank
    # [..., H, W, C] -> [..., C, H, W]: the FFT runs over the two innermost axes.
    perm = list(range(rank - 3)) + [rank - 1, rank - 3, rank - 2]
    inv = list(range(rank - 3)) + [rank - 2, rank - 1, rank - 3]
    x = tf.transpose(frames, perm)
    x = tf.pad(x, [[0, 0]] * (rank - 2) + [[p, p], [p, p]], mode="REFLECT")
    hp, wp = tf.shape(x)[-2], tf.shape(x)[-1]
    # Correlation = convolution with the flipped kernel; circular convolution of the padded frames, whose last
    # H x W block (from k - 1 on) is the valid, reflect-padded result.
    kf = tf.pad(tf.reverse(kernel, [0, 1]), [[0, hp - k], [0, wp - k]])
    y = tf.signal.irfft2d(tf.signal.rfft2d(x) * tf.signal.rfft2d(kf), fft_length=tf.stack([hp, wp]))
    y = y[..., k - 1:, k - 1:]
    y = tf.transpose(y, inv)
    return tf.ensure_shape(y, frames.shape)


# ---------------------------------------------------------------------------------------------------------------
# Noise


def gaussian_noise(frames, sigma, seed, gray=False):
    """frames + N(0, (sigma/255)²); with `gray` one noise map shared by the channels (BasicSR gray noise)."""
    frames = tf.convert_to_tensor(frames)
    shape = tf.shape(frames)
    gshape = tf.concat([shape[:-1], [1]], 0)
    colour = tf.random.stateless_normal(shape, seed, dtype=frames.dtype)
    mono = tf.random.stateless_normal(gshape, seed, dtype=frames.dtype)
    noise = tf.where(tf.cast(gray, tf.bool), tf.broadcast_to(mono, shape), colour)
    return frames + noise * tf.cast(sigma, frames.dtype) / 255.0


def poisson_noise(frames, scale, seed, vals: float = 256.0):
    """frames + scale · (Poisson(frames · vals) / vals − frames) (BasicSR `generate_poisson_noise`).

    BasicSR sets vals = 2 ** ceil(log2(number of unique values)) per image: 256 for a natural 8-bit image; tfvr
    uses 256 (8-bit content) so the level does not depend on the image content."""
    frames = tf.convert_to_tensor(frames)
    lam = tf.clip_by_value(frames, 0.0, 1.0) * vals
    out = tf.random.stateless_poisson(tf.shape(frames), seed, lam, dtype=frames.dtype) / vals
    return frames + (out - frames) * tf.cast(scale, frames.dtype)


# ---------------------------------------------------------------------------------------------------------------
# The chain


def _uniform_or_low(seed, low: float, high: float):
    """A stateless uniform draw in [low, high), or `low` itself when the range is empty (high <= low)."""
    if high <= low:
        return tf.constant(low, tf.float32)
    return tf.random.stateless_uniform([], seed, low, high)


def _clip01(x, clip: bool):
    return tf.clip_by_value(x, 0.0, 1.0) if clip else x


def _quantize(x):
    return tf.round(tf.clip_by_value(x, 0.0, 1.0) * 255.0) / 255.0


def extra_frames(steps, cfg) -> int:
    """Extra frames the chain reads around the T frames (a temporal_blur step needs k - 1)."""
    return cfg.temporal_blur_frames - 1 if "temporal_blur" in tuple(steps) else 0


def apply_chain(frames, steps, cfg, scale: int, seed, *, return_params: bool = False):
    """Runs `steps` (see `STEPS`) on float `[L, H, W, C]` frames in [0, 1]; `cfg` is a `DegradeConfig`.

    Returns the degraded frames (and, with `return_params`, a dict of the per-clip random choices: `<i>/<step>/run`
    and the kernel / sigma / scale drawn, for tests and logging).
    """
    steps = tuple(steps)
    for st in steps:
        if st not in STEPS:
            raise ValueError(f"unknown degradation step {st!r} (steps: {', '.join(STEPS)})")
    if len(steps) > _MAX_STEPS:
        raise ValueError(f"at most {_MAX_STEPS} degradation steps")
    x = tf.convert_to_tensor(frames, tf.float32)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), _MAX_STEPS)
    params = {}
    for i, st in enumerate(steps):
        ss = tf.random.experimental.stateless_split(seeds[i], 4)
        drawn = {"run": tf.constant(True)}  # this step's random choices, recorded as params["<i>/<step>/<name>"]
        if st == "down":
            x = degrade.tf_imresize(x, 1.0 / scale, antialiasing=True) if scale > 1 else x
        elif st == "up":  # back to the HR grid (restoration of down-sampled video by same-size models, e.g. STTN-R)
            x = degrade.tf_imresize(x, float(scale), antialiasing=True) if scale > 1 else x
        elif st == "quantize":
            x = _quantize(x)
        elif st == "temporal_blur":
            k = cfg.temporal_blur_frames
            run = tf.random.stateless_uniform([], ss[0]) < cfg.temporal_blur_prob
            c = (k - 1) // 2
            if k > 1:
                blurred = degrade.tf_temporal_blur(x, k)
                plain = x[c:c + tf.shape(x)[0] - k + 1]
                x = tf.where(run, blurred, plain)
            drawn = {"run": run}
        elif st == "blur":
            run = tf.random.stateless_uniform([], ss[0]) < cfg.blur_prob
            kernel = random_kernel(cfg.blur_kernel_size, ss[1], iso_prob=cfg.blur_iso_prob,
                                   sigma_min=cfg.blur_sigma_min, sigma_max=cfg.blur_sigma_max)
            x = tf.cond(run, lambda x=x, kernel=kernel: filter2d(x, kernel), lambda x=x: x)
            drawn = {"run": run, "kernel": kernel}
        elif st == "noise":
            run = tf.random.stateless_uniform([], ss[0]) < cfg.noise_prob
            sigma = _uniform_or_low(ss[1], cfg.noise_sigma_min, cfg.noise_sigma_max)
            gray = tf.random.stateless_uniform([], ss[2]) < cfg.noise_gray_prob
            x = tf.where(run, _clip01(gaussian_noise(x, sigma, ss[3], gray), cfg.clip), x)
            drawn = {"run": run, "sigma": sigma, "gray": gray}
        elif st == "poisson":
            run = tf.random.stateless_uniform([], ss[0]) < cfg.poisson_prob
            sc = _uniform_or_low(ss[1], cfg.poisson_scale_min, cfg.poisson_scale_max)
            x = _clip01(tf.cond(run, lambda x=x, sc=sc: poisson_noise(x, sc, ss[3]), lambda x=x: x), cfg.clip)
            drawn = {"run": run, "scale": sc}
        params.update({f"{i}/{st}/{name}": value for name, value in drawn.items()})
    return (x, params) if return_params else x
