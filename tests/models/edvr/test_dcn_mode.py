"""`model.dcn_mode="conv"`: seed 001's "DCN -> plain conv, then freeze" workaround.

The four PCD deformable convs become plain 3x3 convs (offset branch dropped); weights move from a DCN EDVR by BasicSR
name (main weight -> plain conv); with zero offsets and unit masks the two models compute the same function.
Training a conv-mode model initialised from DCN weights with the alignment frozen: tests/training/test_freeze.py
(one Trainer run serves both, to keep the suite's time).
"""

import dataclasses

import numpy as np
import pytest

from tfvr.config import check_overrides
from tfvr.errors import ConfigError
from tfvr.layers.deform_conv import ModulatedDeformConv2D
from tfvr.models.edvr import EDVR, to_basicsr
from tfvr.models.edvr.config import EDVRConfig, EDVRExperiment
from tfvr.models.edvr.convert import init_from_state_dict
from tfvr.models.edvr.task import EDVRTask

from tests.models.edvr.test_task import TINY, _experiment

PACKS = ("dcn_pack.l3", "dcn_pack.l2", "dcn_pack.l1", "cas_dcnpack")


def unit_mask_dcn_model():
    """A DCN EDVR whose every DCN predicts offset 0 and mask 1 (zero offset kernel, mask logits +50)."""
    model = EDVR(**TINY).build_for_weights()
    for layer in model.dcn_layers().values():
        gk = layer.deformable_groups * 9
        layer.offset_kernel.assign(np.zeros(layer.offset_kernel.shape, np.float32))
        layer.offset_bias.assign(np.r_[np.zeros(2 * gk), np.full(gk, 50.0)].astype(np.float32))
    return model


def test_conv_mode_equals_dcn_with_zero_offsets_and_unit_masks():
    dcn = unit_mask_dcn_model()
    conv = EDVR(**TINY, dcn_mode="conv").build_for_weights()
    assert not conv.dcn_layers() and not any(isinstance(layer, ModulatedDeformConv2D)
                                             for layer in conv.dcn_packs().values())
    assert not any("offset" in v.path for v in conv.trainable_variables)
    report = init_from_state_dict(conv, to_basicsr(dcn))
    assert report["kept"] == []  # every tensor of the conv-mode model came from the DCN model
    unused = report["unused"]  # exactly the offset branch: the DCNs' conv_offset and the offset-feature convs
    assert unused and all(".conv_offset." in k or "offset_conv" in k for k in unused)
    assert {f"pcd_align.{p}.conv_offset.weight" for p in PACKS} <= set(unused)
    for name, layer in conv.dcn_packs().items():  # the DCN's main weight is the plain conv's weight
        np.testing.assert_array_equal(layer.kernel.numpy(), dcn.dcn_layers()[name].kernel.numpy())
    x = np.random.default_rng(0).uniform(size=(1, 3, 8, 8, 3)).astype(np.float32)
    want = dcn(x).numpy()
    err = np.abs(conv(x).numpy() - want).max()
    assert err < 2e-6, err
    # Not a vacuous comparison: BasicSR's default mask sigmoid(0) = 0.5 gives a different function (the output
    # is mostly the bilinear base at this init, so the difference is small in absolute terms but >> err).
    for layer in dcn.dcn_layers().values():
        layer.offset_bias.assign(np.zeros(layer.offset_bias.shape, np.float32))
    assert np.abs(dcn(x).numpy() - want).max() > 20 * max(err, 1e-6)


def test_dcn_mode_flag_and_errors():
    check_overrides(EDVRExperiment(), ["prog", "--config.model.dcn_mode=conv"])  # a flag like any model field
    with pytest.raises(ConfigError, match="model.dcn_mode"):
        EDVRTask(dataclasses.replace(_experiment(), model=EDVRConfig(**TINY, dcn_mode="plain")))
    with pytest.raises(ValueError, match="dcn_mode"):
        EDVR(**TINY, dcn_mode="plain")
    restored = EDVR.from_config(EDVR(**TINY, dcn_mode="conv").get_config())
    assert restored.dcn_mode == "conv" and restored.pcd_align.dcn_mode == "conv"
