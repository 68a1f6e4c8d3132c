"""`tfvr synthesize` and the streaming vid2vid export: reload in a fresh process, the same video as the Keras
model generates, label folders and colour label videos, and errors that name the file."""

import json

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import built_vid2vid_generator
from tfvr.cli import main
from tfvr.data import synthetic
from tfvr.data.video_io import read_video
from tfvr.models.vid2vid.config import Vid2VidExperiment
from tfvr.models.vid2vid.export import Vid2VidModule
from tfvr.models.vid2vid.task import Vid2VidTask

GEN = dict(label_nc=synthetic.NUM_CLASSES, ngf=8, n_downsampling=2, n_blocks=2, use_fg_model=True,
           fg_labels=synthetic.FOREGROUND_CLASSES)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tfvr.export.saved_model import export

    gen = built_vid2vid_generator(3, **GEN)
    for v in gen.variables:  # random running statistics, as a trained model has
        if "moving_mean" in v.path:
            v.assign(tf.random.normal(v.shape, stddev=0.1))
        elif "moving_variance" in v.path:
            v.assign(tf.random.uniform(v.shape, 0.5, 1.5))
    module = Vid2VidModule(gen, model_config=GEN)
    out = export(module, str(tmp_path_factory.mktemp("models") / "vid2vid"), signatures=module.signatures(),
                 examples=module.examples())  # reloads in a fresh process that never imports tfvr
    return gen, out


@pytest.fixture(scope="module")
def clip():
    return synthetic.generate(11, 6, 40, 52, blur=False)


def write_ids(folder, labels):
    folder.mkdir()
    for i, lab in enumerate(labels):
        cv2.imwrite(str(folder / f"{i:05d}.png"), lab.astype(np.uint8))
    return folder


def test_export_metadata(model):
    _, path = model
    meta = json.loads(open(f"{path}/assets/tfvr.json").read())
    assert meta["format"] == "tfvr.export/2" and meta["kind"] == "label-to-video"
    assert meta["n_frames_G"] == 3 and meta["label_nc"] == 5


def test_synthesize_matches_the_keras_model(model, clip, tmp_path):
    gen, path = model
    labels_dir = write_ids(tmp_path / "labels", clip.labels)
    out = tmp_path / "frames"
    assert main(["synthesize", "--model", path, str(labels_dir), str(out), "--quiet"]) == 0
    got = np.stack([cv2.imread(str(p))[..., ::-1] for p in sorted(out.glob("*.png"))])
    assert got.shape == (6, 40, 52, 3)
    # the Keras model's own sequential generation (40x52 is already a multiple of 4: no padding involved)
    want = Vid2VidTask(Vid2VidExperiment()).synthesize(gen, clip.labels)
    assert np.abs(got[0].astype(int) - want[0]).max() <= 1  # first frame: labels only, the same graph
    # later frames see their uint8 previous outputs (the Keras loop keeps floats): a level here and there
    assert np.abs(got.astype(int) - want).mean() < 1.0


def test_colour_label_video_gives_the_same_classes(model, clip, tmp_path):
    from tfvr.cli.synthesize import iter_label_maps

    _, path = model
    video = synthetic.write_mp4(synthetic.colorize_labels(clip.labels), tmp_path / "labels.mp4")
    maps = np.stack(list(iter_label_maps(video, "synthetic", synthetic.NUM_CLASSES)))
    assert maps.shape == (6, 40, 52)
    assert (maps == clip.labels).mean() > 0.95  # mpeg-4 coding blurs the class edges
    out = tmp_path / "out.mp4"
    assert main(["synthesize", "--model", path, str(video), str(out), "--quiet"]) == 0
    assert len(read_video(out).frames) == 6


def test_errors_name_the_problem(model, clip, tmp_path, capsys):
    _, path = model
    labels_dir = write_ids(tmp_path / "labels", clip.labels + 3)  # ids 5..7: beyond the model's 5 classes
    assert main(["synthesize", "--model", path, str(labels_dir), str(tmp_path / "o.mp4"), "--quiet"]) == 2
    assert "class id 7" in capsys.readouterr().err
    assert main(["synthesize", "--model", str(tmp_path), str(labels_dir), str(tmp_path / "o.mp4")]) == 2
    assert "not a SavedModel" in capsys.readouterr().err
    (tmp_path / "exists.mp4").write_bytes(b"x")
    assert main(["synthesize", "--model", path, str(labels_dir), str(tmp_path / "exists.mp4")]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not list(tmp_path.glob(".o*"))  # nothing half-written
