import math

import numpy as np
import pytest

from tests.helpers import golden
from tfvr.metrics import psnr, ssim


@pytest.mark.parametrize("case", [0, 1, 2])
@pytest.mark.parametrize("crop", [0, 4])
@pytest.mark.parametrize("y", [0, 1])
def test_matches_basicsr(case, crop, y):
    z = golden("psnr_ssim")
    gt, pred = z[f"{case}/gt_rgb"], z[f"{case}/pred_rgb"]
    assert abs(psnr(pred, gt, crop_border=crop, y_channel=bool(y)) - z[f"{case}/crop{crop}_y{y}/psnr"]) <= 1e-6
    assert abs(ssim(pred, gt, crop_border=crop, y_channel=bool(y)) - z[f"{case}/crop{crop}_y{y}/ssim"]) <= 1e-6


def test_identity_and_errors():
    img = np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    assert math.isinf(psnr(img, img)) and ssim(img, img) == pytest.approx(1.0)
    noisy = np.clip(img.astype(int) + 10, 0, 255).astype(np.uint8)
    assert 20 < psnr(noisy, img) < 40
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(img, img[:10])
    with pytest.raises(ValueError, match="11x11"):
        ssim(img, img, crop_border=5)
