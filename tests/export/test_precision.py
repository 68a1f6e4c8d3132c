"""Reduced-precision exports (tfvr.export.precision): the serving graph computes in bfloat16 / float16, keeps
float32 where it must, reloads in a fresh process (export's own check) and stays close to the float32 output."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tfvr.errors import UserError
from tfvr.export import precision as prec
from tfvr.export.restoration import RestorationModule, read_metadata
from tfvr.export.saved_model import export
from tfvr.metrics import psnr
from tfvr.models.edvr import EDVR
from tfvr.models.sttn_inpaint import STTNInpaintGenerator
from tfvr.models.sttn_inpaint.export import InpaintExportModule, inpaint_window
from tfvr.models.sttn_restore import STTNRestore

EDVR_TINY = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1,
                 with_tsa=True)
# PSNR of the reduced-precision uint8 output against the float32 one (random small models; bench/edvr.py measures
# EDVR-M). bfloat16 keeps 8 significant bits, float16 11.
MIN_PSNR = {"bfloat16": 40.0, "float16": 50.0}


def _graph_dtypes(saved_dir, op_type):
    """The dtypes ("T" attr) of every `op_type` node in the SavedModel's graph and its functions."""
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    with open(os.path.join(saved_dir, "saved_model.pb"), "rb") as f:
        sm.ParseFromString(f.read())
    found = set()
    for mg in sm.meta_graphs:
        nodes = list(mg.graph_def.node) + [n for fn in mg.graph_def.library.function for n in fn.node_def]
        found |= {tf.dtypes.as_dtype(n.attr["T"].type).name for n in nodes if n.op == op_type}
    return found


def _restoration_case(family):
    if family == "edvr":
        model = EDVR(**EDVR_TINY).build_for_weights()
        rng = np.random.default_rng(0)
        for layer in model.dcn_layers().values():  # non-trivial offsets (BasicSR zero-initialises them)
            layer.offset_kernel.assign(rng.normal(0, 0.01, layer.offset_kernel.shape).astype(np.float32))
        # a residual of a few grey levels over the bilinear base (at init it is a fraction of one, so the uint8
        # output could come out the same in bfloat16 and float32 and hide whether bf16 changed the arithmetic)
        kernel = model.conv_last.kernel
        kernel.assign(rng.normal(0, 0.2, kernel.shape).astype(np.float32))
        return RestorationModule(model, 3, scale=4, multiple=4, family="edvr"), model
    model = STTNRestore(num_frames=3, unet_feat=8, unet_depth=2, unet_max_feat=16, num_feat=8, num_blocks=1,
                        num_flows=2, z_init="spread")
    model(tf.zeros([1, 3, 16, 16, 3]))
    rng = np.random.default_rng(1)
    for v in model.head.conv_last.weights:  # the head's last conv starts at zero: give the residual some signal
        v.assign(rng.normal(0, 0.05, v.shape).astype(np.float32))
    return RestorationModule(model, 3, multiple=model.multiple, family="sttn_restore"), model


@pytest.mark.parametrize("family,precision", [("edvr", "bfloat16"), ("sttn_restore", "bfloat16"),
                                              ("edvr", "float16")])
def test_restoration_export_in_reduced_precision(tmp_path, family, precision):
    module, model = _restoration_case(family)
    frames = np.random.default_rng(2).integers(0, 256, (1, 3, 20, 28, 3), dtype=np.uint8)
    want = module._serve(tf.constant(frames))["restored"].numpy()  # eager: the tf.function stays untraced
    out = export(module, str(tmp_path / "m"), signatures=module.signatures(), examples=module.examples(),
                 precision=precision)
    assert _graph_dtypes(out, "Conv2D") >= {precision}, "the serving graph has no reduced-precision convolutions"
    assert read_metadata(out)["precision"] == precision
    got = tf.saved_model.load(out).signatures["serving_default"](frames=tf.constant(frames))["restored"].numpy()
    assert got.dtype == np.uint8 and got.shape == want.shape
    score = psnr(got[0], want[0])
    assert score >= MIN_PSNR[precision], f"{family} {precision}: PSNR {score:.1f} dB against float32"
    assert not np.array_equal(got, want) or precision == "float16"  # bf16 really changed the arithmetic


def test_float32_layers_per_family():
    _, edvr = _restoration_case("edvr")
    prec.apply_precision(edvr, "bfloat16")
    assert edvr.conv_first.compute_dtype == "bfloat16" and edvr.conv_first.variable_dtype == "float32"
    assert all(layer.offset_dtype == "float32" for layer in edvr.dcn_layers().values())
    prec.apply_precision(edvr, "float32")
    assert edvr.conv_first.compute_dtype == "float32"
    assert all(layer.offset_dtype is None for layer in edvr.dcn_layers().values())

    _, sttn = _restoration_case("sttn_restore")
    kept = prec.apply_precision(sttn, "bfloat16")
    assert sttn.flow_net.out_conv.compute_dtype == "float32"
    assert sttn.head.compute_dtype == "float32" and sttn.head.conv_last.compute_dtype == "float32"
    assert sttn.head.conv_first.compute_dtype == "bfloat16"
    assert len(kept) == 3
    # The model still runs and returns float32 outputs.
    y = sttn(tf.random.uniform([1, 3, 16, 16, 3]))
    assert y["output"].dtype == tf.float32 and y["flow"].dtype == tf.float32


def test_inpaint_export_in_bfloat16(tmp_path):
    gen = STTNInpaintGenerator(channels=16, num_blocks=1, name="generator")
    gen.build()
    module = InpaintExportModule(gen, height=48, width=96)
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (3, 48, 96, 3), dtype=np.uint8)
    masks = np.zeros((3, 48, 96, 1), np.uint8)
    masks[:, 10:30, 20:60] = 255
    want = inpaint_window(gen, frames, masks, 48, 96).numpy()  # eager: serving_default stays untraced
    out = export(module, str(tmp_path / "i"), precision="bfloat16",
                 examples={"serving_default": {"frames": frames, "masks": masks}})
    assert "bfloat16" in _graph_dtypes(out, "BatchMatMulV2") | _graph_dtypes(out, "Conv2D")
    got = tf.saved_model.load(out).signatures["serving_default"](frames=tf.constant(frames),
                                                                   masks=tf.constant(masks))["frames"].numpy()
    keep = masks[..., 0] == 0
    np.testing.assert_array_equal(got[keep], frames[keep])  # known pixels still exact
    hole = ~keep
    err = np.sqrt(np.mean((got[hole].astype(float) - want[hole].astype(float)) ** 2))
    assert 20 * np.log10(255 / max(err, 1e-3)) >= 35.0


def test_bad_precision_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="--precision"):
        prec.check_precision("int8")
    module, _ = _restoration_case("sttn_restore")
    module.serve(tf.constant(np.zeros((1, 3, 8, 8, 3), np.uint8)))
    with pytest.raises(UserError, match="traced before"):
        export(module, str(tmp_path / "x"), signatures=module.signatures(), precision="bfloat16")
    assert not (tmp_path / "x").exists()
