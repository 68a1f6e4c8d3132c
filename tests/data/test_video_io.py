import numpy as np
import pytest

from tfvr.data import video_io
from tfvr.errors import UserError, VideoReadError


def _frames(t=12, h=48, w=64, seed=0):
    # Smooth gradients + a moving square: compresses well, so decoded values stay close to the originals.
    yy, xx = np.mgrid[0:h, 0:w]
    out = np.zeros((t, h, w, 3), np.uint8)
    for i in range(t):
        out[i, ..., 0] = (xx * 255 // (w - 1))
        out[i, ..., 1] = (yy * 255 // (h - 1))
        out[i, ..., 2] = 60
        out[i, 10:26, 4 + 2 * i:20 + 2 * i] = (250, 30, 30)
    return out


def test_write_then_read_roundtrip_rgb(tmp_path):
    frames = _frames()
    path = video_io.write_video(tmp_path / "a.mp4", frames, fps=24.0)
    assert path.exists() and path.stat().st_size > 0
    video = video_io.read_video(path)
    assert video.frames.shape == frames.shape and video.frames.dtype == np.uint8
    assert video.fps == pytest.approx(24.0)
    # Lossy codec: compare means, and check channel order is RGB (red square stays red).
    assert np.abs(video.frames.astype(float) - frames).mean() < 6
    sq = video.frames[3, 12:24, 12:16]
    assert sq[..., 0].mean() > 200 and sq[..., 2].mean() < 80
    info = video_io.probe(path)
    assert info == video_io.VideoInfo(12, pytest.approx(24.0), 64, 48)
    # No temporary files left beside the output.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_odd_size_iter_and_max_frames(tmp_path):
    frames = _frames(t=5, h=31, w=45)
    path = video_io.write_video(tmp_path / "sub" / "odd.mp4", list(frames), fps=10)
    got = list(video_io.iter_frames(path))
    # Odd sizes are padded to even ones (edge replication) rather than cropped by the encoder.
    assert len(got) == 5 and got[0].shape == (32, 46, 3)
    assert np.abs(got[2][:31, :45].astype(float) - frames[2]).mean() < 6
    assert np.abs(got[2][31].astype(float) - got[2][30]).mean() < 6
    assert video_io.read_video(path, max_frames=2).frames.shape == (2, 32, 46, 3)


def test_decode_threads_change_no_frame(tmp_path):
    import cv2

    path = video_io.write_video(tmp_path / "t.mp4", _frames(t=6), fps=10)
    ref = video_io.read_video(path).frames
    old = cv2.getNumThreads()
    try:
        video_io.set_threads(1)
        assert cv2.getNumThreads() == 1
        assert np.array_equal(video_io.read_video(path).frames, ref)
        with pytest.raises(UserError, match="threads must be >= 0"):
            video_io.set_threads(-1)
    finally:
        video_io.set_threads(0)
    assert cv2.getNumThreads() == old


def test_missing_empty_text_truncated(tmp_path):
    with pytest.raises(VideoReadError, match="nope.mp4"):
        video_io.read_video(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoReadError, match="empty.mp4"):
        video_io.read_video(empty)
    with pytest.raises(VideoReadError, match="empty.mp4"):
        video_io.probe(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoReadError, match="notes.mp4"):
        video_io.read_video(text)
    with pytest.raises(VideoReadError, match="notes.mp4"):
        video_io.probe(text)
    with pytest.raises(VideoReadError, match="notes.mp4"):
        list(video_io.iter_frames(text))
    good = video_io.write_video(tmp_path / "good.mp4", _frames(t=20), fps=24)
    data = good.read_bytes()
    for keep in (0.5, 0.9):
        cut = tmp_path / f"cut{int(keep * 100)}.mp4"
        cut.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(VideoReadError, match=cut.name):
            video_io.read_video(cut)
        with pytest.raises(VideoReadError, match=cut.name):
            list(video_io.iter_frames(cut))
    # VideoReadError is a UserError, so the CLI prints it in one line.
    assert issubclass(VideoReadError, UserError)


def _faststart(data: bytes) -> bytes:
    """Moves the `moov` atom in front of `mdat` (what `ffmpeg -movflags +faststart` does), fixing chunk offsets."""
    import struct

    atoms, pos = [], 0
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        atoms.append((kind, data[pos:pos + size]))
        pos += size
    kinds = [k for k, _ in atoms]
    assert kinds.index(b"moov") > kinds.index(b"mdat"), kinds
    moov = bytearray(dict(atoms)[b"moov"])
    shift = len(moov)
    i = 0
    while True:  # every stco table in moov: add the shift to each 32-bit chunk offset
        i = moov.find(b"stco", i)
        if i < 0:
            break
        n = struct.unpack(">I", moov[i + 8:i + 12])[0]
        for j in range(n):
            at = i + 12 + 4 * j
            moov[at:at + 4] = struct.pack(">I", struct.unpack(">I", moov[at:at + 4])[0] + shift)
        i += 12 + 4 * n
    out = b""
    for kind, atom in atoms:
        if kind == b"mdat":
            out += bytes(moov)
        if kind != b"moov":
            out += atom
    return out


def test_truncated_with_header_first(tmp_path):
    # A file whose index comes first (moov before mdat, like web-optimised mp4s) still opens when cut;
    # the missing frames must be reported, not silently dropped.
    src = video_io.write_video(tmp_path / "src.mp4", _frames(t=30), fps=24)
    fast = tmp_path / "fast.mp4"
    fast.write_bytes(_faststart(src.read_bytes()))
    assert video_io.read_video(fast).frames.shape[0] == 30  # the rewrite itself is valid
    data = fast.read_bytes()
    cut = tmp_path / "fastcut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(VideoReadError, match="fastcut.mp4.*of the 30 announced"):
        video_io.read_video(cut)
    assert video_io.probe(cut).num_frames == 30  # probe only trusts the header; reading finds the damage
    assert video_io.read_video(cut, max_frames=3).frames.shape[0] == 3


def test_write_errors_leave_nothing(tmp_path):
    out = tmp_path / "bad.mp4"
    with pytest.raises(UserError, match="uint8"):
        video_io.write_video(out, np.zeros((3, 8, 8, 3), np.float32))
    with pytest.raises(UserError, match="frame 1"):
        video_io.write_video(out, [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)])
    with pytest.raises(UserError, match="no frames"):
        video_io.write_video(out, np.zeros((0, 8, 8, 3), np.uint8))

    def boom():
        yield np.zeros((16, 16, 3), np.uint8)
        raise RuntimeError("producer failed")

    with pytest.raises(RuntimeError):
        video_io.write_video(out, boom())
    assert list(tmp_path.iterdir()) == []
    # An existing file is only replaced by a complete one.
    video_io.write_video(out, _frames(t=3))
    before = out.read_bytes()
    with pytest.raises(RuntimeError):
        video_io.write_video(out, boom())
    assert out.read_bytes() == before


def test_real_camera_clip():
    from tests.helpers import SHARED, unavailable

    path = SHARED / "data" / "schoolgirls" / "video.mp4"
    if not path.exists():
        unavailable(f"{path} not found")
    info = video_io.probe(path)
    assert (info.num_frames, info.width, info.height) == (80, 432, 240)
    video = video_io.read_video(path, max_frames=4)
    assert video.frames.shape == (4, 240, 432, 3) and video.fps == pytest.approx(24.0)
