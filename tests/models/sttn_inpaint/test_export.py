"""The STTN-I serving module: uint8 in / out at any size, known pixels kept bit-exactly, reloads in a fresh process."""

import numpy as np
import pytest
import tensorflow as tf

from tfvr.export.saved_model import export
from tfvr.models.sttn_inpaint import STTNInpaintGenerator
from tfvr.models.sttn_inpaint.export import InpaintExportModule


@pytest.fixture(scope="module")
def module():
    gen = STTNInpaintGenerator(channels=16, num_blocks=1, name="generator")
    gen.build()
    return InpaintExportModule(gen, height=48, width=96)


def _inputs(t, h, w, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(t, h, w, 3), dtype=np.uint8)
    masks = np.zeros((t, h, w, 1), np.uint8)
    masks[:, h // 3: h // 2, w // 4: w // 2] = 255
    masks[:, 5, :] = 1  # a one-pixel line: any value > 0 is hole
    return frames, masks


@pytest.mark.parametrize("size", [(48, 96), (61, 83), (130, 250)])
def test_known_pixels_are_returned_exactly_at_any_size(module, size):
    frames, masks = _inputs(3, *size)
    out = module.serving_default(tf.constant(frames), tf.constant(masks))["frames"].numpy()
    assert out.dtype == np.uint8 and out.shape == frames.shape
    keep = masks[..., 0] == 0
    np.testing.assert_array_equal(out[keep], frames[keep])
    assert (out[~keep] != frames[~keep]).any()


def test_at_the_model_size_it_is_the_generator_composite(module):
    frames, masks = _inputs(2, 48, 96)
    out = module.serving_default(tf.constant(frames), tf.constant(masks))["frames"].numpy()
    m = (masks > 0).astype(np.float32)
    x = (frames.astype(np.float32) / 255 * 2 - 1) * (1 - m)
    pred = module.generator((x[None], m[None]))[0].numpy()
    want = np.round(np.clip((pred + 1) / 2, 0, 1) * 255).astype(np.uint8)
    hole = masks[..., 0] > 0
    assert np.abs(out[hole].astype(int) - want[hole].astype(int)).max() <= 1


def test_saved_model_reloads_in_a_fresh_process(module, tmp_path):
    frames, masks = _inputs(3, 50, 100)
    out = export(module, str(tmp_path / "sttn_i"), examples={"serving_default": {"frames": frames, "masks": masks}})
    loaded = tf.saved_model.load(out)
    assert int(loaded.model_height.numpy()) == 48 and int(loaded.model_width.numpy()) == 96


def test_saved_model_holds_stock_ops_only_after_in_process_use(module, tmp_path):
    # the generator's default conv_impl="auto" uses tfvr's compiled Winograd ops for >= 64-channel convs (enc1,
    # dec1, dec2 here) in-process; the export traces again under implementation("reference"), so the SavedModel a
    # server loads holds stock TF ops only, even when the serving function ran in-process first
    from tensorflow.core.protobuf import saved_model_pb2

    from tfvr.ops import winograd

    def ops_of(graph_def):
        return {n.op for n in graph_def.node} | {n.op for fn in graph_def.library.function for n in fn.node_def}

    frames, masks = _inputs(3, 48, 96)
    module.serving_default(tf.constant(frames), tf.constant(masks))
    in_process = ops_of(module.serving_default.get_concrete_function().graph.as_graph_def())
    if winograd.cc_status()[0]:
        assert any(op.startswith("Tfvr") for op in in_process), "the in-process trace lost the compiled convs"
    out = export(module, str(tmp_path / "m"), examples={"serving_default": {"frames": frames, "masks": masks}})
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((tmp_path / "m" / "saved_model.pb").read_bytes())
    saved = set().union(*(ops_of(mg.graph_def) for mg in sm.meta_graphs))
    assert out and not [op for op in saved if op.startswith("Tfvr")]
