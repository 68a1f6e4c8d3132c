"""Reading and writing video files as uint8 RGB frames (OpenCV / FFmpeg underneath).

Anything OpenCV can open is accepted (`.mp4`, `.avi`, `.mkv`, `.mov`, ...). OpenCV decodes to BGR; every function
here speaks RGB. A file that is missing, empty, not a video, or truncated (fewer frames decode than its container
announces) raises `tfvr.errors.VideoReadError` naming the file. `write_video` is atomic: it writes to a temporary
name in the destination folder (`tfvr.safety.atomic_file`), re-opens it and checks that every frame reads back
(OpenCV's writer fails silently on a full disk), and only then renames it, so a failure never leaves a
half-written video and never replaces a good one.

    video = read_video("clip.mp4")            # Video(frames uint8 [T, H, W, 3] RGB, fps)
    info = probe("clip.mp4")                  # VideoInfo(num_frames, fps, width, height)
    for frame in iter_frames("clip.mp4"): ... # one uint8 [H, W, 3] RGB frame at a time
    write_video("out.mp4", frames, fps=24.0)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import cv2
import numpy as np

from tfvr.errors import UserError, VideoReadError

# The fps written when a caller gives none / a video reports none (OpenCV returns 0 for some containers).
DEFAULT_FPS = 25.0
# mp4v (MPEG-4 Part 2) ships with every OpenCV wheel; H.264 encoders often do not.
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "mp4v"}


class Video(NamedTuple):
    """A decoded video: `frames` uint8 [T, H, W, 3] RGB and `fps` (frames per second, float)."""

    frames: np.ndarray
    fps: float


class VideoInfo(NamedTuple):
    """What `probe` reports: frame count (as the container announces it), fps, width, height."""

    num_frames: int
    fps: float
    width: int
    height: int


_THREADS: int = 0  # 0: OpenCV's and FFmpeg's own defaults (every core)


def set_threads(n: int) -> None:
    """Threads this process may use for decoding (FFmpeg, `CAP_PROP_N_THREADS`) and OpenCV's own parallel loops
    (`cv2.setNumThreads`); 0 restores the libraries' defaults (every core). One Beam worker per core wants 1: by
    default each decoder starts a thread per core, and N workers on N cores would then run N² threads."""
    global _THREADS
    n = int(n)
    if n < 0:
        raise UserError(f"threads must be >= 0, got {n}")
    _THREADS = n
    cv2.setNumThreads(n if n else -1)  # -1: OpenCV's default


def _capture(name: str) -> cv2.VideoCapture:
    if _THREADS:
        return cv2.VideoCapture(name, cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, _THREADS])
    return cv2.VideoCapture(name)


def _open(path: str | os.PathLike) -> tuple[cv2.VideoCapture, str]:
    name = os.fspath(path)
    p = Path(name)
    try:
        os.stat(name)
    except FileNotFoundError:
        raise VideoReadError(f"{name}: no such file") from None
    except OSError as e:  # a symlink loop, permission denied ...
        raise VideoReadError(f"{name}: cannot open it ({(e.strerror or str(e)).lower()})") from None
    if p.is_dir():
        raise VideoReadError(f"{name}: is a directory, not a video file")
    if p.stat().st_size == 0:
        raise VideoReadError(f"{name}: empty file (0 bytes)")
    cap = _capture(name)
    if not cap.isOpened():
        cap.release()
        raise VideoReadError(f"{name}: not a readable video (OpenCV/FFmpeg cannot open it; corrupt or not a video)")
    return cap, name


def _fps(cap: cv2.VideoCapture) -> float:
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if np.isfinite(fps) and 0.0 < fps < 1000.0 else DEFAULT_FPS


def _announced_frames(cap: cv2.VideoCapture) -> int:
    n = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(n) if n and np.isfinite(n) and n > 0 else 0


def _decode(cap: cv2.VideoCapture, name: str, max_frames: int | None) -> Iterator[np.ndarray]:
    """Yields RGB frames; raises VideoReadError if none decode or the stream stops short of its announced length."""
    announced = _announced_frames(cap)
    count = 0
    shape = None
    try:
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            elif frame.shape[2] == 4:
                frame = cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
            if frame.dtype != np.uint8:  # 16-bit sources: keep the 8 most significant bits
                frame = (frame >> 8).astype(np.uint8) if frame.dtype == np.uint16 else frame.astype(np.uint8)
            if shape is None:
                shape = frame.shape
            elif frame.shape != shape:
                raise VideoReadError(f"{name}: frame {count} has shape {frame.shape}, frame 0 had {shape}")
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()
    if count == 0:
        raise VideoReadError(f"{name}: no frame could be decoded (corrupt, truncated or not a video)")
    if max_frames is None and announced and count < announced:
        raise VideoReadError(f"{name}: truncated or corrupt: only {count} of the {announced} announced frames decode")


def iter_frames(path: str | os.PathLike, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yields the frames of `path` one at a time as uint8 [H, W, 3] RGB (constant memory).

    The file is opened (and a missing/empty/non-video file rejected) when this is called, not on first `next()`.
    A truncated file raises `VideoReadError` after the last good frame has been yielded.
    """
    cap, name = _open(path)
    return _decode(cap, name, max_frames)


def read_video(path: str | os.PathLike, max_frames: int | None = None) -> Video:
    """Decodes `path` (at most `max_frames` frames) into `Video(frames uint8 [T, H, W, 3] RGB, fps)`."""
    cap, name = _open(path)
    fps = _fps(cap)
    frames = list(_decode(cap, name, max_frames))
    return Video(np.stack(frames), fps)


def probe(path: str | os.PathLike) -> VideoInfo:
    """Frame count, fps and size of `path`, decoding only its first frame (to reject files that cannot decode).

    `num_frames` is what the container announces; when it announces nothing the frames are counted by
    grabbing them (no decoding to pixels).
    """
    cap, name = _open(path)
    try:
        ok, frame = cap.read()
        if not ok or frame is None:
            raise VideoReadError(f"{name}: no frame could be decoded (corrupt, truncated or not a video)")
        height, width = frame.shape[:2]
        fps = _fps(cap)
        n = _announced_frames(cap)
        if n == 0:
            n = 1
            while cap.grab():
                n += 1
        return VideoInfo(n, fps, int(width), int(height))
    finally:
        cap.release()


def _pad_even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class VideoFileWriter:
    """Writes uint8 RGB frames to one video file at `path` (not atomic by itself: `write_video` and
    `tfvr.inference.io` wrap it in `tfvr.safety.atomic_file`), and checks what it wrote.

    OpenCV's `VideoWriter.write` reports nothing (a full disk only prints an FFmpeg warning), so `close()`
    re-opens the file and counts the frames that decode: fewer than were written raises `UserError` naming
    `label` (and "no space left on the device" when the file system is full). Odd sizes are padded to even ones
    (see `write_video`).
    """

    def __init__(self, path, fps: float = DEFAULT_FPS, label=None):
        self.path = Path(os.fspath(path))
        self.label = label if label is not None else self.path
        suffix = self.path.suffix.lower()
        if suffix not in _FOURCC:
            raise UserError(f"{self.label}: unsupported video extension {self.path.suffix!r} "
                            f"(use one of {sorted(_FOURCC)})")
        if not (np.isfinite(fps) and fps > 0):
            raise UserError(f"{self.label}: fps must be positive, got {fps}")
        self.fps = float(fps)
        self.fourcc = _FOURCC[suffix]
        self.count = 0
        self.size = None
        self._writer = None

    def write(self, frame) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            raise UserError(f"{self.label}: frames must be uint8, got {frame.dtype}")
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=-1)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise UserError(f"{self.label}: frames must be [H, W, 3] RGB, got shape {frame.shape}")
        frame = _pad_even(frame)
        if self.size is None:
            self.size = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps,
                                           (int(self.size[1]), int(self.size[0])))
            if not self._writer.isOpened():
                self._writer.release()
                self._writer = None
                _raise_if_full(self.path, self.label)
                raise UserError(f"{self.label}: OpenCV could not open a {self.fourcc} video writer "
                                f"for {self.size[1]}x{self.size[0]} frames")
        elif frame.shape[:2] != self.size:
            raise UserError(f"{self.label}: frame {self.count} is {frame.shape[1]}x{frame.shape[0]}, "
                            f"frame 0 was {self.size[1]}x{self.size[0]}")
        self._writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        self.count += 1

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def close(self) -> None:
        """Finishes the file and verifies it (frame count and size read back)."""
        if self.count == 0:
            self.abort()
            raise UserError(f"{self.label}: no frames to write")
        self._writer.release()
        self._writer = None
        verify_video(self.path, self.count, self.size, label=self.label)


def _raise_if_full(path: Path, label) -> None:
    try:
        st = os.statvfs(path.parent)
    except OSError:
        return
    if st.f_bavail * st.f_frsize < 64 * 1024:
        raise UserError(f"{label}: no space left on the device (the video could not be written completely)")


def verify_video(path, num_frames: int, size=None, label=None) -> None:
    """Raises `UserError` unless `path` decodes to `num_frames` frames of `size` (H, W)."""
    label = label if label is not None else path
    path = Path(os.fspath(path))
    ok = path.exists() and path.stat().st_size > 0
    n, shape = 0, None
    if ok:
        cap = _capture(str(path))
        try:
            if cap.isOpened():
                while True:
                    good, frame = cap.read()
                    if not good or frame is None:
                        break
                    shape = frame.shape[:2]
                    n += 1
        finally:
            cap.release()
    if n != num_frames or (size is not None and shape is not None and tuple(shape) != tuple(size)):
        _raise_if_full(path, label)
        got = f"{n} of {num_frames} frames" + (f", {shape[1]}x{shape[0]}" if shape else "")
        raise UserError(f"{label}: the written video does not read back ({got}); not kept")


def write_video(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: float = DEFAULT_FPS) -> Path:
    """Writes uint8 RGB frames ([T, H, W, 3] array or an iterable of [H, W, 3]) to `path` atomically.

    The codec follows the extension (`.mp4`: mp4v). Parent folders are created. Frames must all have one size;
    gray [H, W] frames are accepted. Odd widths/heights are padded by one replicated row/column to even ones
    (4:2:0 video cannot hold odd sizes and OpenCV's encoder would silently crop them instead), so a 203x157
    clip reads back as 204x158 with the original pixels at the top-left. Raises `UserError` for bad frames or an encoder that cannot open.
    Returns the written path.
    """
    from tfvr.safety import atomic_file

    out = Path(os.fspath(path))
    VideoFileWriter(out, fps)  # checks the extension and fps before anything is created
    with atomic_file(out) as tmp:
        writer = VideoFileWriter(tmp, fps, label=out)
        try:
            for frame in frames:
                writer.write(frame)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    return out
