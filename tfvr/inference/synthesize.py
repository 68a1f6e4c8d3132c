"""Generating a video from label maps with a vid2vid (label-to-video) model, streaming frame by frame.

Label inputs: a folder of label-id images (8/16-bit single channel, pixel = class id, Cityscapes `*_labelIds.png`
convention) or a video / folder of RGB images whose pixels are class colours, snapped to the nearest colour of a
palette ("synthetic" = `tfvr.data.synthetic.colorize_labels`, or a JSON list of [R, G, B]).
Each frame is generated from the labels of frames t-n+1..t and the model's own previous outputs
(`windows.Vid2VidStream`: NVIDIA's test loop; the first frame from labels only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from tfvr.errors import UserError
from tfvr.inference import io, windows
from tfvr.safety import read_json

LABEL_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")


def load_palette(spec: str, num_classes: int) -> np.ndarray:
    """[num_classes, 3] uint8 class colours."""
    if spec == "synthetic":
        from tfvr.data.synthetic import NUM_CLASSES, colorize_labels

        palette = colorize_labels(np.arange(NUM_CLASSES))
    else:
        path = Path(spec)
        problem = "not a JSON list of [R, G, B] colours"
        value = read_json(path, problem, not_found="palette file not found")
        try:
            palette = np.asarray(value, dtype=np.int64)
        except (ValueError, TypeError) as e:
            raise UserError(f"{path}: {problem} ({e})") from None
        if palette.ndim != 2 or palette.shape[1] != 3 or palette.min() < 0 or palette.max() > 255:
            raise UserError(f"{path}: expected a JSON list of [R, G, B] colours in 0..255, got shape {palette.shape}")
        palette = palette.astype(np.uint8)
    if len(palette) < num_classes:
        raise UserError(f"palette {spec!r} has {len(palette)} colours but the model has {num_classes} classes")
    return palette[:num_classes]


def snap_to_palette(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """[H, W, 3] colours → [H, W] int32 index of the nearest palette colour."""
    d = np.sum((rgb[..., None, :].astype(np.int32) - palette[None, None].astype(np.int32)) ** 2, axis=-1)
    return np.argmin(d, axis=-1).astype(np.int32)


def _label_files(folder: Path) -> list[Path]:
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in LABEL_SUFFIXES and not f.name.startswith("."))
    if not files:
        raise UserError(f"{folder}: no label images ({', '.join(LABEL_SUFFIXES)}) in the folder")
    return files


def _read_raw(path: Path) -> np.ndarray:
    import cv2

    img = io.read_image(path, cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    return img


def iter_label_maps(source: Path, palette_spec: str, num_classes: int, max_frames: Optional[int] = None):
    """Yields int32 [H, W] class maps from a folder of id / colour images or a colour label video."""
    source = Path(source)
    palette = None
    if source.is_dir():
        for f in _label_files(source)[:max_frames]:
            img = _read_raw(f)
            if img.ndim == 3:
                palette = load_palette(palette_spec, num_classes) if palette is None else palette
                yield snap_to_palette(img, palette)
            else:
                ids = img.astype(np.int32)
                if ids.max() >= num_classes:
                    raise UserError(f"{f}: class id {int(ids.max())} but the model knows {num_classes} classes "
                                    f"(0..{num_classes - 1})")
                yield ids
        return
    from tfvr.data.video_io import iter_frames

    palette = load_palette(palette_spec, num_classes)
    for frame in iter_frames(source, max_frames):
        yield snap_to_palette(frame, palette)


def iter_instance_maps(folder: Path, max_frames: Optional[int] = None):
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: --instances must be a folder of instance-id images")
    for f in _label_files(folder)[:max_frames]:
        img = _read_raw(f)
        if img.ndim == 3:
            raise UserError(f"{f}: instance maps must be single-channel id images")
        yield img.astype(np.int32)


def count_frames(source: Path, max_frames: Optional[int]) -> int:
    source = Path(source)
    if source.is_dir():
        n = len(_label_files(source))
    else:
        from tfvr.data.video_io import probe

        n = probe(source).num_frames
    return n if max_frames is None else min(n, max_frames)


FIRST_FRAME_MODES = ("labels", "zeros")


def generate(model, label_maps, instance_maps=None, first_frames=None, first_frame: str = "labels"):
    """Yields uint8 [H, W, 3] frames, generated sequentially from an iterable of label maps.

    How the sequence starts (the model needs n-1 previous frames):
        first_frame "labels" (tfvr's rule, as in training): frame 0 from its labels alone, then the frames made
            so far (zeros where none exist yet).
        first_frame "zeros" (NVIDIA's --no_first_img): nothing is generated for frames 0..n-2; frame n-1 is the
            raw image of the labels of frames 0..n-1 with zero previous frames, then the loop runs on its outputs.
        first_frames (a list of n-1 uint8 frames, NVIDIA's --use_real_img): frames 0..n-2 are these (written as
            they are), generation starts at frame n-1 from them.
    """
    if first_frame not in FIRST_FRAME_MODES:
        raise UserError(f"--first-frame must be one of {', '.join(FIRST_FRAME_MODES)}, got {first_frame!r}")
    n = model.n
    if first_frames is not None and len(first_frames) < n - 1:
        raise UserError(f"--first-frames: the model needs {n - 1} first frames, got {len(first_frames)}")
    use_float = bool(getattr(model, "float_feedback", False))
    stream = windows.Vid2VidStream(n, np.float32 if use_float else np.uint8)

    def step(labels, prev, num_prev, inst):
        if use_float:
            return model.next_frame_float(labels, prev, num_prev, inst)
        frame = model.next_frame(labels, prev, num_prev, inst)
        return frame, frame

    first_shape = None
    instance_maps = iter(instance_maps) if instance_maps is not None else None
    for t, lab in enumerate(label_maps):
        if first_shape is not None and lab.shape != first_shape:
            raise UserError(f"label frame {t} is {lab.shape[1]}x{lab.shape[0]}, the first ones "
                            f"{first_shape[1]}x{first_shape[0]}: all frames must have one size")
        first_shape = lab.shape
        ins = None
        if model.use_instance:
            ins = next(instance_maps, None) if instance_maps is not None else None
            if ins is None:
                raise UserError("the model uses instance edges: pass --instances with one map per label frame")
        labels, prev, num_prev, inst = stream.step(lab, ins)
        if first_frames is not None and t < n - 1:
            frame = np.asarray(first_frames[t], np.uint8)
            if frame.shape[:2] != lab.shape[:2]:
                raise UserError(f"--first-frames: frame {t} is {frame.shape[1]}x{frame.shape[0]}, the labels "
                                f"{lab.shape[1]}x{lab.shape[0]}")
            fed = frame.astype(np.float32) / 127.5 - 1.0 if use_float else frame
        elif first_frames is None and first_frame == "zeros":
            if t < n - 1:
                continue  # NVIDIA writes frames n-1 ... only
            frame, fed = step(labels, prev, -1 if num_prev == 0 else num_prev, inst)
        else:
            frame, fed = step(labels, prev, num_prev, inst)
        stream.push(fed)
        yield frame


@dataclass
class SynthesizeResult:
    frames: int
    output: Path


def synthesize_video(model_path, labels, output, *, instances=None, palette: str = "synthetic",
                     fps: Optional[float] = None, max_frames: Optional[int] = None, overwrite: bool = False,
                     quiet: bool = False, first_frames=None, first_frame: str = "labels") -> SynthesizeResult:
    """`tfvr synthesize`: checks, then streams label maps through the model into `output`."""
    from tfvr.inference.client import check_model_path, open_model

    source = Path(labels)
    check_model_path(model_path, "label-to-video", "`tfvr synthesize`")
    if not source.exists():
        raise UserError(f"{source}: no such label folder or video")
    if max_frames is not None and max_frames < 1:
        raise UserError("--max-frames must be >= 1")
    if fps is None:
        fps = 24.0
        if not source.is_dir():
            from tfvr.data.video_io import probe

            fps = probe(source).fps or 24.0
    sink = io.FrameSink(output, fps, inputs=[source, instances, model_path, first_frames], overwrite=overwrite,
                        threaded=True).check()
    model = open_model(model_path, "label-to-video", "`tfvr synthesize`")
    if model.use_instance and instances is None:
        raise UserError(f"{model_path}: the model uses instance edges: pass --instances DIR")
    total = count_frames(source, max_frames)
    label_maps = io.prefetch(iter_label_maps(source, palette, model.num_classes, max_frames))
    instance_maps = iter_instance_maps(instances, max_frames) if instances else None
    bar = io.progress(total, f"synthesize {source.name}", quiet)
    try:
        with sink:
            firsts = None
            if first_frames is not None:
                firsts = list(io.FrameSource(first_frames, max_frames=model.n - 1).frames())
            for frame in generate(model, label_maps, instance_maps, firsts, first_frame):
                sink.write(frame)
                bar.update(1)
    finally:
        bar.close()
    return SynthesizeResult(sink.count, Path(output))
