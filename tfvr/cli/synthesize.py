"""`tfvr synthesize --model DIR LABELS out.mp4`: generate a video from a label video with a vid2vid SavedModel.

    tfvr synthesize --model runs/demo/vid2vid/export labels/ generated.mp4
    tfvr synthesize --model runs/demo/vid2vid/export --instances inst/ labels/ generated.mp4
    tfvr synthesize --model runs/demo/vid2vid/export labels_colour.mp4 generated.mp4

LABELS is either
- a folder of label maps, one image per frame in file-name order (PNG/BMP/TIFF; 8- or 16-bit single channel,
  pixel = class id: the Cityscapes `*_labelIds.png` convention), or
- a video (or a folder of RGB images) whose pixels are class *colours*: each pixel is snapped to the nearest
  colour of `--palette` ("synthetic": the colours of `tfvr.data.synthetic.colorize_labels`; or a JSON file with a
  list of [R, G, B], one per class), so lossy video coding does not change the classes.

The model is the streaming export of a vid2vid run (`assets/tfvr.json` format "tfvr.vid2vid/1"): frames are
generated one after another, each from the labels of the current and previous frames and the model's own previous
outputs (the first frame from labels only), exactly as `serving_default` documents (`tfvr.models.vid2vid.export`).
A progress bar shows the frames. Output: OUT ending in .mp4/.avi/.mkv/.mov/.m4v is a video (written under a
temporary name, renamed when complete); anything else is a folder of PNG frames.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tfvr.errors import UserError

IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("labels", type=Path, help="folder of label maps (class ids) or a colour label video/folder")
    p.add_argument("output", type=Path, help="output .mp4 (or .avi/.mkv/.mov/.m4v), or a folder for PNG frames")
    p.add_argument("--model", required=True, type=Path, help="vid2vid SavedModel folder (a vid2vid run's export/)")
    p.add_argument("--instances", type=Path, default=None,
                   help="folder of instance-id maps (needed by models trained with instance edges)")
    p.add_argument("--palette", default="synthetic",
                   help='class colours for colour label inputs: "synthetic" or a JSON file [[R,G,B], ...]')
    p.add_argument("--fps", type=float, default=None, help="output frame rate (default: the input video's, or 24)")
    p.add_argument("--max-frames", type=int, default=None, help="generate only the first N frames")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ---------------------------------------------------------------------------------------------- inputs
def load_palette(spec: str, num_classes: int) -> np.ndarray:
    """[num_classes, 3] uint8 class colours."""
    if spec == "synthetic":
        from tfvr.data.synthetic import NUM_CLASSES, colorize_labels

        palette = colorize_labels(np.arange(NUM_CLASSES))
    else:
        path = Path(spec)
        try:
            palette = np.asarray(json.loads(path.read_text()), dtype=np.int64)
        except FileNotFoundError:
            raise UserError(f"{path}: palette file not found") from None
        except (ValueError, TypeError) as e:
            raise UserError(f"{path}: not a JSON list of [R, G, B] colours ({e})") from None
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


def _image_files(folder: Path) -> list[Path]:
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))
    if not files:
        raise UserError(f"{folder}: no label images ({', '.join(IMAGE_SUFFIXES)}) in the folder")
    return files


def _read_image(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise UserError(f"{path}: not a readable image")
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2RGB)
    return img


def iter_label_maps(source: Path, palette_spec: str, num_classes: int, max_frames: int | None = None):
    """Yields int32 [H, W] class maps from a folder of id / colour images or a colour label video."""
    palette = None
    if source.is_dir():
        files = _image_files(source)[:max_frames]
        for f in files:
            img = _read_image(f)
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


def iter_instance_maps(folder: Path, max_frames: int | None = None):
    if not folder.is_dir():
        raise UserError(f"{folder}: --instances must be a folder of instance-id images")
    for f in _image_files(folder)[:max_frames]:
        img = _read_image(f)
        if img.ndim == 3:
            raise UserError(f"{f}: instance maps must be single-channel id images")
        yield img.astype(np.int32)


def count_frames(source: Path, max_frames: int | None) -> int:
    if source.is_dir():
        n = len(_image_files(source))
    else:
        from tfvr.data.video_io import probe

        n = probe(source).num_frames
    return n if max_frames is None else min(n, max_frames)


# ---------------------------------------------------------------------------------------------- the model
class StreamingModel:
    """A loaded vid2vid SavedModel: `next_frame(labels [n, H, W], prev [n-1, H, W, 3] uint8, num_prev)`."""

    def __init__(self, path: Path):
        from tfvr.models.vid2vid.export import read_metadata

        path = Path(path)
        if not path.is_dir():
            raise UserError(f"{path}: no such SavedModel folder")
        meta = read_metadata(str(path))
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(str(path))
        except Exception as e:  # noqa: BLE001 - any load failure is the user's file
            raise UserError(f"{path}: cannot load the SavedModel ({type(e).__name__}: {str(e).splitlines()[0]})")
        self._loaded = loaded
        self._fn = loaded.signatures["serving_default"]
        self.n = int(meta["n_frames_G"])
        self.num_classes = int(meta["label_nc"])
        self.use_instance = bool(meta["use_instance"])

    def next_frame(self, labels, prev, num_prev, instances=None) -> np.ndarray:
        import tensorflow as tf

        args = {"labels": tf.constant(labels[None], tf.int32), "prev_frames": tf.constant(prev[None], tf.uint8),
                "num_prev": tf.constant(num_prev, tf.int32)}
        if self.use_instance:
            args["instances"] = tf.constant(instances[None], tf.int32)
        return self._fn(**args)["frame"].numpy()[0]


def generate(model: StreamingModel, label_maps, instance_maps=None):
    """Yields uint8 [H, W, 3] frames, generated sequentially from an iterable of label maps."""
    n = model.n
    labels, insts, outputs = [], [], []
    for t, lab in enumerate(label_maps):
        if labels and lab.shape != labels[-1].shape:
            raise UserError(f"label frame {t} is {lab.shape[1]}x{lab.shape[0]}, the first ones "
                            f"{labels[-1].shape[1]}x{labels[-1].shape[0]}: all frames must have one size")
        labels = (labels + [lab])[-n:]
        window = np.stack([labels[0]] * (n - len(labels)) + labels)  # frames before 0 repeat frame 0
        inst_window = None
        if model.use_instance:
            ins = next(instance_maps, None) if instance_maps is not None else None
            if ins is None:
                raise UserError("the model uses instance edges: pass --instances with one map per label frame")
            insts = (insts + [ins])[-n:]
            inst_window = np.stack([insts[0]] * (n - len(insts)) + insts)
        h, w = lab.shape
        prev = outputs[-(n - 1):]
        prev = [np.zeros((h, w, 3), np.uint8)] * (n - 1 - len(prev)) + prev
        frame = model.next_frame(window, np.stack(prev), min(t, n - 1), inst_window)
        outputs = (outputs + [frame])[-(n - 1):]
        yield frame


def run(args) -> int:
    from tfvr.cli.restore import _write_frames

    source, output = Path(args.labels), Path(args.output)
    if not source.exists():
        raise UserError(f"{source}: no such label folder or video")
    if output.exists() and not args.overwrite:
        raise UserError(f"{output} already exists (pass --overwrite to replace it)")
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError("--max-frames must be >= 1")
    model = StreamingModel(args.model)
    if model.use_instance and args.instances is None:
        raise UserError(f"{args.model}: the model uses instance edges: pass --instances DIR")
    total = count_frames(source, args.max_frames)
    fps = args.fps
    if fps is None:
        fps = 24.0
        if not source.is_dir():
            from tfvr.data.video_io import probe

            fps = probe(source).fps or 24.0
    label_maps = iter_label_maps(source, args.palette, model.num_classes, args.max_frames)
    instance_maps = iter_instance_maps(args.instances, args.max_frames) if args.instances else None

    from tqdm import tqdm

    bar = tqdm(total=total, unit="frame", desc=f"synthesize {source.name}", disable=args.quiet, dynamic_ncols=True)
    count = 0

    def frames():
        nonlocal count
        for frame in generate(model, label_maps, instance_maps):
            count += 1
            bar.update(1)
            yield frame

    try:
        out = _write_frames(output, frames(), fps, args.overwrite)
    finally:
        bar.close()
    print(f"generated {count} frames from {source} -> {out}")
    return 0
