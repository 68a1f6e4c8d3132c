"""`Family`: the one record a model family declares about itself (the registration point, see `tfvr.registry`).

A family declares it once, in its own package (`tfvr/models/<family>/family.py`: `FAMILY = Family(...)`, e.g.
`tfvr/models/edvr/family.py`) and `tfvr/models/__init__.py` names that module in one line. A plug-in (or a test)
may pass the objects themselves instead of "module:attribute" strings and register the record with
`tfvr.registry.register_family`.

Strings are resolved (imported) only when used, so listing the families imports no task / model module. They are
literals of tfvr's code, never values read from a file: `tfvr.registry` looks names from config.json and
sidecars up among registered records and only then imports what a record names.

This module imports nothing of tfvr (the families import it; `tfvr.registry` imports it and the families' list).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Union

Ref = Union[str, Any]  # "package.module:attribute" or the object itself

__all__ = ["Family", "Ref", "resolve", "ref_name"]

SERVING_KINDS = ("restoration", "inpainting", "label-to-video")


def resolve(ref: Ref) -> Any:
    """The object a `Ref` names ("module:attr" is imported here; anything else is returned as it is)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise ValueError(f"{ref!r}: a family reference is 'package.module:attribute'")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def ref_name(ref: Ref) -> str:
    """"module.Qualname" of a reference, without importing it (what a converted-weights sidecar's "class" holds)."""
    if isinstance(ref, str):
        module, _, attr = ref.partition(":")
        return f"{module}.{attr}"
    return f"{ref.__module__}.{ref.__qualname__}"


@dataclass(frozen=True)
class Family:
    """What tfvr needs to know about a model family.

    Attributes:
        name: the family name (`--arch` of `tfvr convert-weights` / `tfvr export --from-pytorch`, the "family" of
            its exports' metadata).
        tasks: training Task name -> the Task class (the first is the family's main task; a Task's `name` must be
            its key). config.json's "task" is looked up among these.
        experiment: the main task's Experiment config dataclass (`tasks[main].experiment_cls`).
        model_classes: the Keras model classes a converted-weights sidecar ("class") or a `.keras` file may name;
            `tfvr.models.saving.load_model` imports these.
        converter: `convert_cli(state_dict, preset, kwargs[, source]) -> built keras.Model` (PyTorch weights →
            Keras; `tfvr convert-weights` and `tfvr export --from-pytorch`), or None.
        serving: the kind of its SavedModel exports ("restoration", "inpainting", "label-to-video"): how a model
            from converted weights is wrapped for serving, and what `tfvr.inference` expects.
        presets: the family's own architecture presets (name -> constructor kwargs) that `--arch X --preset NAME`
            accepts, or None.
    """

    name: str
    tasks: Mapping[str, Ref]
    experiment: Optional[Ref] = None
    model_classes: tuple = ()
    converter: Optional[Ref] = None
    serving: Optional[str] = None
    presets: Optional[Ref] = None
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise ValueError(f"Family name must be a non-empty string, got {self.name!r}")
        if not self.tasks:
            raise ValueError(f"family {self.name!r}: declares no task")
        if self.serving is not None and self.serving not in SERVING_KINDS:
            raise ValueError(f"family {self.name!r}: serving {self.serving!r} is not one of {SERVING_KINDS}")
        object.__setattr__(self, "tasks", dict(self.tasks))
        object.__setattr__(self, "model_classes", tuple(self.model_classes))

    @property
    def main_task(self) -> str:
        return next(iter(self.tasks))

    def task(self, name: str) -> type:
        """The Task class registered as `name` (imports its module)."""
        key = ("task", name)
        if key not in self._cache:
            cls = resolve(self.tasks[name])
            if getattr(cls, "name", None) != name:
                raise ValueError(f"family {self.name!r}: task {name!r} resolves to {cls!r} whose name is "
                                 f"{getattr(cls, 'name', None)!r}")
            self._cache[key] = cls
        return self._cache[key]

    def model_class_refs(self) -> dict[str, Ref]:
        """{"module.Qualname": ref} of `model_classes` (nothing imported)."""
        return {ref_name(r): r for r in self.model_classes}

    def load_converter(self) -> Optional[Callable]:
        return None if self.converter is None else resolve(self.converter)

    def load_presets(self) -> dict:
        return {} if self.presets is None else dict(resolve(self.presets))


def lazy_exports(package: str, exports: Mapping[str, str]):
    """`(__getattr__, __dir__, __all__)` for a family package's `__init__`: `from tfvr.models.edvr import EDVR`
    imports `exports["EDVR"]` (a module name) only then (PEP 562), so importing the package - and its `family`
    record - imports no TensorFlow."""
    exports = dict(exports)

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__():
        return sorted(set(exports) | set(vars(importlib.import_module(package))))

    return __getattr__, __dir__, list(exports)
