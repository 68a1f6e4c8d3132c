"""The one metadata contract of a tfvr SavedModel: `assets/tfvr.json` (one writer, one reader).

Every tfvr export (restoration, inpainting, label-to-video) carries a small JSON file that a client can read
without TensorFlow, so `tfvr restore|inpaint|synthesize|evaluate` (and any serving client) know what the model
is before loading it:

    {"format": "tfvr.export/2",
     "kind": "restoration" | "inpainting" | "label-to-video",
     "family": "edvr" | "sttn_restore" | "sttn_inpaint" | "vid2vid" | ...,
     "num_frames": T,          # frames per call: 2N+1 (restoration), 0 = any (inpainting), n_frames_G (vid2vid)
     "scale": s,               # output size / input size (1 but for ×4 SR)
     "multiple": m,            # H, W padded to a multiple of m inside the graph
     "model_config": {...},    # the model's constructor arguments
     "precision": "float32" | "mixed_float16" | ...   (optional)
     ...kind-specific fields:  inpainting: "model_height", "model_width";
                               label-to-video: "label_nc", "n_frames_G", "use_instance"}

Writer: `attach(module, kind, **fields)` builds the dict, writes it to a temporary file and tracks it on the
`tf.Module` as a `tf.saved_model.Asset`, so `tf.saved_model.save` copies it into `assets/`.
Reader: `read(saved_model_dir)` returns the normalised dict. It also reads the exports written before this
contract: format "tfvr.restoration/1" (kind restoration), "tfvr.vid2vid/1" (kind label-to-video), and returns
None for a SavedModel without `assets/tfvr.json` (the STTN-I exports of the first releases kept their model size
only as the `model_height` / `model_width` variables; `tfvr.inference.client` handles them after loading).
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Optional

from tfvr.errors import UserError
from tfvr.safety import read_json

METADATA_FILE = "tfvr.json"
FORMAT = "tfvr.export/2"
KINDS = ("restoration", "inpainting", "label-to-video")
LEGACY_FORMATS = {"tfvr.restoration/1": "restoration", "tfvr.vid2vid/1": "label-to-video"}


class NotATfvrExport(UserError):
    """A folder that is not a tfvr SavedModel (or whose metadata cannot be read)."""


def build(kind: str, *, family: str = "", num_frames: int = 0, scale: int = 1, multiple: int = 1,
          model_config: Optional[dict] = None, precision: Optional[str] = None, **extra) -> dict:
    """The metadata dict of an export (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    meta = {"format": FORMAT, "kind": kind, "family": family or "", "num_frames": int(num_frames),
            "scale": int(scale), "multiple": int(multiple), "model_config": model_config or {}}
    if precision:
        meta["precision"] = str(precision)
    meta.update(extra)
    return meta


def attach(module, kind: str, **fields) -> dict:
    """Writes the metadata to a temporary file and tracks it on `module` (`module.metadata`, `module.metadata_asset`)
    so that `tf.saved_model.save(module, ...)` writes `assets/tfvr.json`. Returns the dict."""
    import tensorflow as tf

    meta = build(kind, **fields)
    tmpdir = tempfile.mkdtemp(prefix="tfvr-meta-")
    path = os.path.join(tmpdir, METADATA_FILE)
    with open(path, "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True, default=str)
    module.metadata = meta
    module._metadata_tmpdir = tmpdir
    module.metadata_asset = tf.saved_model.Asset(path)
    return meta


def read(saved_model_dir, *, required: bool = True) -> Optional[dict]:
    """The normalised `assets/tfvr.json` of a SavedModel folder (no TensorFlow needed).

    Raises `NotATfvrExport` (one line naming the folder) for a missing folder, a folder without saved_model.pb,
    unreadable / non-JSON metadata or an unknown format. Without `assets/tfvr.json`: None if not `required`,
    else `NotATfvrExport`.
    """
    d = os.fspath(saved_model_dir)
    if not os.path.exists(d):
        raise NotATfvrExport(f"{d}: no such model (no such SavedModel folder or X.weights.h5 file)")
    if not os.path.isdir(d):
        raise NotATfvrExport(f"{d}: not a SavedModel folder")
    if not os.path.exists(os.path.join(d, "saved_model.pb")):
        raise NotATfvrExport(f"{d}: not a SavedModel (no saved_model.pb); expected a folder written by `tfvr export`")
    path = os.path.join(d, "assets", METADATA_FILE)
    if not os.path.exists(path):
        if not required:
            return None
        raise NotATfvrExport(f"{d}: not a tfvr export (no assets/{METADATA_FILE}); export it with `tfvr export`")
    meta = read_json(path, "unreadable metadata", error=NotATfvrExport,
                     not_object="unreadable metadata (not a JSON object)")
    return normalise(meta, path)


def normalise(meta: dict, where: str = "metadata") -> dict:
    """Maps the legacy formats onto the current one (kind, num_frames, scale, multiple always present)."""
    fmt = meta.get("format")
    meta = dict(meta)
    if fmt in LEGACY_FORMATS:
        meta["kind"] = LEGACY_FORMATS[fmt]
        if meta["kind"] == "label-to-video":
            meta.setdefault("family", "vid2vid")
            meta.setdefault("num_frames", int(meta.get("n_frames_G", 0)))
    elif fmt != FORMAT:
        raise NotATfvrExport(f"{where}: unknown format {fmt!r} (expected {FORMAT!r}); a newer tfvr wrote it?")
    if meta.get("kind") not in KINDS:
        raise NotATfvrExport(f"{where}: unknown kind {meta.get('kind')!r} (expected one of {', '.join(KINDS)})")
    meta.setdefault("family", "")
    meta.setdefault("scale", 1)
    meta.setdefault("multiple", 1)
    meta.setdefault("num_frames", 0)
    meta.setdefault("model_config", {})
    return meta
