"""`tfvr convert-weights --arch sttn_inpaint` on the golden weights (as .npz, the layout torch_state reads)."""

import numpy as np
import pytest

from tests.helpers import GOLDEN, unavailable
from tfvr.cli import main
from tfvr.cli.convert_weights import load_converted
from tfvr.models.sttn_inpaint import STTNInpaintGenerator, TPatchGANDiscriminator


def _need(name):
    path = GOLDEN / f"{name}.npz"
    if not path.exists():
        unavailable(f"{path} not found")
    return path


def test_cli_converts_the_generator_and_the_reloaded_model_has_the_same_weights(tmp_path):
    src = _need("sttn_inpaint_generator")
    out = tmp_path / "sttn.weights.h5"
    assert main(["convert-weights", "--arch", "sttn_inpaint", str(src), "-o", str(out),
                 "--kwargs", '{"mask_attention": true}']) == 0
    model = load_converted(out)
    assert isinstance(model, STTNInpaintGenerator) and model.mask_attention
    with np.load(src) as z:
        want = z["w/transformer.3.feed_forward.conv.2.weight"].astype(np.float32).transpose(2, 3, 1, 0)
    np.testing.assert_array_equal(model.blocks[3].ffn2.kernel.numpy(), want)


def test_cli_converts_the_discriminator(tmp_path):
    src = _need("sttn_inpaint_discriminator")
    out = tmp_path / "d.weights.h5"
    assert main(["convert-weights", "--arch", "sttn_inpaint", str(src), "-o", str(out)]) == 0
    model = load_converted(out)
    assert isinstance(model, TPatchGANDiscriminator) and not model.use_spectral_norm


def test_cli_rejects_a_foreign_state_dict(tmp_path, capsys):
    src = tmp_path / "x.npz"
    np.savez(src, **{"foo.weight": np.zeros((2, 2), np.float32)})
    assert main(["convert-weights", "--arch", "sttn_inpaint", str(src), "-o", str(tmp_path / "o.weights.h5")]) == 2
    err = capsys.readouterr().err
    assert "x.npz" in err and "not an STTN state dict" in err
    assert not (tmp_path / "o.weights.h5").exists()
