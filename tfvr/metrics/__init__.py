"""Image quality metrics with the conventions papers use (BasicSR's), and per-clip evaluation tables."""

from tfvr.metrics.psnr_ssim import psnr, rgb_to_y, ssim

__all__ = ["psnr", "ssim", "rgb_to_y"]
