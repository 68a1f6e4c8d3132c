import numpy as np
import keras

from tfvr.layers.residual import ResidualBlockNoBN


def _ref(x, block, res_scale):
    # NumPy reference of conv3x3-ReLU-conv3x3 + identity with "same" zero padding.
    def conv(a, k, b):
        kh, kw, cin, cout = k.shape
        p = np.pad(a, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
        out = np.zeros(a.shape[:3] + (cout,), np.float64)
        for i in range(kh):
            for j in range(kw):
                out += p[:, i:i + a.shape[1], j:j + a.shape[2], :] @ k[i, j]
        return out + b

    k1, b1 = [w.numpy() for w in block.conv1.weights]
    k2, b2 = [w.numpy() for w in block.conv2.weights]
    return x + res_scale * conv(np.maximum(conv(x, k1, b1), 0), k2, b2)


def test_matches_numpy_reference_and_res_scale():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 9, 8)).astype(np.float32)
    block = ResidualBlockNoBN(num_feat=8, res_scale=0.5, init_scale=1.0)
    y = block(x).numpy()
    np.testing.assert_allclose(y, _ref(x, block, 0.5), atol=1e-4)


def test_init_is_kaiming_times_0p1_and_bias_zero():
    block = ResidualBlockNoBN(num_feat=64)
    block.build((None, 16, 16, 64))
    k = block.conv1.kernel.numpy()
    expected = np.sqrt(2.0 / (3 * 3 * 64)) * 0.1
    assert abs(k.std() / expected - 1) < 0.05
    assert not block.conv1.bias.numpy().any()
    # Near-identity at init: the residual is small.
    x = np.random.default_rng(1).standard_normal((1, 8, 8, 64)).astype(np.float32)
    assert np.abs(block(x).numpy() - x).mean() < 0.1 * np.abs(x).mean()


def test_config_round_trip_and_channel_check():
    block = ResidualBlockNoBN(num_feat=4, res_scale=0.2, init_scale=0.3, name="rb")
    clone = ResidualBlockNoBN.from_config(block.get_config())
    assert (clone.num_feat, clone.res_scale, clone.init_scale) == (4, 0.2, 0.3)
    try:
        block(np.zeros((1, 4, 4, 5), np.float32))
    except ValueError as e:
        assert "5 channels" in str(e)
    else:
        raise AssertionError("expected a channel mismatch error")


def test_serialises_inside_a_model(tmp_path):
    inp = keras.Input((None, None, 4))
    model = keras.Model(inp, ResidualBlockNoBN(num_feat=4)(inp))
    path = tmp_path / "m.keras"
    model.save(path)
    x = np.random.default_rng(2).standard_normal((1, 5, 6, 4)).astype(np.float32)
    np.testing.assert_allclose(keras.models.load_model(path)(x).numpy(), model(x).numpy(), atol=1e-6)
