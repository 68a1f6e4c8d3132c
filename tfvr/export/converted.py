"""Converted weights (`X.weights.h5` + its `X.config.json` sidecar, written by `tfvr convert-weights`) and the
serving module each family's model goes into.

* `config_path_for(weights)`: `X.weights.h5` → `X.config.json`.
* `read_sidecar(weights)`: the sidecar dict {"arch", "class", "config", "source", "preset", "num_params"}, with a
  one-line `UserError` for a missing / non-JSON / incomplete one.
* `load_converted(weights)`: rebuilds the Keras model (`cls.from_config(config)`, build, `load_weights`); a
  truncated or foreign `.weights.h5` is a one-line `UserError`.
* `serving_module(model, arch, model_config)`: (module, kind, examples) — the same serving module a training run of
  that family exports (`RestorationModule`, `InpaintExportModule`, `Vid2VidModule`), with example inputs for the
  fresh-process reload check of `tfvr.export.saved_model.export`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfvr.errors import UserError
from tfvr.safety import read_json

SUFFIX = ".weights.h5"
# Frame size of the inpainting module built from converted weights: the released STTN's 432x240.
INPAINT_SIZE = (240, 432)


def config_path_for(weights_path) -> Path:
    """`OUT.weights.h5` → `OUT.config.json`."""
    p = Path(weights_path)
    name = p.name[: -len(SUFFIX)] if p.name.endswith(SUFFIX) else p.stem
    return p.with_name(name + ".config.json")


def read_sidecar(weights_path) -> dict:
    p = Path(weights_path)
    cfg = config_path_for(p)
    if not p.exists():
        raise UserError(f"{p}: no such file")
    if not cfg.exists():
        raise UserError(f"{p}: no {cfg.name} beside it (write both with `tfvr convert-weights`)")
    meta = read_json(cfg, "not a JSON sidecar written by `tfvr convert-weights`")
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) or "class" not in meta:
        raise UserError(f"{cfg}: not a tfvr convert-weights sidecar (needs \"class\" and \"config\")")
    return meta


def _model_class(meta: dict, where: Path):
    """The sidecar's "class", resolved only among tfvr's own model classes (`tfvr.registry.model_class`): a
    sidecar from someone else cannot make tfvr import a module."""
    from tfvr.registry import model_class

    return model_class(meta.get("class"), source=str(where))


def load_converted(weights_path):
    """Rebuilds a model written by `tfvr convert-weights` (reads `OUT.config.json`, builds, loads the weights)."""
    p = Path(weights_path)
    meta = read_sidecar(p)
    cls = _model_class(meta, config_path_for(p))
    try:
        model = cls.from_config(meta["config"])
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"{config_path_for(p)}: cannot build {cls.__name__} from its config ({e})") from None
    build_for_weights(model)
    try:
        model.load_weights(str(p))
    except Exception as e:  # noqa: BLE001 - h5py / Keras errors of a truncated or foreign file
        first = (str(e).splitlines() or [""])[0][:200]
        raise UserError(f"{p}: not a readable .weights.h5 for {cls.__name__} (truncated or written for another "
                        f"model?): "
                        f"{type(e).__name__}: {first}") from None
    return model


def build_for_weights(model) -> None:
    """Creates every weight of a freshly configured model (before `load_weights`)."""
    if hasattr(model, "build_for_weights"):
        model.build_for_weights()
        return
    if hasattr(model, "n_frames_G") and hasattr(model, "size_multiple"):  # vid2vid: one call per path
        import tensorflow as tf

        n, m = int(model.n_frames_G), 4 * int(model.size_multiple)  # reflect pads need >= 2 px at the bottleneck
        labels = tf.zeros([1, n, m, m], tf.int32)
        inst = tf.zeros([1, n, m, m], tf.int32) if getattr(model, "use_instance", False) else None
        model(labels, None, inst, training=False)
        if not getattr(model, "no_flow", False):
            model(labels, tf.zeros([1, n - 1, m, m, 3]), inst, training=False)


def arch_of(meta: dict, model) -> str:
    """The family of a converted model: the sidecar's "arch" when it is a registered family with a serving
    kind, else the family whose `model_classes` holds the model's class (`tfvr.registry`)."""
    from tfvr import registry

    arch = meta.get("arch")
    if registry.serving_kind(arch) is not None:
        return arch
    fam = registry.family_of_model(model)
    if fam is not None and fam.serving is not None:
        return fam.name
    raise UserError(f"{type(model).__name__}: no serving module for this model")


def serving_module(model, arch: str, model_config: dict | None = None, precision: str | None = None):
    """(tf.Module, kind, examples {signature: {arg: array}}) for a built Keras model of family `arch`."""
    from tfvr import registry

    kind = registry.serving_kind(arch)
    rng = np.random.default_rng(0)
    if kind == "restoration":
        from tfvr.export.restoration import RestorationModule

        for attr in ("num_frame", "scale", "size_multiple"):
            if not hasattr(model, attr):
                raise UserError(f"{type(model).__name__} is not a window-restoration model (no {attr})")
        module = RestorationModule(model, num_frames=model.num_frame, scale=model.scale,
                                   multiple=model.size_multiple, family=arch, model_config=model_config,
                                   name=f"{arch}_serving")
        h, w = (37, 29) if model.scale == 1 else (19, 13)  # odd: the check exercises padding and cropping
        ex = rng.integers(0, 256, (1, model.num_frame, h, w, 3), dtype=np.uint8)
        return module, kind, {"serving_default": {"frames": ex}}
    if kind == "inpainting":
        from tfvr.models.sttn_inpaint.export import InpaintExportModule

        if not hasattr(model, "enc") or not hasattr(model, "dec"):
            raise UserError(f"{type(model).__name__} is not an STTN-I generator (a discriminator cannot inpaint)")
        h, w = INPAINT_SIZE
        module = InpaintExportModule(model, height=h, width=w, model_config=model_config)
        frames = rng.integers(0, 256, (3, h, w, 3), dtype=np.uint8)
        masks = np.zeros((3, h, w, 1), np.uint8)
        masks[:, h // 4: h // 2, w // 4: w // 2] = 255
        return module, kind, {"serving_default": {"frames": frames, "masks": masks}}
    if kind == "label-to-video":
        from tfvr.models.vid2vid.export import Vid2VidModule

        module = Vid2VidModule(model, model_config=model_config)
        return module, kind, module.examples()
    known = sorted(n for n, f in registry.families().items() if f.serving)
    raise UserError(f"--arch {arch}: no serving module (known: {', '.join(known)})")


def is_weights_file(path) -> bool:
    return os.fspath(path).endswith(SUFFIX)


# ---------------------------------------------------------------------------------------------- conversion
def _converter(arch: str):
    """The family's PyTorch converter, from its record (`tfvr.registry.converter`)."""
    from tfvr import registry

    return registry.converter(arch)


def resolve_checkpoint(path, arch: str | None, preset: str | None, kwargs: dict | None, state_dict=None):
    """(arch, preset, kwargs) to convert `path`. With the released-checkpoint presets (`tfvr.presets`) the file
    name alone may say what it is; otherwise `arch` is needed, and the family's converter reads the preset /
    kwargs (EDVR infers them from the weight shapes when neither is given)."""
    try:
        from tfvr.presets import resolve_pytorch_checkpoint
    except ImportError:  # a build without the presets data
        resolve_pytorch_checkpoint = None
    if resolve_pytorch_checkpoint is not None:
        arch, kw = resolve_pytorch_checkpoint(path, arch=arch, preset=preset, kwargs=kwargs, state_dict=state_dict)
        return arch, None, kw
    if arch is None:
        from tfvr.registry import converter_names

        raise UserError(f"{path}: say what it is with --arch ({', '.join(converter_names())})")
    return arch, preset, kwargs


def build_from_state_dict(arch: str, state_dict, preset: str | None = None, kwargs: dict | None = None,
                          source: str = "state dict"):
    """The built Keras model of family `arch` holding the PyTorch `state_dict`'s weights (the family's
    `convert_cli`); converter errors become one line naming `source`."""
    import inspect

    convert_cli = _converter(arch)
    extra = {"source": str(source)} if "source" in inspect.signature(convert_cli).parameters else {}
    try:
        return convert_cli(state_dict, preset, kwargs, **extra)
    except UserError as e:
        msg = str(e)
        raise UserError(msg if str(source) in msg else f"{source}: {msg}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{source}: cannot convert to {arch} (preset={preset}, kwargs={kwargs}): {e}") from None


def model_config_of(model) -> dict:
    cfg = model.get_config() if hasattr(model, "get_config") else {}
    return {k: v for k, v in cfg.items() if k not in ("name", "trainable", "dtype")}
