"""EDVR ×4 export: a TF-Serving SavedModel (pure-TF DCN path) that reloads in a fresh process, and `tfvr restore`."""

import numpy as np
import pytest

from tfvr.cli import main
from tfvr.models.edvr.config import EDVRConfig, EDVRExperiment
from tfvr.models.edvr.task import EDVRTask

TINY = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from tfvr.export.saved_model import export

    cfg = EDVRExperiment()
    cfg.model = EDVRConfig(**TINY)
    cfg.data.num_frames = 3
    task = EDVRTask(cfg)
    models = task.build_models()
    rng = np.random.default_rng(0)
    for layer in models["edvr"].dcn_layers().values():  # non-trivial offsets
        layer.offset_kernel.assign(rng.normal(0, 0.05, layer.offset_kernel.shape).astype(np.float32))
    module = task.export_module(models)
    out = tmp_path_factory.mktemp("edvr_export") / "1"
    # export() keeps the SavedModel only if it reloads in a fresh process (which never imports tfvr and never loads
    # the DCN kernel library) and returns the in-process outputs.
    export(module, str(out), signatures=task.export_signatures(module), examples=task.export_examples(module))
    return out, models["edvr"]


def test_savedmodel_runs_any_size_and_matches_keras(exported):
    import tensorflow as tf

    path, model = exported
    loaded = tf.saved_model.load(str(path))
    frames = np.random.default_rng(1).integers(0, 256, (2, 3, 11, 14, 3), dtype=np.uint8)
    out = loaded.signatures["serving_default"](frames=tf.constant(frames))["restored"].numpy()
    assert out.shape == (2, 44, 56, 3) and out.dtype == np.uint8
    want = np.clip(np.round(model(frames.astype(np.float32) / 255.0).numpy() * 255), 0, 255)
    assert np.abs(out.astype(int) - want).max() <= 1
    assert int(loaded.scale.numpy()) == 4 and int(loaded.num_frames.numpy()) == 3


def test_tfvr_restore_upscales_a_video_x4(exported, tmp_path):
    from tfvr.data import video_io

    path, _ = exported
    frames = np.random.default_rng(2).integers(0, 256, (5, 20, 28, 3), dtype=np.uint8)
    video_io.write_video(str(tmp_path / "lr.mp4"), frames, 10.0)
    out = tmp_path / "sr.mp4"
    assert main(["restore", "--model", str(path), "--quiet", str(tmp_path / "lr.mp4"), str(out)]) == 0
    info = video_io.probe(str(out))
    assert (info.num_frames, info.height, info.width) == (5, 80, 112)
    # Tiled restoration of a frame larger than the tile gives the same frame size.
    out2 = tmp_path / "frames"
    assert main(["restore", "--model", str(path), "--quiet", "--tile", "16", "--tile-overlap", "4",
                 str(tmp_path / "lr.mp4"), str(out2)]) == 0
    assert len(list(out2.glob("*.png"))) == 5
