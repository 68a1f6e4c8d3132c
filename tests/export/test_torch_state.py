import importlib.util

import keras
import numpy as np
import pytest

from tfvr.errors import UserError
from tfvr.export import torch_state as ts


def _torch_conv2d(x, w, b):
    # PyTorch Conv2d (cross-correlation, stride 1, no padding) in NumPy, NCHW / OIHW.
    o, i, kh, kw = w.shape
    n, c, h, wd = x.shape
    out = np.zeros((n, o, h - kh + 1, wd - kw + 1))
    for p in range(kh):
        for q in range(kw):
            out += np.einsum("nchw,oc->nohw", x[:, :, p:p + h - kh + 1, q:q + wd - kw + 1], w[:, :, p, q])
    return out + b[None, :, None, None]


def _torch_conv_transpose2d(x, w, b, stride):
    # PyTorch ConvTranspose2d (padding 0) in NumPy: weight (I, O, kh, kw).
    i, o, kh, kw = w.shape
    n, c, h, wd = x.shape
    out = np.zeros((n, o, (h - 1) * stride + kh, (wd - 1) * stride + kw))
    for y in range(h):
        for xx in range(wd):
            out[:, :, y * stride:y * stride + kh, xx * stride:xx * stride + kw] += np.einsum(
                "nc,cokl->nokl", x[:, :, y, xx], w)
    return out + b[None, :, None, None]


def test_conv2d_kernel_matches_torch_semantics():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 2)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    layer = keras.layers.Conv2D(5, (3, 2), padding="valid")
    layer.build((None, 7, 6, 3))
    ts.set_layer_weights(layer, [ts.conv2d_kernel(w), b])
    got = layer(x.transpose(0, 2, 3, 1)).numpy().transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, _torch_conv2d(x, w, b), atol=1e-4)


def test_conv_transpose2d_kernel_matches_torch_semantics():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 4, 4)).astype(np.float32)  # (in, out, kh, kw)
    b = rng.standard_normal(2).astype(np.float32)
    layer = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="valid")
    layer.build((None, 4, 5, 3))
    ts.set_layer_weights(layer, [ts.conv_transpose2d_kernel(w), b])
    got = layer(x.transpose(0, 2, 3, 1)).numpy().transpose(0, 3, 1, 2)
    np.testing.assert_allclose(got, _torch_conv_transpose2d(x, w, b, 2), atol=1e-4)


def test_other_layouts():
    w3 = np.arange(2 * 3 * 4 * 5 * 6).reshape(2, 3, 4, 5, 6)
    assert ts.conv3d_kernel(w3)[1, 2, 3, 0, 1] == w3[1, 0, 1, 2, 3]
    lin = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(ts.linear_kernel(lin), lin.T)
    dw = np.arange(6 * 1 * 3 * 3).reshape(6, 1, 3, 3)  # C=3, multiplier 2
    k = ts.depthwise_conv2d_kernel(dw, 3)
    assert k.shape == (3, 3, 3, 2) and k[0, 1, 2, 1] == dw[2 * 2 + 1, 0, 0, 1]
    with pytest.raises(ValueError):
        ts.conv2d_kernel(lin)


def test_load_npz_plain_golden_and_module_prefix(tmp_path):
    a = np.ones((2, 3), np.float16)
    np.savez(tmp_path / "plain.npz", **{"conv.weight": a, "conv.bias": np.zeros(2)})
    assert set(ts.load_state_dict(tmp_path / "plain.npz")) == {"conv.weight", "conv.bias"}
    np.savez(tmp_path / "golden.npz", **{"w/conv.weight": a, "x": np.zeros(3), "config": np.array("EDVR()")})
    assert list(ts.load_state_dict(tmp_path / "golden.npz")) == ["conv.weight"]
    np.savez(tmp_path / "dp.npz", **{"module.conv.weight": a})
    assert list(ts.load_state_dict(tmp_path / "dp.npz")) == ["conv.weight"]


def test_save_npz_round_trip(tmp_path):
    sd = {"a.weight": np.arange(4.0).reshape(2, 2), "b": np.zeros(1, np.float16)}
    out = ts.save_npz(sd, tmp_path / "sub" / "sd.npz")
    back = ts.load_state_dict(out)
    np.testing.assert_array_equal(back["a.weight"], sd["a.weight"])
    assert [p.name for p in out.parent.iterdir()] == ["sd.npz"]


def test_bad_files_raise_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        ts.load_state_dict(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="bad.npz"):
        ts.load_state_dict(bad)
    other = tmp_path / "w.h5"
    other.write_bytes(b"")
    with pytest.raises(UserError, match="unknown weight file type"):
        ts.load_state_dict(other)


def test_pth_unwraps_basicsr_params_without_torch():
    # Written by torch in the peer venv (tests/fixtures/make_pth_fixtures.py); read here with no torch at all.
    from pathlib import Path

    fix = Path(__file__).resolve().parents[1] / "fixtures" / "pth" / "wrapped_params_ema.pth"
    out = ts.load_state_dict(fix)
    assert out["conv.weight"].shape == (2, 3, 3, 3) and out["conv.weight"].any()  # params_ema preferred
    out = ts.load_state_dict(fix, key="params")
    assert not out["conv.weight"].any()
    assert importlib.util.find_spec("torch") is not None or "torch" not in __import__("sys").modules


def test_state_dict_tracks_use_and_reports_problems():
    sd = ts.StateDict({"c.weight": np.zeros((4, 3, 3, 3)), "c.bias": np.zeros(4), "extra.weight": np.zeros(1),
                       "bn.num_batches_tracked": np.zeros(())}, source="f.npz")
    k, b = sd.conv2d("c")
    assert k.shape == (3, 3, 3, 4) and k.dtype == np.float32 and b.shape == (4,)
    with pytest.raises(UserError, match=r"f\.npz: missing weight 'd\.weight'"):
        sd.take("d.weight")
    with pytest.raises(UserError, match="expects"):
        sd.take("c.bias", shape=(5,))
    with pytest.raises(UserError, match="extra.weight"):
        sd.assert_all_used()
    sd.take("extra.weight")
    sd.assert_all_used()  # num_batches_tracked ignored by default


def test_set_layer_weights_checks_shapes():
    layer = keras.layers.Dense(3)
    layer.build((None, 2))
    with pytest.raises(ValueError, match="shape"):
        ts.set_layer_weights(layer, [np.zeros((3, 2)), np.zeros(3)], name="d")
    ts.set_layer_weights(layer, [np.ones((2, 3)), np.zeros(3)])
    assert layer.kernel.numpy().sum() == 6


PEER_PYTHON = "/tmp/tfvr-peers/venv/bin/python"


@pytest.mark.skipif(not __import__("os").path.exists(PEER_PYTHON), reason=f"no peer venv with torch at {PEER_PYTHON}")
def test_pth_reading_in_the_peer_venv(tmp_path):
    """Exercises the .pth branch with a real torch (the peer venv's) when tfvr's own venv has none."""
    import subprocess
    import textwrap

    from tests.helpers import REPO

    script = textwrap.dedent(f"""
        import torch
        from tfvr.export.torch_state import load_state_dict, save_npz
        sd = {{"conv.weight": torch.arange(6.).reshape(2, 3), "conv.bias": torch.ones(2, dtype=torch.bfloat16)}}
        torch.save({{"params": sd}}, "{tmp_path}/m.pth")
        torch.save({{"module." + k: v for k, v in sd.items()}}, "{tmp_path}/dp.pth")
        save_npz(load_state_dict("{tmp_path}/m.pth"), "{tmp_path}/m.npz")
        save_npz(load_state_dict("{tmp_path}/dp.pth"), "{tmp_path}/dp.npz")
    """)
    proc = subprocess.run([PEER_PYTHON, "-c", script], cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin"},
                          capture_output=True, text=True, timeout=300)
    if proc.returncode and "No module named 'torch'" in proc.stderr:
        pytest.skip("the peer venv has no torch (yet)")
    assert proc.returncode == 0, proc.stderr
    for name in ("m", "dp"):
        out = ts.load_state_dict(tmp_path / f"{name}.npz")
        np.testing.assert_array_equal(out["conv.weight"], np.arange(6.0).reshape(2, 3))
        assert out["conv.bias"].dtype == np.float32 and out["conv.bias"].sum() == 2
