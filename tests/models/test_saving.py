"""Keras-native `.keras` round trips and `from_preset` for every family (issue 16, item 3), at tiny sizes."""

import inspect
import sys
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvr
from tfvr.errors import UserError
from tfvr.models.edvr.model import EDVR
from tfvr.models.memvsr.nextframe import NextFramePredictor
from tfvr.models.memvsr.vsr import MemEDVR
from tests.helpers import check_keras_round_trip
from tfvr.models.sttn_inpaint.discriminator import TPatchGANDiscriminator
from tfvr.models.sttn_inpaint.generator import STTNInpaintGenerator
from tfvr.models.sttn_restore.model import STTNRestore
from tfvr.models.vid2vid.discriminator import MultiscaleDiscriminator, VideoDiscriminator
from tfvr.models.vid2vid.generator import CompositeGenerator, Vid2VidGenerator

RNG = np.random.default_rng(0)


def _u(*shape):
    return RNG.uniform(size=shape).astype(np.float32)


MEM = dict(embed_size=8, memory_size=2, variant="pixwise", crop=3, fusion="add")
TINY_EDVR = dict(num_feat=8, num_frame=3, deformable_groups=1, num_extract_block=1, num_reconstruct_block=1)
_LABELS = (_u(1, 2, 16, 16) * 4).astype(np.int32)
_MASKS = (_u(1, 2, 48, 48, 1) > 0.5).astype(np.float32)

# name -> (builder, inputs as (args, kwargs)). The families' main classes at these sizes (STTNRestore, EDVR with DCN,
# Vid2VidGenerator with the fg model) get the same checks from `tests.helpers.run_model_test` in their own tests.
CASES = {
    "edvr_deblur": (lambda: EDVR(**TINY_EDVR, hr_in=True, with_predeblur=True, with_tsa=False,
                                 dcn_impl="reference"), ((_u(1, 3, 16, 16, 3),), {})),
    "sttn_inpaint_generator": (lambda: STTNInpaintGenerator(channels=16, num_blocks=1),
                               (((_u(1, 2, 48, 48, 3), _MASKS),), {})),
    "sttn_inpaint_discriminator_sn": (lambda: TPatchGANDiscriminator(channels=4), ((_u(1, 2, 32, 32, 3),), {})),
    "vid2vid_generator_2scales_instance": (
        lambda: Vid2VidGenerator(label_nc=3, use_instance=True, n_frames_G=2, ngf=8, n_downsampling=1, n_blocks=1,
                                 n_scales_spatial=2, n_blocks_local=1, norm="instance"),
        ((_LABELS % 3, _u(1, 1, 16, 16, 3)), {"instances": _LABELS})),
    "vid2vid_composite": (lambda: CompositeGenerator(input_nc=6, prev_output_nc=3, ngf=4, n_downsampling=1,
                                                     n_blocks=1), ((_u(1, 8, 8, 6), _u(1, 8, 8, 3)), {})),
    "vid2vid_image_discriminator": (lambda: MultiscaleDiscriminator(input_nc=7, ndf=4, n_layers=2, num_D=2),
                                    ((_u(1, 32, 32, 7),), {})),
    "vid2vid_video_discriminator": (lambda: VideoDiscriminator(n_frames_D=2, n_scales_temporal=2, ndf=4, n_layers=2,
                                                               num_D=1), ((_u(1, 32, 32, 8),), {"scale": 1})),
    "memvsr_edvr": (lambda: MemEDVR(with_pcd=True, memory=MEM, **TINY_EDVR, dcn_impl="reference"),
                    ((_u(1, 3, 16, 16, 3),), {})),
    "memvsr_nextframe": (lambda: NextFramePredictor("opticalflow", "unet", (3, 4, 8), (True, True), 1, input_size=2,
                                                    memory=MEM), ((_u(1, 2, 16, 16, 3),), {})),
}


def _flat(x):
    return [np.asarray(v) for v in tf.nest.flatten(x) if v is not None]


@pytest.mark.parametrize("name", sorted(CASES))
def test_keras_round_trip(name, tmp_path):
    build, (args, kwargs) = CASES[name]
    model = build()
    if hasattr(model, "example_inputs"):  # every variable exists, also the ones this call does not use
        for a, k in model.example_inputs():
            model(*a, **k)
    check_keras_round_trip(model, args, kwargs, tmp_path / f"{name}.keras")


@pytest.mark.parametrize("name", sorted(CASES))
def test_get_config_is_complete(name):
    """Every constructor argument is in get_config, and from_config rebuilds the same config."""
    model = CASES[name][0]()
    config = model.get_config()
    params = [p for p, v in inspect.signature(type(model).__init__).parameters.items()
              if p != "self" and v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL)]
    missing = [p for p in params if p not in config]
    if isinstance(model, MemEDVR):  # EDVR's arguments travel through **edvr_kwargs
        params += [p for p in inspect.signature(EDVR.__init__).parameters if p not in ("self", "kwargs")]
        missing = [p for p in params if p not in config]
    assert missing == [], missing
    again = type(model).from_config(config)
    assert again.get_config() == config


# family main class -> (a preset to build, expected kwargs subset, call inputs)
PRESET_CASES = {
    "sttn_restore": (STTNRestore, "sttn_r_demo", dict(num_feat=32, num_blocks=5, num_flows=4),
                     (_u(1, 5, 16, 16, 3),)),
    "edvr": (EDVR, "edvr_m", dict(num_feat=64, num_frame=5, num_reconstruct_block=10, with_tsa=True), None),
    "sttn_inpaint": (STTNInpaintGenerator, "sttn_inpaint_demo", dict(channels=32, num_blocks=2),
                     ((_u(1, 2, 48, 48, 3), _MASKS),)),
    "vid2vid": (Vid2VidGenerator, "vid2vid_demo", dict(ngf=16, n_downsampling=2, n_blocks=4),
                ((_u(1, 3, 8, 8) * 5).astype(np.int32), _u(1, 2, 8, 8, 3))),
    "memvsr": (MemEDVR, "memvsr_demo", dict(num_feat=32, deformable_groups=4, with_pcd=True), None),
    "memvsr_nextframe": (NextFramePredictor, "memvsr_nextframe_demo", dict(test_type="opticalflow", input_size=4),
                         (_u(1, 4, 16, 16, 3),)),
}


@pytest.mark.parametrize("family", sorted(PRESET_CASES))
def test_from_preset(family, tmp_path):
    cls, name, expect, inputs = PRESET_CASES[family]
    assert name in cls.list_presets()
    model = cls.from_preset(name)
    assert type(model) is cls and model.built and model.weights
    config = model.get_config()
    for k, v in expect.items():
        assert config[k] == v, (k, config[k], v)
    # every preset of the family builds its config (not the weights: EDVR-L is 20M parameters)
    for other in cls.presets:
        cls(**cls.presets[other])
    with pytest.raises(UserError, match=f"unknown {cls.__name__} preset 'nope'; known: .*{name}"):
        cls.from_preset("nope")
    if inputs is None:
        return
    # weights from a local .weights.h5 and from a .keras file reproduce the model
    w = str(tmp_path / "w.weights.h5")
    model.save_weights(w)
    ref = _flat(model(*inputs))
    for path in (w, str(tmp_path / "m.keras")):
        if path.endswith(".keras"):
            model.save(path)
        again = cls.from_preset(name, weights=path)
        for a, b in zip(ref, _flat(again(*inputs))):
            np.testing.assert_array_equal(a, b)


def test_from_preset_overrides_and_bad_weights(tmp_path):
    model = EDVR.from_preset("edvr_m", num_reconstruct_block=2, dcn_impl="reference")
    assert model.get_config()["num_reconstruct_block"] == 2 and model.get_config()["num_feat"] == 64
    other = EDVR(**TINY_EDVR).build_for_weights()
    path = str(tmp_path / "tiny.weights.h5")
    other.save_weights(path)
    with pytest.raises(UserError, match="does not fit"):
        EDVR.from_preset("edvr_m", weights=path)
    with pytest.raises(UserError, match="no such weights file"):
        EDVR.from_preset("edvr_m", weights=str(tmp_path / "missing.weights.h5"))


def test_from_preset_released_checkpoint_loads_a_local_file_never_downloads(tmp_path, monkeypatch):
    """A released-checkpoint preset (`tfvr.presets.get(name)`: family, kwargs, files) builds its kwargs and loads
    `<released file stem>.weights.h5` from $TFVR_WEIGHTS; without the file it says where to get it."""
    preset = types.SimpleNamespace(name="edvr_tiny_released", family="edvr", kwargs=dict(TINY_EDVR),
                                   files=("EDVR_tiny_official-0123abcd.pth",),
                                   where_to_get=lambda: "get it from https://example.invalid/edvr_tiny")
    fake = types.ModuleType("tfvr.presets")
    fake.get = lambda n: preset if n == preset.name else (_ for _ in ()).throw(UserError(f"unknown preset {n!r}"))
    fake.list_presets = lambda family=None: [preset] if family in (None, "edvr") else []
    monkeypatch.setitem(sys.modules, "tfvr.presets", fake)
    monkeypatch.setattr(tfvr, "presets", fake, raising=False)
    monkeypatch.setenv("TFVR_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    import socket

    def no_network(*a, **k):
        raise AssertionError("from_preset opened a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    assert "edvr_tiny_released" in EDVR.list_presets()
    with pytest.raises(UserError, match="never downloads.*example.invalid"):
        EDVR.from_preset("edvr_tiny_released")
    trained = EDVR(**TINY_EDVR, dcn_impl="reference").build_for_weights()
    for v in trained.weights:
        v.assign(tf.random.stateless_normal(v.shape, seed=[1, 2], dtype=v.dtype) * 0.05)
    trained.save_weights(str(tmp_path / "EDVR_tiny_official-0123abcd.weights.h5"))
    model = EDVR.from_preset("edvr_tiny_released", dcn_impl="reference")
    x = _u(1, 3, 16, 16, 3)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(trained(x)))
    # a preset of another family is not an EDVR preset
    with pytest.raises(UserError, match="unknown STTNRestore preset"):
        STTNRestore.from_preset("edvr_tiny_released")
