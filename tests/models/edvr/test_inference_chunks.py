"""EDVR inference in pieces: PCD on groups of frames (`align_chunk_pixels`) and the x4 tail in row strips
(`tail_strip_pixels`) give the output of the whole-frame pass; training keeps the one-pass graph.

bench/hd_memory.py measures what the pieces save (EDVR-M 180x320 -> 720x1280 peak RSS)."""

import numpy as np
import pytest
import tensorflow as tf

from tfvr.models.edvr import EDVR
from tfvr.models.memvsr.vsr import MemEDVR

TINY = dict(num_feat=8, num_frame=5, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1,
            dcn_impl="reference")


def _randomised(model, x, seed=1):
    """Random weights, offset convs included (zero-initialised ones would hide a misaligned frame)."""
    model(x)
    rng = np.random.default_rng(seed)
    for v in model.trainable_variables:
        v.assign(rng.normal(0, 0.15, v.shape).astype(np.float32))
    return model


def _run(model, x, tail, align, graph=False):
    model.tail_strip_pixels, model.align_chunk_pixels = tail, align
    fn = tf.function(lambda v: model(v)) if graph else model
    return fn(x).numpy()


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "graph"])
def test_strips_and_frame_groups_equal_the_whole_frame(graph):
    # 2 clips, 23x18 LR (padded to 24x20): strips of 3 rows (16·20·3 output pixels), of 1 row, of 5 rows (a short
    # last strip); frame groups of 2 of the 5 frames (24·20·2 pixels: 2, 2, 1), of 1, of 3.
    x = np.random.default_rng(0).uniform(size=(2, 5, 23, 18, 3)).astype(np.float32)
    model = _randomised(EDVR(**TINY), x)
    whole = _run(model, x, None, None, graph)
    for tail, align in [(16 * 20 * 3, None), (1, None), (None, 24 * 20 * 2), (None, 1), (16 * 20 * 5, 24 * 20 * 3)]:
        np.testing.assert_allclose(_run(model, x, tail, align, graph), whole, atol=2e-6,
                                   err_msg=f"tail_strip_pixels={tail}, align_chunk_pixels={align}")


def test_the_halo_is_what_makes_strips_exact():
    # One row less of halo than the four 3x3 convs reach: the rows next to every strip edge go wrong. This keeps
    # the test above honest (its strips do cross the convs' reach).
    x = np.random.default_rng(0).uniform(size=(1, 5, 16, 12, 3)).astype(np.float32)
    model = _randomised(EDVR(**TINY), x)
    whole = _run(model, x, None, None)
    model.TAIL_HALO = EDVR.TAIL_HALO - 1
    short = _run(model, x, 16 * 12 * 4, None)
    bad_rows = np.flatnonzero(np.abs(short - whole).max(axis=(0, 2, 3)) > 1e-4)
    assert bad_rows.size and set(bad_rows) <= {r for edge in (16, 32, 48) for r in range(edge - 4, edge + 4)}


def test_hr_in_deblurring_model_in_strips():
    # hr_in: the tail brings H/4 features back to the input size; its strips work the same way.
    x = np.random.default_rng(2).uniform(size=(1, 5, 32, 48, 3)).astype(np.float32)
    model = _randomised(EDVR(**dict(TINY, hr_in=True, with_predeblur=True)), x)
    whole = _run(model, x, None, None)
    np.testing.assert_allclose(_run(model, x, 16 * 12 * 2, 8 * 12), whole, atol=2e-6)


def test_memvsr_inherits_the_pieces():
    x = np.random.default_rng(4).uniform(size=(1, 5, 16, 16, 3)).astype(np.float32)
    model = _randomised(MemEDVR(**MemEDVR.presets["memvsr_demo"]), x)
    whole = _run(model, x, None, None)
    np.testing.assert_allclose(_run(model, x, 16 * 16 * 2, 16 * 16), whole, atol=2e-6)


def _op_types(fn, *args):
    return {op.type for op in fn.get_concrete_function(*args).graph.get_operations()}


def test_training_graph_is_one_pass_and_inference_loops():
    x = tf.zeros([1, 5, 16, 16, 3])
    model = EDVR(**TINY)
    model(x)
    model.tail_strip_pixels = model.align_chunk_pixels = 1
    assert "While" in _op_types(tf.function(lambda v: model(v)), x) | _op_types(
        tf.function(lambda v: model(v, training=False)), x)
    assert not {"While", "StatelessWhile"} & _op_types(tf.function(lambda v: model(v, training=True)), x)
    model.tail_strip_pixels = model.align_chunk_pixels = None
    assert not {"While", "StatelessWhile"} & _op_types(tf.function(lambda v: model(v)), x)


def test_unknown_sizes_in_a_graph():
    model = EDVR(**TINY)
    model.tail_strip_pixels, model.align_chunk_pixels = 16 * 12 * 2, 12 * 12
    fn = tf.function(lambda v: model(v), input_signature=[tf.TensorSpec([None, 5, None, None, 3])])
    x = np.random.default_rng(5).uniform(size=(2, 5, 13, 11, 3)).astype(np.float32)
    y = fn(x)
    assert y.shape == (2, 52, 44, 3)
    model.tail_strip_pixels = model.align_chunk_pixels = None
    np.testing.assert_allclose(y.numpy(), model(x).numpy(), atol=2e-6)
