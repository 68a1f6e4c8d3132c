"""tfvr.inference.io: sources, the bounded decode thread, and the one writer (threaded, atomic, checked)."""

import errno
import os

import cv2
import numpy as np
import pytest

from tfvr.errors import UserError
from tfvr.inference import io
from tfvr.safety import OutputError


def test_prefetch_is_bounded_and_passes_errors():
    produced = []

    def gen():
        for i in range(100):
            produced.append(i)
            yield i

    it = io.prefetch(gen(), depth=3)
    assert next(it) == 0
    import time

    time.sleep(0.2)
    assert len(produced) <= 5  # at most depth items (+ the one in the producer's hand) ahead
    assert list(it) == list(range(1, 100))

    def bad():
        yield 1
        raise UserError("clip.mp4: truncated")

    with pytest.raises(UserError, match="truncated"):
        list(io.prefetch(bad()))


def test_frame_folder_source_and_random_access(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 6, 8, 3), dtype=np.uint8)
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"f{i + 8}.png"), f[..., ::-1])  # natural order: f8, f9, f10
    src = io.open_source(tmp_path)
    assert (src.num_frames, src.info.width, src.info.height) == (3, 8, 6)
    np.testing.assert_array_equal(np.stack(list(src.frames())), frames)
    np.testing.assert_array_equal(src.read(2), frames[2])


def test_video_source_random_access_matches_decoding(tmp_path):
    from tfvr.data.video_io import read_video, write_video

    rng = np.random.default_rng(1)
    path = write_video(tmp_path / "v.mp4", rng.integers(0, 256, (12, 16, 16, 3), dtype=np.uint8), fps=5)
    decoded = read_video(path).frames
    src = io.open_source(path)
    for i in (7, 2, 11, 0, 3):
        np.testing.assert_array_equal(src.read(i), decoded[i])
    src.close()


def test_threaded_sink_writes_pngs_and_reports_errors(tmp_path, monkeypatch):
    frames = [np.full((4, 5, 3), i, np.uint8) for i in range(5)]
    with io.FrameSink(tmp_path / "out", 10, threaded=True, queue_depth=2) as sink:
        for f in frames:
            sink.write(f)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".tfvr-output"] + [f"{i:05d}.png" for i in
                                                                                         range(5)]
    # a write that fails in the encode thread (here: disk full) surfaces in the caller, nothing is left behind
    real_open = open

    def full(path, mode="r", *a, **k):
        if str(path).endswith("00002.png"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr("builtins.open", full)
    with pytest.raises(OutputError, match="no space left"):
        with io.FrameSink(tmp_path / "out2", 10, threaded=True) as sink:
            for f in frames:
                sink.write(f)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["out"]
    with pytest.raises(UserError, match="no frames"):
        with io.FrameSink(tmp_path / "empty.mp4", 10):
            pass
    assert sorted(os.listdir(tmp_path)) == ["out"]
