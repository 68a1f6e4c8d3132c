"""tfvr.export.pth: reading torch.save files without torch, against files torch wrote (tests/fixtures/pth,
made by tests/fixtures/make_pth_fixtures.py in the peer venv)."""

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tfvr.errors import UserError
from tfvr.export import pth
from tfvr.export.torch_state import load_state_dict

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "pth"
EXPECTED = dict(np.load(FIX / "expected.npz"))


def _expected(name):
    return {k.split("/", 1)[1]: v for k, v in EXPECTED.items() if k.startswith(name + "/")}


@pytest.mark.parametrize("name", ["zip_tensors.pth", "legacy_tensors.pth", "module_state.pth"])
def test_tensors_equal_what_torch_saved(name):
    obj = pth.read_pth(FIX / name)
    want = _expected(name)
    assert want
    for key, value in want.items():
        got = obj[key]
        assert isinstance(got, np.ndarray) and got.dtype == value.dtype and got.shape == value.shape, key
        np.testing.assert_array_equal(got, value, err_msg=key)
        assert got.flags.c_contiguous and got.flags.writeable
    if name != "module_state.pth":
        assert obj["nested"] == [1, 2.5, "s", None, (3, 4)] and obj["flag"] is True
        assert obj["bf16"].dtype == np.float32 and obj["bn.num_batches_tracked"].shape == ()
        assert obj["transposed"].shape == (6, 4) and obj["strided"].shape == (3, 3, 2)
    assert "torch" not in sys.modules


def test_module_state_dict_keeps_order():
    sd = load_state_dict(FIX / "module_state.pth")
    assert list(sd) == list(_expected("module_state.pth"))
    assert "1.running_mean" in sd and sd["1.num_batches_tracked"].dtype == np.int64


@pytest.mark.parametrize("name", ["wrapped_params_ema.pth", "wrapped_params.pth", "wrapped_netG.pth",
                                  "wrapped_state_dict.pth", "legacy_wrapped.pth"])
def test_wrapped_checkpoints_unwrap(name):
    sd = load_state_dict(FIX / name)
    want = _expected(name)
    assert set(sd) == set(want) == {"conv.weight", "conv.bias", "bf16", "bn.num_batches_tracked"}
    for k, v in want.items():
        np.testing.assert_array_equal(sd[k], v)


def test_explicit_key_picks_params_over_params_ema():
    sd = load_state_dict(FIX / "wrapped_params_ema.pth", key="params")
    assert all(not v.any() for v in sd.values())
    with pytest.raises(UserError, match="no entry 'nope'"):
        load_state_dict(FIX / "wrapped_params_ema.pth", key="nope")


@pytest.mark.parametrize("name", ["evil_zip.pth", "evil_legacy.pth", "evil.pkl"])
def test_malicious_pickles_are_refused_and_nothing_runs(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=rf"{name}: refusing to load global (posix|os)\.system"):
        pth.read_pth(FIX / name)
    if name.endswith(".pth"):
        with pytest.raises(UserError, match="refusing"):
            load_state_dict(FIX / name)
    assert not (tmp_path / "tfvr_pwned_marker").exists()
    assert list(tmp_path.iterdir()) == []


def _zip_with(tmp_path, pickle_bytes, records):
    p = tmp_path / "crafted.pth"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("crafted/data.pkl", pickle_bytes)
        for k, v in records.items():
            zf.writestr(f"crafted/data/{k}", v)
    return p


def test_tensor_reading_past_its_storage_is_refused(tmp_path):
    # A hand-written pickle: _rebuild_tensor_v2(storage of 4 floats, offset 2, size (3,), stride (1,)).
    raw = _handmade_pickle(offset=2, size=3, numel=4)
    p = _zip_with(tmp_path, raw, {"0": np.zeros(4, "<f4").tobytes()})
    with pytest.raises(UserError, match="crafted.pth.*reads past the end"):
        pth.read_pth(p)
    ok = _zip_with(tmp_path, _handmade_pickle(offset=1, size=3, numel=4), {"0": np.arange(4, dtype="<f4").tobytes()})
    np.testing.assert_array_equal(pth.read_pth(ok), [1, 2, 3])


def _handmade_pickle(offset, size, numel):
    """Protocol-2 opcodes for ``_rebuild_tensor_v2(persistent(storage id), offset, (size,), (1,), False, OD())``."""
    def uni(s):
        b = s.encode()
        return b"X" + len(b).to_bytes(4, "little") + b

    return (b"\x80\x02" + b"ctorch._utils\n_rebuild_tensor_v2\n" + b"(" +
            b"(" + uni("storage") + b"ctorch\nFloatStorage\n" + uni("0") + uni("cpu") + b"K" + bytes([numel]) +
            b"tQ" + b"K" + bytes([offset]) + b"K" + bytes([size]) + b"\x85" + b"K\x01\x85" + b"\x89" +
            b"ccollections\nOrderedDict\n)R" + b"tR.")


def test_truncated_and_foreign_files_give_one_line_errors(tmp_path):
    data = (FIX / "legacy_tensors.pth").read_bytes()
    cut = tmp_path / "cut_legacy.pth"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(UserError, match="cut_legacy.pth: truncated legacy checkpoint"):
        pth.read_pth(cut)
    zdata = (FIX / "zip_tensors.pth").read_bytes()
    zcut = tmp_path / "cut_zip.pth"
    zcut.write_bytes(zdata[: len(zdata) // 2])
    with pytest.raises(UserError, match="cut_zip.pth"):
        load_state_dict(zcut)
    text = tmp_path / "notes.pth"
    text.write_bytes(b"hello, not a checkpoint")
    with pytest.raises(UserError, match="notes.pth: not a PyTorch checkpoint"):
        load_state_dict(text)
    plain = tmp_path / "plain.pth"
    import pickle

    plain.write_bytes(pickle.dumps([1, 2], protocol=2))
    with pytest.raises(UserError, match="plain.pth: a pickle file but not a torch.save checkpoint"):
        load_state_dict(plain)
