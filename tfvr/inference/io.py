"""Streaming frame I/O for inference: frame sources, a bounded decode → model → encode pipeline, the one atomic
writer for video files and PNG folders, and the one progress bar.

* `open_source(path, max_frames)` → `FrameSource` (`.info` = VideoInfo(num_frames, fps, width, height),
  `.frames()` iterator of uint8 [H, W, 3] RGB, `.read(i)` random access): a video file (anything OpenCV reads) or a
  folder of images (sorted by natural name).
* `prefetch(iterable, depth)`: runs an iterator in a thread behind a bounded queue (decode overlaps compute);
  exceptions reach the consumer.
* `FrameSink(out, fps, inputs=..., overwrite=...)`: `check(...)` first (before any model is loaded), then
  `with sink: sink.write(frame)`. OUT ending in .mp4/.avi/.mkv/.mov/.m4v is a video, anything else a folder of
  lossless PNG frames 00000.png, ... . The rules (`tfvr.safety`): an output that is, contains or lies inside an
  input (the masks folder and the model included) or a training run is refused; `--overwrite` replaces a single
  file or a folder tfvr wrote (marker `.tfvr-output`), never another folder. Everything is written into a
  temporary sibling and renamed when complete and checked: every PNG write is a checked Python write (a full
  disk raises), a video is re-opened and its frames counted (OpenCV's writer fails silently). Final modes follow
  the umask (0644 / 0755). With `threaded=True` encoding runs in a thread behind a bounded queue.
* `progress(total, desc, quiet)`: the tqdm bar every command shows.
"""

from __future__ import annotations

import os
import queue
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Optional

import numpy as np

from tfvr.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_FOLDER_FPS = 25.0


def is_video_path(path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def image_files(folder: Path, what: str = "frame") -> list[Path]:
    files = sorted((f for f in Path(folder).iterdir()
                    if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".") and f.is_file()),
                   key=_natural_key)
    if not files:
        raise UserError(f"{folder}: no {what} images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return files


def read_image(path: Path, flags=None) -> np.ndarray:
    """An image file as uint8 RGB [H, W, 3] (or the array as stored, e.g. one channel or BGR(A), with
    flags=IMREAD_UNCHANGED); `UserError` "<path>: not a readable image"."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR if flags is None else flags)
    if img is None:
        raise UserError(f"{path}: not a readable image")
    if flags is None:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return img


class FrameSource:
    """uint8 RGB frames of a video file or an image folder (see the module docstring)."""

    def __init__(self, path, max_frames: Optional[int] = None):
        from tfvr.data.video_io import VideoInfo, probe

        self.path = Path(path)
        self.max_frames = max_frames
        if max_frames is not None and max_frames < 1:
            raise UserError(f"--max-frames must be >= 1, got {max_frames}")
        if self.path.is_dir():
            self.files = image_files(self.path)
            if max_frames is not None:
                self.files = self.files[:max_frames]
            first = read_image(self.files[0])
            self.info = VideoInfo(len(self.files), DEFAULT_FOLDER_FPS, first.shape[1], first.shape[0])
        else:
            self.files = None
            info = probe(self.path)  # VideoReadError naming the file for missing / empty / non-video input
            n = info.num_frames if max_frames is None else min(info.num_frames, max_frames)
            self.info = info._replace(num_frames=n)
        self._cap = None
        self._pos = 0

    @property
    def num_frames(self) -> int:
        return self.info.num_frames

    def frames(self) -> Iterator[np.ndarray]:
        if self.files is not None:
            return (self._check(read_image(f), f) for f in self.files)
        from tfvr.data.video_io import iter_frames

        return iter_frames(self.path, self.max_frames)

    def _check(self, img: np.ndarray, where) -> np.ndarray:
        if (img.shape[1], img.shape[0]) != (self.info.width, self.info.height):
            raise UserError(f"{where}: {img.shape[1]}x{img.shape[0]}, the first frame is "
                            f"{self.info.width}x{self.info.height}: all frames must have one size")
        return img

    def read(self, index: int) -> np.ndarray:
        """Frame `index` (random access: a file read, or a seek in the video)."""
        if self.files is not None:
            return self._check(read_image(self.files[index]), self.files[index])
        import cv2

        if self._cap is None:
            self._cap = cv2.VideoCapture(str(self.path))
            self._pos = 0
        if index != self._pos:
            if index < self._pos or index - self._pos > 64:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                self._pos = int(self._cap.get(cv2.CAP_PROP_POS_FRAMES))
                if self._pos != index:  # the container does not seek exactly: decode from the start
                    self._cap.release()
                    self._cap = cv2.VideoCapture(str(self.path))
                    self._pos = 0
            while self._pos < index:
                if not self._cap.grab():
                    break
                self._pos += 1
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise UserError(f"{self.path}: frame {index} cannot be decoded")
        self._pos = index + 1
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def open_source(path, max_frames: Optional[int] = None) -> FrameSource:
    return FrameSource(path, max_frames)


# ---------------------------------------------------------------------------------------------- threads
_END = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetch(iterable: Iterable, depth: int = 4) -> Iterator:
    """Iterates `iterable` in a background thread, at most `depth` items ahead (bounded memory)."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def work():
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(_Failure(e))

    t = threading.Thread(target=work, name="tfvr-decode", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(timeout=0.05)


# ---------------------------------------------------------------------------------------------- the writer
class FrameSink:
    """The one atomic, checked writer of a frame sequence (video file or PNG folder); see the module docstring."""

    def __init__(self, out, fps: float, *, inputs=(), overwrite: bool = False, threaded: bool = False,
                 queue_depth: int = 4):
        self.out = Path(out)
        self.fps = float(fps)
        self.inputs = [p for p in inputs if p is not None]
        self.overwrite = overwrite
        self.is_video = is_video_path(self.out)
        self.threaded = threaded
        self.queue_depth = queue_depth
        self.count = 0
        self._png_index = 0
        self._ctx = None
        self._tmp = None
        self._writer = None
        self._q = None
        self._thread = None
        self._error: Optional[BaseException] = None

    def check(self) -> "FrameSink":
        """Refuses outputs that may not be written (call before loading the model)."""
        from tfvr.safety import OutputError, check_output

        if not self.is_video and self.out.suffix.lower() in IMAGE_SUFFIXES:
            raise OutputError(f"{self.out}: an image file name; give a video name (.mp4, ...) or a folder for "
                              "PNG frames")
        if not self.is_video and self.out.exists() and not self.out.is_dir():
            raise OutputError(f"{self.out}: exists and is not a folder (PNG output goes into a folder)")
        if self.is_video and self.out.is_dir():
            raise OutputError(f"{self.out}: is a folder, not a video file")
        check_output(self.out, self.inputs, overwrite=self.overwrite)
        if self.is_video:
            from tfvr.data.video_io import VideoFileWriter

            VideoFileWriter(self.out, self.fps)  # extension and fps
        return self

    # -- context -----------------------------------------------------------------------------------------------
    def __enter__(self) -> "FrameSink":
        from tfvr.safety import atomic_dir, atomic_file

        self.check()
        if self.is_video:
            from tfvr.data.video_io import VideoFileWriter

            self._ctx = atomic_file(self.out)
            self._tmp = self._ctx.__enter__()
            self._writer = VideoFileWriter(self._tmp, self.fps, label=self.out)
        else:
            self._ctx = atomic_dir(self.out)
            self._tmp = self._ctx.__enter__()
        if self.threaded:
            self._q = queue.Queue(maxsize=max(1, self.queue_depth))
            self._thread = threading.Thread(target=self._drain, name="tfvr-encode", daemon=True)
            self._thread.start()
        return self

    def _drain(self) -> None:
        while True:
            item = self._q.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._write_now(item)
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                    self._error = e

    def write(self, frame: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        if self._q is not None:
            self._q.put(frame)
        else:
            self._write_now(frame)
        self.count += 1

    def _write_now(self, frame: np.ndarray) -> None:
        from tfvr.safety import guard_os_errors

        if self.is_video:
            self._writer.write(frame)
            return
        import cv2

        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise UserError(f"{self.out}: frames must be uint8 [H, W, 3], got {frame.dtype} {frame.shape}")
        ok, buf = cv2.imencode(".png", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        if not ok:
            raise UserError(f"{self.out}: could not encode PNG frame {self._png_index}")
        path = self._tmp / f"{self._png_index:05d}.png"
        with guard_os_errors(self.out):
            with open(path, "wb") as f:
                f.write(buf.tobytes())
        self._png_index += 1


    def __exit__(self, exc_type, exc, tb) -> bool:
        failure = None
        if self._thread is not None:
            self._q.put(_END)
            self._thread.join()
        if exc_type is None and self._error is not None:
            failure = self._error
        elif exc_type is None and self.count == 0:
            failure = UserError(f"{self.out}: no frames to write")
        if self.is_video and self._writer is not None:
            if exc_type is None and failure is None:
                try:
                    self._writer.close()  # re-opens the file and counts its frames
                except BaseException as e:  # noqa: BLE001
                    failure = e
            else:
                self._writer.abort()
        if exc_type is None and failure is None:
            self._ctx.__exit__(None, None, None)  # check, umask, fsync, rename
            return False
        err = failure or exc
        self._ctx.__exit__(type(err), err, err.__traceback__)  # removes the temporary; `out` is untouched
        if failure is not None:
            raise failure
        return False


def progress(total: Optional[int], desc: str, quiet: bool = False, unit: str = "frame"):
    """The progress bar of every inference command (tqdm on stderr; `quiet` hides it)."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, disable=True if quiet else None,
                dynamic_ncols=True, leave=False)
