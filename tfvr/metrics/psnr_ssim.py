"""PSNR and SSIM as papers report them: BasicSR's `calculate_psnr` / `calculate_ssim` conventions.

Images are uint8 RGB `[H, W, 3]` (or `[H, W]`). `crop_border` pixels are cut from every side first (papers crop the
scale factor for SR); `y_channel=True` scores the MATLAB BT.601 luma (`rgb2ycbcr`'s Y, 16–235), as
`test_y_channel=True` does. SSIM is Wang et al.'s: an 11×11 Gaussian window (σ = 1.5), valid region only,
constants (0.01·255)², (0.03·255)², averaged over channels. Arithmetic follows BasicSR's order and dtypes
(float32 for the Y conversion, float64 for the statistics) so the figures agree with it to ~1e-12.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np


def _check(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"image shapes differ: {pred.shape} vs {gt.shape}")
    if pred.ndim not in (2, 3):
        raise ValueError(f"expected an HWC or HW image, got shape {pred.shape}")
    return pred, gt


def _crop(img: np.ndarray, crop_border: int) -> np.ndarray:
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if crop_border == 0:
        return img
    return img[crop_border:-crop_border, crop_border:-crop_border, ...]


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """MATLAB BT.601 luma of an RGB image on the 0–255 scale (float32 `[H, W, 1]`), as BasicSR's `to_y_channel`."""
    x = np.asarray(img).astype(np.float32) / 255.0
    # BasicSR works on BGR with coefficients (24.966, 128.553, 65.481); keep that order so rounding matches.
    y = np.dot(x[..., ::-1], [24.966, 128.553, 65.481]) + 16.0
    y = (y / 255.0).astype(np.float32)
    return y[..., None] * 255.0


def _prepare(pred, gt, crop_border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = _check(pred, gt)
    pred, gt = _crop(pred, crop_border), _crop(gt, crop_border)
    if y_channel and pred.ndim == 3 and pred.shape[2] == 3:
        pred, gt = rgb_to_y(pred), rgb_to_y(gt)
    return pred.astype(np.float64), gt.astype(np.float64)


def mse_to_psnr(mse: float, peak: float = 255.0) -> float:
    """PSNR in dB of a mean squared error on the scale `peak` (255 for uint8, 1.0 for [0, 1] floats): `inf` for 0,
    `nan` for nan (no pixels). For metrics pooled over many images (STTN-I's hole PSNR: one MSE over every hole
    pixel of the held-out set) where `psnr` scores one image."""
    mse = float(mse)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(peak * peak / mse))


def psnr(pred: np.ndarray, gt: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Peak signal-to-noise ratio in dB (peak 255) of uint8 RGB images; `inf` for identical images."""
    a, b = _prepare(pred, gt, crop_border, y_channel)
    return mse_to_psnr(np.mean((a - b) ** 2), 255.0)


@functools.lru_cache(maxsize=1)
def _window() -> np.ndarray:
    k = cv2.getGaussianKernel(11, 1.5)
    return np.outer(k, k.transpose())


def _ssim_channel(a: np.ndarray, b: np.ndarray) -> float:
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    w = _window()
    mu1 = cv2.filter2D(a, -1, w)[5:-5, 5:-5]
    mu2 = cv2.filter2D(b, -1, w)[5:-5, 5:-5]
    mu1_sq, mu2_sq, mu1_mu2 = mu1**2, mu2**2, mu1 * mu2
    sigma1_sq = cv2.filter2D(a**2, -1, w)[5:-5, 5:-5] - mu1_sq
    sigma2_sq = cv2.filter2D(b**2, -1, w)[5:-5, 5:-5] - mu2_sq
    sigma12 = cv2.filter2D(a * b, -1, w)[5:-5, 5:-5] - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return float(ssim_map.mean())


def ssim(pred: np.ndarray, gt: np.ndarray, crop_border: int = 0, y_channel: bool = False) -> float:
    """Structural similarity of uint8 RGB images (mean over channels), BasicSR's `calculate_ssim`."""
    a, b = _prepare(pred, gt, crop_border, y_channel)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if min(a.shape[:2]) < 11:
        raise ValueError(f"SSIM needs images of at least 11x11 after cropping, got {a.shape[:2]}")
    return float(np.mean([_ssim_channel(a[..., c], b[..., c]) for c in range(a.shape[2])]))
