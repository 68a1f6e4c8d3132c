"""Golden parity with BasicSR 1.4.2's EDVR (../shared/golden/edvr_*.npz), for each deformable-conv implementation."""

import ast

import numpy as np
import pytest

from tests.helpers import STRICT, golden, golden_weights
from tfvr.models.edvr import from_basicsr

CASES = ["edvr_m", "edvr_small_notsa", "edvr_small_deblur"]


def _impl_param(impl):
    if impl == "kernel":
        from tfvr.ops.deform_conv import kernel_status

        ok, why = kernel_status()
        return pytest.param(impl, marks=pytest.mark.skipif(not ok and not STRICT, reason=f"deform-conv kernel unavailable: {why}"))
    return impl


@pytest.mark.parametrize("impl", [_impl_param("reference"), _impl_param("kernel")])
@pytest.mark.parametrize("name", CASES)
def test_matches_basicsr(name, impl):
    g = golden(name)
    kwargs = ast.literal_eval(str(g["config"]))
    model = from_basicsr(golden_weights(g), dcn_impl=impl, **kwargs)
    x = g["x"].transpose(0, 1, 3, 4, 2)  # (B, T, C, H, W) → (B, T, H, W, C)
    y = model(x).numpy().transpose(0, 3, 1, 2)
    assert y.shape == g["y"].shape
    err = np.abs(y - g["y"]).max()
    assert err <= 1e-4, f"{name} ({impl}): max abs error {err:.3g}"


def test_graph_mode_with_unknown_sizes_matches_eager():
    import tensorflow as tf

    g = golden("edvr_small_notsa")
    model = from_basicsr(golden_weights(g), dcn_impl="reference", **ast.literal_eval(str(g["config"])))
    fn = tf.function(model.call, input_signature=[tf.TensorSpec([None, 3, None, None, 3], tf.float32)])
    x = g["x"].transpose(0, 1, 3, 4, 2)
    np.testing.assert_allclose(fn(x).numpy(), model(x).numpy(), atol=1e-5)
