"""Keras-native saving and keras-hub style presets for every model family.

- `.keras` files: `model.save("x.keras")` / `tfvr.models.saving.load_model("x.keras")` (= `keras.saving.load_model`
  after importing every family, so their `@register_keras_serializable` classes are known). Each family's main
  classes have a complete `get_config()` (the constructor's arguments) and are registered. Models whose
  sub-layers create their variables on the first call (vid2vid's containers, `ExampleBuild`) are rebuilt on load
  by one call on small zero inputs (`example_inputs()`), so the weights file finds every variable.
- `Model.from_preset(name, weights=None, **overrides)` (keras-hub's convention, a classmethod of each family's
  main class, `PresetMixin`): builds the named configuration. Names come from
  1. the family's architecture presets (`cls.presets`: e.g. EDVR's `edvr_m`, `edvr_l`, `edvr_l_deblur`; the
     configurations of the repository's flagfiles): random initial weights unless `weights` is given;
  2. the released-checkpoint presets of `tfvr.presets` (when that package is installed: `tfvr.presets.get(name)`
     with `.family`, `.kwargs`, `.files`): the architecture from the preset's kwargs and the weights from a
     LOCAL file, `weights=` or `<stem>.weights.h5` / `<stem>.keras` of the released file's name in `$TFVR_WEIGHTS`
     or `~/.cache/tfvr/weights` (e.g. made by `tfvr convert-weights`). Nothing is ever downloaded: a missing
     file is a `UserError` that says where to get it.
  `weights` may be a `.weights.h5` (loaded into the built model) or a `.keras` file (its weights are copied
  after checking the architecture matches).
- `cls.list_presets()` lists the names `from_preset` accepts.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Optional

from tfvr.errors import UserError

__all__ = ["ExampleBuild", "PresetMixin", "load_model", "weights_dirs"]


def _register_all_models() -> None:
    """Imports every model class the families' records list (`tfvr.family.Family.model_classes`), which
    registers them with Keras."""
    from tfvr.family import resolve
    from tfvr.models import builtin_families

    for fam in builtin_families():
        for ref in fam.model_classes:
            resolve(ref)


def load_model(path: str, **kwargs):
    """`keras.saving.load_model(path)` with every tfvr model class registered (a `.keras` file of any family)."""
    import keras

    _register_all_models()
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such .keras file")
    return keras.saving.load_model(path, **kwargs)


class ExampleBuild:
    """Mixin for Keras models whose variables only exist after a call: `example_inputs()` returns a list of
    `(args, kwargs)` calls on small zero tensors that create every variable; `build_by_example()` runs them, and
    Keras's load (`build_from_config`) does too, before the weights are read."""

    def example_inputs(self) -> list[tuple[tuple, dict]]:
        raise NotImplementedError

    def build_by_example(self):
        for args, kwargs in self.example_inputs():
            self(*args, **kwargs)
        return self

    def get_build_config(self):
        return {"tfvr_build_by_example": True} if self.built else None

    def build_from_config(self, config):
        if config and config.get("tfvr_build_by_example"):
            self.build_by_example()
            return
        super().build_from_config(config)  # type: ignore[misc]


def weights_dirs() -> list[str]:
    """Where `from_preset` looks for local weight files of released presets: $TFVR_WEIGHTS, ~/.cache/tfvr/weights."""
    dirs = [d for d in os.environ.get("TFVR_WEIGHTS", "").split(os.pathsep) if d]
    dirs.append(os.path.join(os.path.expanduser("~"), ".cache", "tfvr", "weights"))
    return dirs


def _released(name: str):
    try:
        import tfvr.presets as released  # issue 11's released-checkpoint presets, when present
    except ImportError:
        return None
    try:
        return released.get(name)
    except Exception:  # UserError for an unknown name
        return None


def _field(obj, *names, default=None):
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    return default


class PresetMixin:
    """`from_preset` / `list_presets` for a family's main model class (module docstring).

    A class sets `presets` (name -> constructor kwargs), `preset_family` (the `tfvr.presets` family name) and, when
    the released presets' kwargs are not its own constructor's, overrides `kwargs_from_released(preset)`. It must
    be buildable without data: a `build_for_weights()` method or `example_inputs()` (as `ExampleBuild`).
    """

    presets: ClassVar[dict[str, dict]] = {}
    preset_family: ClassVar[str] = ""

    @classmethod
    def list_presets(cls) -> list[str]:
        names = list(cls.presets)
        try:
            import tfvr.presets as released

            names += [p.name for p in released.list_presets(cls.preset_family) if p.name not in names]
        except ImportError:
            pass
        return names

    @classmethod
    def kwargs_from_released(cls, released) -> dict:
        """This class's constructor kwargs for a released preset (default: its `kwargs`)."""
        return dict(_field(released, "kwargs", default={}) or {})

    @classmethod
    def from_preset(cls, name: str, weights: Optional[str] = None, **overrides: Any):
        released = None
        if name in cls.presets:
            kwargs = dict(cls.presets[name])
        else:
            released = _released(name)
            family = _field(released, "family")
            if released is None or (cls.preset_family and family != cls.preset_family):
                raise UserError(f"unknown {cls.__name__} preset {name!r}; known: {', '.join(cls.list_presets())}")
            kwargs = cls.kwargs_from_released(released)
        model = cls(**{**kwargs, **overrides})
        model.build_for_preset()
        if weights is None and released is not None:
            weights = cls._find_local_weights(name, released)
        if weights is not None:
            cls._load_weights(model, weights)
        return model

    def build_for_preset(self):
        """Creates every variable: `build_for_weights()` where the class has it, else its `example_inputs()`."""
        if hasattr(self, "build_for_weights"):
            return self.build_for_weights()
        for args, kwargs in self.example_inputs():
            self(*args, **kwargs)
        return self

    @staticmethod
    def _find_local_weights(name: str, released) -> str:
        files = list(_field(released, "files", default=()) or ())
        stems = [os.path.splitext(os.path.basename(f))[0] for f in files] + [name]
        for d in weights_dirs():
            for stem in stems:
                for ext in (".weights.h5", ".keras"):
                    p = os.path.join(d, stem + ext)
                    if os.path.isfile(p):
                        return p
        where = released.where_to_get() if hasattr(released, "where_to_get") else "see `tfvr presets`"
        raise UserError(f"preset {name!r}: no local weights ({' or '.join(s + '.weights.h5' for s in stems)} in "
                        f"{', '.join(weights_dirs())}); tfvr never downloads: {where}, convert it with "
                        f"`tfvr convert-weights` into one of those folders, or pass weights=PATH")

    @staticmethod
    def _load_weights(model, path: str) -> None:
        if not os.path.isfile(path):
            raise UserError(f"{path}: no such weights file")
        if path.endswith(".keras"):
            other = load_model(path)
            if type(other) is not type(model) or len(other.weights) != len(model.weights) or any(
                    tuple(a.shape) != tuple(b.shape) for a, b in zip(other.weights, model.weights)):
                raise UserError(f"{path}: holds a {type(other).__name__} whose weights do not match the "
                                f"{type(model).__name__} of this preset")
            model.set_weights(other.get_weights())
        elif path.endswith(".weights.h5"):
            try:
                model.load_weights(path)
            except ValueError as e:
                raise UserError(f"{path}: does not fit this preset's {type(model).__name__}: "
                                f"{' '.join(str(e).split())[:300]}") from None
        else:
            raise UserError(f"{path}: expected a .weights.h5 or .keras file (convert .pth with "
                            "`tfvr convert-weights`)")
