"""Issue 12, the writer cases (tfvr.inference.io.FrameSink / tfvr.data.video_io on tfvr.safety):

case 1  restore / inpaint with a PNG-folder output that holds the input, with --overwrite: refused, nothing deleted
case 3  disk full while writing a video (a real small tmpfs when root, and a fake silent writer): exit 2 in one
        line, no broken file left, an existing good file kept
case 5  inpaint with the output = its input video, or = the masks folder: refused
case 9  PNG folders and exports get 0755 / 0644 under umask 022
"""

import json
import os
import stat

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tests.reliability._fs import small_tmpfs
from tfvr.cli import main
from tfvr.data.video_io import probe, read_video, write_video
from tfvr.export.restoration import RestorationModule


class Centre(tf.keras.layers.Layer):
    def call(self, x, training=False):
        return x[:, tf.shape(x)[1] // 2]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    module = RestorationModule(Centre(), num_frames=3, family="test")
    path = tmp_path_factory.mktemp("models") / "centre"
    tf.saved_model.save(module, str(path), signatures=module.signatures())
    return path


@pytest.fixture(scope="module")
def inpaint_model(tmp_path_factory):
    """An inpainting export's metadata: these cases are refused before the model is loaded."""
    path = tmp_path_factory.mktemp("models") / "sttn_i"
    (path / "assets").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"")
    (path / "assets" / "tfvr.json").write_text(json.dumps({"format": "tfvr.export/2", "kind": "inpainting",
                                                           "model_height": 48, "model_width": 48}))
    return path


def _noise_video(path, n=4, h=64, w=96, seed=0):
    rng = np.random.default_rng(seed)
    return write_video(path, rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8), fps=10)


def _one_line(capsys, prog):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"tfvr {prog}: error:"), err
    return err


def _tree(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes()) for p in folder.rglob("*") if p.is_file())


# -------------------------------------------------------------------------------------------------- case 1
def test_case1_png_output_into_the_inputs_folder_is_refused(model, inpaint_model, tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    _noise_video(d / "v.mp4")
    (d / "notes.txt").write_text("mine")
    before = _tree(d)
    assert main(["restore", "--model", str(model), str(d / "v.mp4"), str(d), "--overwrite", "--quiet"]) == 2
    assert "contains the input" in _one_line(capsys, "restore")
    masks = tmp_path / "masks"
    masks.mkdir()
    cv2.imwrite(str(masks / "0.png"), np.zeros((8, 8), np.uint8))
    assert main(["inpaint", "--model", str(inpaint_model), str(d / "v.mp4"), "--masks", str(masks), str(d),
                 "--overwrite", "--quiet"]) == 2
    assert "contains the input" in _one_line(capsys, "inpaint")
    assert _tree(d) == before  # nothing deleted, nothing added
    # a folder tfvr did not write is never replaced, even with --overwrite; tfvr's own one is
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"x")
    assert main(["restore", "--model", str(model), str(d / "v.mp4"), str(photos), "--overwrite", "--quiet"]) == 2
    assert "did not write" in _one_line(capsys, "restore")
    assert (photos / "a.jpg").read_bytes() == b"x"
    out = tmp_path / "out"
    assert main(["restore", "--model", str(model), str(d / "v.mp4"), str(out), "--quiet"]) == 0
    assert main(["restore", "--model", str(model), str(d / "v.mp4"), str(out), "--overwrite", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".tfvr-output"] + [f"{i:05d}.png" for i in range(4)]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


# -------------------------------------------------------------------------------------------------- case 5
def test_case5_inpaint_output_equal_to_its_input_or_masks_is_refused(inpaint_model, tmp_path, capsys):
    v = _noise_video(tmp_path / "v.mp4")
    masks = tmp_path / "masks"
    masks.mkdir()
    cv2.imwrite(str(masks / "0.png"), np.zeros((8, 8), np.uint8))
    good = v.read_bytes()
    assert main(["inpaint", "--model", str(inpaint_model), str(v), "--masks", str(masks), str(v), "--overwrite",
                 "--quiet"]) == 2
    assert "would overwrite the input" in _one_line(capsys, "inpaint")
    assert main(["inpaint", "--model", str(inpaint_model), str(v), "--masks", str(masks), str(masks),
                 "--overwrite", "--quiet"]) == 2
    assert "masks" in _one_line(capsys, "inpaint")
    assert main(["inpaint", "--model", str(inpaint_model), str(v), "--masks", str(masks), str(masks / "out"),
                 "--quiet"]) == 2
    assert "inside the input folder" in _one_line(capsys, "inpaint")
    mask_video = _noise_video(tmp_path / "m.mp4", seed=1)
    assert main(["inpaint", "--model", str(inpaint_model), str(v), "--masks", str(mask_video), str(mask_video),
                 "--overwrite", "--quiet"]) == 2
    _one_line(capsys, "inpaint")
    assert v.read_bytes() == good and sorted(p.name for p in masks.iterdir()) == ["0.png"]


# -------------------------------------------------------------------------------------------------- case 3
# the real tmpfs of the fault-injection suite: tests/reliability/_fs.py
def test_case3_disk_full_while_writing_a_video(model, tmp_path, capsys):
    src = _noise_video(tmp_path / "in.mp4", n=12, h=128, w=160)  # noise: mp4v cannot compress it
    with small_tmpfs(tmp_path / "small", "96k") as small:
        good = _noise_video(small / "out.mp4", n=2, h=32, w=32, seed=5)
        good_bytes = good.read_bytes()
        assert main(["restore", "--model", str(model), str(src), str(good), "--overwrite", "--quiet"]) == 2
        err = _one_line(capsys, "restore")
        assert "out.mp4" in err and ("no space" in err or "does not read back" in err), err
        assert good.read_bytes() == good_bytes  # the good file is kept
        assert sorted(p.name for p in small.iterdir()) == ["out.mp4"]  # nothing half-written left
        # PNG frames on the full disk: a checked write, the same outcome
        assert main(["restore", "--model", str(model), str(src), str(small / "frames"), "--quiet"]) == 2
        assert "no space left" in _one_line(capsys, "restore")
        assert sorted(p.name for p in small.iterdir()) == ["out.mp4"]


def test_case3_a_silent_video_writer_is_caught(model, tmp_path, capsys, monkeypatch):
    """OpenCV's writer reports nothing when the disk is full: a writer that drops every frame silently."""
    src = _noise_video(tmp_path / "in.mp4")
    good = _noise_video(tmp_path / "out.mp4", n=2, seed=3)
    good_bytes = good.read_bytes()
    real = cv2.VideoWriter

    class Silent:
        def __init__(self, path, *a):
            self._w = real(path, *a)
            self._n = 0

        def isOpened(self):
            return self._w.isOpened()

        def write(self, frame):
            self._n += 1
            if self._n <= 1:  # the first frame reaches the file, the others are lost
                self._w.write(frame)

        def release(self):
            self._w.release()

    monkeypatch.setattr(cv2, "VideoWriter", Silent)
    assert main(["restore", "--model", str(model), str(src), str(good), "--overwrite", "--quiet"]) == 2
    assert "does not read back (1 of 4 frames" in _one_line(capsys, "restore")
    assert good.read_bytes() == good_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]
    monkeypatch.setattr(cv2, "VideoWriter", real)
    assert main(["restore", "--model", str(model), str(src), str(good), "--overwrite", "--quiet"]) == 0
    assert probe(good).num_frames == 4 and len(read_video(good).frames) == 4


# -------------------------------------------------------------------------------------------------- case 9
def _modes(root):
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_case9_png_folders_and_exports_follow_the_umask(model, tmp_path):
    from tfvr.models.edvr import from_basicsr, to_basicsr

    old = os.umask(0o022)
    try:
        src = _noise_video(tmp_path / "in.mp4", n=3, h=16, w=16)
        assert main(["restore", "--model", str(model), str(src), str(tmp_path / "png"), "--quiet"]) == 0
        assert main(["restore", "--model", str(model), str(src), str(tmp_path / "v.mp4"), "--quiet"]) == 0
        edvr = from_basicsr(None, num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1,
                            num_reconstruct_block=1, dcn_impl="reference")
        np.savez(tmp_path / "tiny.npz", **to_basicsr(edvr))
        exp = tmp_path / "saved_models" / "tiny" / "1"
        assert main(["export", "--from-pytorch", str(tmp_path / "tiny.npz"), "--arch", "edvr", "--out",
                     str(exp)]) == 0
    finally:
        os.umask(old)
    for root in (tmp_path / "png", exp):
        modes = _modes(root)
        assert modes, root
        for name, mode in modes.items():
            want = 0o755 if (root / name).is_dir() else 0o644
            assert mode == want, (root, name, oct(mode))
    assert stat.S_IMODE((tmp_path / "v.mp4").stat().st_mode) == 0o644


def test_extra_masks_are_reported_not_silently_ignored(tmp_path):
    """Issue 12, case 13: more mask images than frames is said in one warning naming the folder and the count."""
    import cv2
    import numpy as np

    from tfvr.inference.inpaint import MaskSource

    masks = tmp_path / "m"
    masks.mkdir()
    for i in range(7):
        cv2.imwrite(str(masks / f"{i:03d}.png"), np.full((12, 16), 255 * (i % 2), np.uint8))
    said = []
    src = MaskSource(masks, 5, 12, 16, dilate=0, warn=said.append)
    assert said == [f"{masks}: 7 mask images for 5 frames; the last 2 are not used"]
    assert [bool(src.user(i).any()) for i in range(5)] == [False, True, False, True, False]
    src.close()
    # a mask video: the same rule (it was silent)
    from tfvr.data.video_io import write_video

    frames = np.stack([np.full((12, 16, 3), 255 * (i % 2), np.uint8) for i in range(7)])
    video = write_video(tmp_path / "masks.mp4", frames, fps=24)
    said.clear()
    src = MaskSource(video, 5, 12, 16, dilate=0, warn=said.append)
    assert said == [f"{video}: 7 mask frames for 5 frames; the last 2 are not used"]
    assert [bool(src.user(i).any()) for i in range(5)] == [False, True, False, True, False]
    src.close()
    said.clear()
    MaskSource(video, 7, 12, 16, dilate=0, warn=said.append).close()  # one per frame: nothing said
    assert said == []
