"""`tfvr restore`: sliding windows with edge padding, odd frame sizes, tiling, errors that name the file."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfvr.cli import main
from tfvr.cli.restore import _owned, sliding_windows, tile_starts
from tfvr.data.video_io import probe, read_video, write_video
from tfvr.export.restoration import RestorationModule
from tfvr.models.sttn_restore import STTNRestore

SMALL = dict(unet_feat=8, unet_depth=2, unet_max_feat=16, num_feat=8, num_blocks=2)


def _save(module, path):
    tf.saved_model.save(module, str(path), signatures=module.signatures())
    return path


@pytest.fixture(scope="module")
def sttn_model(tmp_path_factory):
    model = STTNRestore(num_frames=3, **SMALL)
    model(tf.zeros([1, 3, 8, 8, 3]))
    for w in model.flow_net.out_conv.weights + model.head.conv_last.weights:
        w.assign(tf.random.normal(w.shape, stddev=0.05, seed=1))
    module = RestorationModule(model, num_frames=3, multiple=model.multiple, family="sttn_restore")
    return _save(module, tmp_path_factory.mktemp("models") / "sttn")


class CentreTimesTwo(tf.keras.layers.Layer):
    """x2 nearest up-scaling of the centre frame: a pixel-exact stand-in for an SR model."""

    def call(self, x, training=False):
        centre = x[:, tf.shape(x)[1] // 2]
        return tf.repeat(tf.repeat(centre, 2, axis=1), 2, axis=2)


@pytest.fixture(scope="module")
def x2_model(tmp_path_factory):
    module = RestorationModule(CentreTimesTwo(), num_frames=5, scale=2, multiple=4)
    return _save(module, tmp_path_factory.mktemp("models") / "x2")


@pytest.fixture(scope="module")
def odd_video(tmp_path_factory):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 157, 203, 3), dtype=np.uint8)  # 203 x 157: odd width and height
    # write_video pads odd sizes to even ones (4:2:0 video), so the file reads back as 204 x 158
    path = tmp_path_factory.mktemp("videos") / "noisy.avi"
    write_video(path, frames, fps=12.0)
    return path


def _pngs(folder):
    files = sorted(folder.glob("*.png"))
    return np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])


def test_sliding_windows_pad_the_edges():
    frames = [np.full((1, 1, 3), i, np.uint8) for i in range(5)]
    got = [w[:, 0, 0, 0].tolist() for w in sliding_windows(iter(frames), 2)]
    assert got == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 4], [1, 2, 3, 4, 4], [2, 3, 4, 4, 4]]
    assert [w[:, 0, 0, 0].tolist() for w in sliding_windows(iter(frames[:1]), 1)] == [[0, 0, 0]]
    assert [w.shape[0] for w in sliding_windows(iter(frames), 0)] == [1] * 5


@pytest.mark.parametrize("size,tile,overlap", [(203, 64, 16), (64, 64, 8), (50, 64, 8), (100, 33, 32)])
def test_tiles_cover_the_frame_once(size, tile, overlap):
    tile = min(tile, size)
    starts = tile_starts(size, tile, overlap)
    owned = _owned(starts, tile, size)
    assert owned[0][0] == 0 and owned[-1][1] == size
    for (lo, hi), (lo2, _), s in zip(owned, owned[1:] + [(size, size)], starts):
        assert hi == lo2 and s <= lo < hi <= s + tile


def test_restore_odd_sized_video_keeps_size_fps_and_frame_count(sttn_model, odd_video, tmp_path, capsys):
    out = tmp_path / "restored.mp4"
    assert main(["restore", "--model", str(sttn_model), str(odd_video), str(out), "--quiet"]) == 0
    assert "restored 6 frames" in capsys.readouterr().out
    src, dst = probe(odd_video), probe(out)
    assert (dst.width, dst.height, dst.num_frames) == (src.width, src.height, src.num_frames) == (204, 158, 6)
    assert dst.fps == pytest.approx(src.fps)


def test_tiled_equals_whole_frames_for_a_pixelwise_model(x2_model, odd_video, tmp_path):
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    assert main(["restore", "--model", str(x2_model), str(odd_video), str(whole), "--quiet"]) == 0
    assert main(["restore", "--model", str(x2_model), str(odd_video), str(tiled), "--quiet", "--tile", "48",
                 "--tile-overlap", "12", "--tile-batch", "3"]) == 0
    a, b = _pngs(whole), _pngs(tiled)
    src = read_video(odd_video).frames
    assert a.shape == (6, 158 * 2, 204 * 2, 3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[:, ::2, ::2], src)  # the centre frame of every window, edges included


def test_tiled_sttn_is_close_to_whole_frames(sttn_model, odd_video, tmp_path):
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    assert main(["restore", "--model", str(sttn_model), str(odd_video), str(whole), "--quiet", "--max-frames", "2"]) == 0
    assert main(["restore", "--model", str(sttn_model), str(odd_video), str(tiled), "--quiet", "--max-frames", "2",
                 "--tile", "96", "--tile-overlap", "48"]) == 0
    a, b = _pngs(whole).astype(int), _pngs(tiled).astype(int)
    assert a.shape == b.shape == (2, 158, 204, 3)
    assert np.mean(np.abs(a - b)) < 1.0


def test_errors_name_the_file(sttn_model, odd_video, tmp_path, capsys):
    missing = tmp_path / "missing.mp4"
    assert main(["restore", "--model", str(sttn_model), str(missing), str(tmp_path / "o.mp4"), "--quiet"]) == 2
    assert "missing.mp4" in capsys.readouterr().err
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello")
    assert main(["restore", "--model", str(sttn_model), str(not_video), str(tmp_path / "o.mp4"), "--quiet"]) == 2
    assert "notes.mp4" in capsys.readouterr().err
    assert main(["restore", "--model", str(tmp_path), str(odd_video), str(tmp_path / "o.mp4"), "--quiet"]) == 2
    assert str(tmp_path) in capsys.readouterr().err
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"x")
    assert main(["restore", "--model", str(sttn_model), str(odd_video), str(existing), "--quiet"]) == 2
    assert "exists.mp4" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_help():
    with pytest.raises(SystemExit) as e:
        main(["restore", "--help"])
    assert e.value.code == 0
