"""Opening a model for inference: any tfvr SavedModel, converted weights (`X.weights.h5` + `X.config.json`) or,
for restoration, a training workdir — through the one metadata contract (`tfvr.export.metadata`).

    model = open_model(path, kind="restoration", command="tfvr restore")
    model.restore(uint8 [B, T, h, w, 3]) -> uint8 [B, h·s, w·s, 3]      (.num_frames, .scale)
    model = open_model(path, kind="inpainting")
    model.inpaint(uint8 [T, H, W, 3], uint8 masks [T, H, W, 1]) -> uint8 [T, H, W, 3]   (.size = (h, w))
    model = open_model(path, kind="label-to-video")
    model.next_frame(labels [n, H, W], prev [n-1, H, W, 3], num_prev, instances) -> uint8 [H, W, 3]
                                                                    (.n, .num_classes, .use_instance)

Every wrong `--model` is a one-line `UserError` naming it and what was expected: missing, not a SavedModel, not a
tfvr export, another kind than the command needs, truncated / unreadable variables, a bad sidecar. The kind is
checked from `assets/tfvr.json` before anything is loaded. Converted weights are built into the same serving
module an export holds (`tfvr.export.converted.serving_module`) and run in-process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from tfvr.errors import UserError

KIND_NAMES = {"restoration": "a restoration (window → centre frame) model",
              "inpainting": "an inpainting (STTN-I) model", "label-to-video": "a label-to-video (vid2vid) model"}


class ModelError(UserError):
    """A `--model` that cannot be used by this command."""


def _serving_kind(arch):
    from tfvr.registry import serving_kind

    return serving_kind(arch)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else "")[:300]


def _load_saved_model(path: Path):
    import tensorflow as tf

    try:
        return tf.saved_model.load(str(path))
    except Exception as e:  # noqa: BLE001 - any load failure is the user's file
        reason = _first_line(e)
        hint = ""
        if "variables" in reason.lower() or "checkpoint" in reason.lower() or "DataLoss" in type(e).__name__:
            hint = " (variables truncated or missing?)"
        raise ModelError(f"{path}: cannot load the SavedModel{hint}: {type(e).__name__}: {reason}") from None


def _wrong_kind(path, got: str, want: str, command: str) -> ModelError:
    return ModelError(f"{path}: {KIND_NAMES.get(got, got)}; {command} needs {KIND_NAMES.get(want, want)}")


# ---------------------------------------------------------------------------------------------- clients
class RestorationClient:
    kind = "restoration"

    def __init__(self, fn, num_frames: int, scale: int, path, meta: Optional[dict] = None, keep=None,
                 arg: str = "frames", out_key: str = "restored"):
        self._fn, self._arg, self._out_key, self._keep = fn, arg, out_key, keep
        self.num_frames, self.scale = int(num_frames), int(scale)
        self.path, self.meta = path, meta or {}
        if self.num_frames < 1 or self.num_frames % 2 != 1 or self.scale < 1:
            raise ModelError(f"{path}: bad model metadata (num_frames={self.num_frames}, scale={self.scale})")

    def restore(self, frames: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        out = self._fn(**{self._arg: tf.constant(frames, tf.uint8)})
        return out[self._out_key].numpy()


class InpaintClient:
    kind = "inpainting"

    def __init__(self, fn, size, path, meta=None, keep=None):
        self._fn, self._keep = fn, keep
        self.size = (int(size[0]), int(size[1]))
        self.path, self.meta = path, meta or {}

    def inpaint(self, frames: np.ndarray, masks: np.ndarray) -> np.ndarray:
        import tensorflow as tf

        return self._fn(frames=tf.constant(frames, tf.uint8), masks=tf.constant(masks, tf.uint8))["frames"].numpy()


class LabelToVideoClient:
    kind = "label-to-video"

    def __init__(self, fn, meta: dict, path, keep=None):
        self._fn, self._keep = fn, keep
        sigs = getattr(keep, "signatures", None)
        sigs = sigs() if callable(sigs) else (sigs or {})
        # exports since the float_feedback signature: the loop can run on unquantised previous frames
        self._float_fn = sigs.get("float_feedback") if hasattr(sigs, "get") else None
        self.n = int(meta.get("n_frames_G") or meta.get("num_frames"))
        self.num_classes = int(meta["label_nc"])
        self.use_instance = bool(meta.get("use_instance", False))
        self.path, self.meta = path, meta

    def next_frame(self, labels, prev, num_prev, instances=None) -> np.ndarray:
        import tensorflow as tf

        args = {"labels": tf.constant(labels[None], tf.int32), "prev_frames": tf.constant(prev[None], tf.uint8),
                "num_prev": tf.constant(num_prev, tf.int32)}
        if self.use_instance:
            args["instances"] = tf.constant(instances[None], tf.int32)
        return self._fn(**args)["frame"].numpy()[0]

    @property
    def float_feedback(self) -> bool:
        return self._float_fn is not None

    def next_frame_float(self, labels, prev, num_prev, instances=None):
        """prev float32 [n-1, H, W, 3] in [-1, 1] -> (uint8 frame, float32 frame in [-1, 1])."""
        import tensorflow as tf

        args = {"labels": tf.constant(labels[None], tf.int32), "prev_frames": tf.constant(prev[None], tf.float32),
                "num_prev": tf.constant(num_prev, tf.int32)}
        if self.use_instance:
            args["instances"] = tf.constant(instances[None], tf.int32)
        out = self._float_fn(**args)
        return out["frame"].numpy()[0], out["frame_float"].numpy()[0]


def _client(kind: str, fn, meta: dict, path, keep):
    if kind == "restoration":
        return RestorationClient(fn, meta["num_frames"], meta["scale"], path, meta, keep)
    if kind == "inpainting":
        return InpaintClient(fn, (meta["model_height"], meta["model_width"]), path, meta, keep)
    return LabelToVideoClient(fn, meta, path, keep)


# ---------------------------------------------------------------------------------------------- opening
def check_model_path(path, kind: str, command: str = "this command", allow_workdir: bool = False) -> None:
    """The checks of `open_model` that need no TensorFlow (existence, SavedModel / sidecar, metadata kind), so a
    command can refuse a wrong `--model` before it looks at anything else."""
    from tfvr.export import converted, metadata

    path = Path(path)
    if converted.is_weights_file(path):
        meta = converted.read_sidecar(path)
        got = _serving_kind(meta.get("arch"))
        if got is not None and got != kind:
            raise _wrong_kind(path, got, kind, command)
        return
    if allow_workdir and path.is_dir() and not (path / "saved_model.pb").exists() and (path / "config.json").exists():
        return
    if not path.exists():
        raise ModelError(f"{path}: no such model (no such SavedModel folder or X.weights.h5 file)")
    meta = metadata.read(path, required=False)
    if meta is not None and meta["kind"] != kind:
        raise _wrong_kind(path, meta["kind"], kind, command)


def open_model(path, kind: str, command: str = "this command", allow_workdir: bool = False):
    """A client of `kind` for `path` (SavedModel folder, X.weights.h5, or with `allow_workdir` a training run)."""
    from tfvr.export import converted, metadata

    path = Path(path)
    if converted.is_weights_file(path):
        return _from_weights(path, kind, command)
    if allow_workdir and path.is_dir() and not (path / "saved_model.pb").exists() and (path / "config.json").exists():
        if (path / "export" / "saved_model.pb").exists():
            return open_model(path / "export", kind, command)
        return _from_workdir(path, kind, command)
    if not path.exists():
        raise ModelError(f"{path}: no such model (no such SavedModel folder or X.weights.h5 file)")
    meta = metadata.read(path, required=False)  # NotATfvrExport for non-SavedModels / bad metadata
    if meta is not None and meta["kind"] != kind:
        raise _wrong_kind(path, meta["kind"], kind, command)
    loaded = _load_saved_model(path)
    fn = loaded.signatures.get("serving_default")
    if fn is None:
        raise ModelError(f"{path}: the SavedModel has no serving_default signature")
    if meta is None:
        # The first STTN-I exports: no assets/tfvr.json, the model size in variables.
        names = set(fn.structured_input_signature[1])
        if names == {"frames", "masks"} and hasattr(loaded, "model_height") and hasattr(loaded, "model_width"):
            meta = {"kind": "inpainting", "family": "sttn_inpaint", "model_height": int(loaded.model_height.numpy()),
                    "model_width": int(loaded.model_width.numpy()), "legacy": True}
            if kind != "inpainting":
                raise _wrong_kind(path, "inpainting", kind, command)
        else:
            raise ModelError(f"{path}: not a tfvr export (no assets/{metadata.METADATA_FILE}); "
                             f"{command} needs {KIND_NAMES[kind]} written by `tfvr export`")
    _check_signature(path, fn, kind)
    if kind == "inpainting" and "model_height" not in meta:
        meta = {**meta, "model_height": int(loaded.model_height.numpy()),
                "model_width": int(loaded.model_width.numpy())}
    return _client(kind, fn, meta, path, loaded)


def _check_signature(path, fn, kind: str) -> None:
    import tensorflow as tf

    names = fn.structured_input_signature[1]
    if kind == "restoration":
        spec = names.get("frames")
        if spec is None or len(names) != 1 or spec.dtype != tf.uint8 or spec.shape.rank != 5:
            raise ModelError(f"{path}: serving_default takes {sorted(names)}; expected uint8 frames [B, T, H, W, 3]")
    elif kind == "inpainting":
        if set(names) != {"frames", "masks"}:
            raise ModelError(f"{path}: serving_default takes {sorted(names)}, expected frames and masks")
    elif not {"labels", "prev_frames", "num_prev"} <= set(names):
        raise ModelError(f"{path}: serving_default takes {sorted(names)}, expected labels, prev_frames, num_prev")


def _from_weights(path: Path, kind: str, command: str):
    from tfvr.export import converted

    meta = converted.read_sidecar(path)
    arch = meta.get("arch")
    got = _serving_kind(arch)
    if got is not None and got != kind:
        raise _wrong_kind(path, got, kind, command)
    model = converted.load_converted(path)
    arch = converted.arch_of(meta, model)
    module, got, _ = converted.serving_module(model, arch, meta.get("config"))
    if got != kind:
        raise _wrong_kind(path, got, kind, command)
    fn = module.signatures()["serving_default"] if hasattr(module, "signatures") else module.serving_default
    return _client(kind, fn, module.metadata, path, module)


def _from_workdir(path: Path, kind: str, command: str):
    from tfvr.training.checkpoints import restore_models

    run = restore_models(path)
    module = run.task.export_module(run.models)
    meta = getattr(module, "metadata", None)
    if not isinstance(meta, dict) or meta.get("kind") != kind:
        raise _wrong_kind(path, (meta or {}).get("kind", "another kind of model"), kind, command)
    fn = module.signatures()["serving_default"] if hasattr(module, "signatures") else module.serving_default
    return _client(kind, fn, meta, path, module)
