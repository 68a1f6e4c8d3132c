"""Image quality metrics with the conventions papers use (BasicSR's), and per-clip evaluation tables."""

from tfvr.metrics.psnr_ssim import mse_to_psnr, psnr, rgb_to_y, ssim

__all__ = ["psnr", "ssim", "rgb_to_y", "mse_to_psnr"]
