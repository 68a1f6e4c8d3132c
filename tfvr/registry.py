"""The one registration point: model families by name, and the lookups everything else uses.

Each family declares one `tfvr.family.Family` record in its own package (`tfvr/models/<family>/family.py`: its
training Tasks, experiment config, Keras model classes, PyTorch converter, serving kind, presets) and
`tfvr/models/__init__.py` names that module in one line. Everything that needs the list reads it here:

* `get_task(name, module, source=path)`: the Task class config.json's "task" names (`tfvr export`, `tfvr
  evaluate`, `tfvr.training.checkpoints.restore_models`, the train scripts); `list_tasks()`.
* `model_class(value, source)`: the Keras class a converted-weights sidecar's "class" names.
* `converter(arch)` / `converter_names()`: `tfvr convert-weights --arch`, `tfvr export --from-pytorch`.
* `serving_kind(arch)`, `family_of_model(model)`: the serving module a converted model goes into.
* `family(name)`, `families()`: the records themselves (presets, listings, `tfvr.models.saving`).

**Nothing a file names is imported.** config.json's "task" and a sidecar's "class" are looked up among the
registered records; only the "module:attribute" literals of a record (tfvr's own code, or a plug-in the user
imported) are imported. config.json's "task_module" is never imported: it only makes the error message more
useful.

Plug-ins. A family outside tfvr registers its record with `register_family(Family(...))`, or a bare Task with the
`@register_task` decorator, when its module is imported: either by your own script, or by naming the module in
the environment variable ``TFVR_PLUGINS=mypkg.task,other.task`` (comma-separated; the user's environment, never a
file).

Imports. Importing this module imports no family (nor TensorFlow); the built-in records are read from
`tfvr.models` on the first lookup. No module under `tfvr/models` imports this one (the families declare records,
they do not register themselves), so there is no registry <-> models import circle.
"""

from __future__ import annotations

import importlib
import os
from typing import Optional

from tfvr.errors import ConfigError, UserError
from tfvr.family import Family, ref_name, resolve

__all__ = ["Family", "register_family", "register_task", "get_task", "list_tasks", "family", "families",
           "model_class", "model_class_names", "converter", "converter_names", "serving_kind", "family_of_model"]

_FAMILIES: dict[str, Family] = {}
_TASKS: dict[str, type] = {}  # resolved Tasks, and bare Tasks registered with @register_task
_BARE: set[str] = set()
_PLUGINS_LOADED: set[str] = set()
_BUILTIN_LOADED = False


def _task_owner(name: str) -> Optional[Family]:
    return next((f for f in _FAMILIES.values() if name in f.tasks), None)


def register_family(fam: Family) -> Family:
    """Registers a family record (a plug-in's, or a test's). Its name and task names must be new."""
    if not isinstance(fam, Family):
        raise TypeError(f"register_family takes a tfvr.family.Family, got {type(fam).__name__}")
    old = _FAMILIES.get(fam.name)
    if old is not None and old is not fam:
        if old == fam:
            return old
        raise ValueError(f"family {fam.name!r} is already registered")
    for t, ref in fam.tasks.items():
        owner = _task_owner(t)
        if (owner is not None and owner.name != fam.name) or (t in _BARE and not _same(ref, _TASKS[t])):
            raise ValueError(f"task name {t!r} of family {fam.name!r} is already registered"
                             f"{f' by family {owner.name!r}' if owner else ''}")
    _FAMILIES[fam.name] = fam
    return fam


def register_task(cls: type) -> type:
    """Class decorator: registers a Task subclass under its `name` attribute (a Task without a family record:
    plug-ins and tests; tfvr's own Tasks are named by their family's record)."""
    name = getattr(cls, "name", "")
    if not name:
        raise ValueError(f"{cls.__name__} has no `name`: set the class attribute name = '<family>'")
    old = _TASKS.get(name)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"task name {name!r} is already registered by {old.__module__}.{old.__qualname__}")
    owner = _task_owner(name)
    if owner is not None:  # a family's own Task, also decorated: fine if it is the class the record names
        if not _same(owner.tasks[name], cls):
            raise ValueError(f"task name {name!r} belongs to family {owner.name!r}")
    else:
        _BARE.add(name)
    _TASKS[name] = cls
    return cls


def _same(ref, cls) -> bool:
    return ref is cls or ref_name(ref) == f"{cls.__module__}.{cls.__qualname__}"


def _load_builtin() -> None:
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    from tfvr.models import builtin_families  # the one line per family (module strings: cheap)

    for fam in builtin_families():
        register_family(fam)


def _load_plugins() -> None:
    """Imports the modules named in $TFVR_PLUGINS (once each)."""
    for mod in (m.strip() for m in os.environ.get("TFVR_PLUGINS", "").split(",")):
        if not mod or mod in _PLUGINS_LOADED:
            continue
        _PLUGINS_LOADED.add(mod)
        try:
            importlib.import_module(mod)
        except ImportError as e:
            raise UserError(f"TFVR_PLUGINS: cannot import {mod!r} ({e})") from None


def families() -> dict[str, Family]:
    """Every registered family record by name (tfvr's own, then plug-ins)."""
    _load_builtin()
    _load_plugins()
    return dict(_FAMILIES)


def family(name: str, source: str = "--arch") -> Family:
    """The record of family `name`; a one-line ConfigError naming `source` for an unknown one."""
    fams = families()
    if not isinstance(name, str) or name not in fams:
        raise ConfigError(f"{source}: unknown model family {name!r} (known: {', '.join(sorted(fams))})")
    return fams[name]


def _task_names() -> list[str]:
    return sorted({t for f in _FAMILIES.values() for t in f.tasks} | set(_TASKS))


def get_task(name: str, module: Optional[str] = None, *, source: str = "config") -> type:
    """The Task class registered as `name`. `module` (config.json's "task_module") is never imported: it only
    makes the error message more useful. `source` names the file the name came from (for the message)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: \"task\" must be a task name string, got {name!r}")
    if module is not None and not isinstance(module, str):
        raise ConfigError(f"{source}: \"task_module\" must be a string, got {module!r}")
    if name in _TASKS:
        return _TASKS[name]
    _load_builtin()
    if _task_owner(name) is None and name not in _TASKS:
        _load_plugins()
    if name in _TASKS:
        return _TASKS[name]
    owner = _task_owner(name)
    if owner is None:
        hint = ""
        if module:
            hint = (f" (its \"task_module\" {module!r} is not imported from a file; if it is a plug-in you trust, "
                    f"import it yourself or set TFVR_PLUGINS={module})")
        raise ConfigError(f"{source}: unknown task {name!r}; registered tfvr tasks: {_task_names() or 'none'}"
                          f"{hint}")
    cls = owner.task(name)
    _TASKS[name] = cls
    return cls


def list_tasks() -> list[str]:
    """Names of every registered Task (imports no task module)."""
    families()
    return _task_names()


def model_class_names() -> list[str]:
    """The "module.Class" values a converted-weights sidecar's "class" may hold."""
    return sorted(n for f in families().values() for n in f.model_class_refs())


def model_class(value, source: str = "config") -> type:
    """The Keras model class a converted-weights sidecar (`X.config.json`) names in its "class" field, resolved
    only among the registered families' `model_classes`. ConfigError naming `source` and the value otherwise."""
    refs = {n: r for f in families().values() for n, r in f.model_class_refs().items()}
    if not isinstance(value, str) or value not in refs:
        raise ConfigError(f"{source}: \"class\" {value!r} is not a tfvr model class (known: "
                          f"{', '.join(sorted(refs))}); nothing was imported")
    try:
        return resolve(refs[value])
    except (ImportError, AttributeError):
        raise ConfigError(f"{source}: \"class\" {value!r}: tfvr has no such class (any more)") from None


def converter_names() -> list[str]:
    """Families with a PyTorch converter (`--arch` choices)."""
    return sorted(n for n, f in families().items() if f.converter is not None)


def converter(arch: str):
    """The family's `convert_cli(state_dict, preset, kwargs[, source])`; UserError for a family without one."""
    fam = families().get(arch)
    if fam is None or fam.converter is None:
        raise UserError(f"--arch {arch}: no converter (known: {', '.join(converter_names())})")
    return fam.load_converter()


def serving_kind(arch) -> Optional[str]:
    """The kind of family `arch`'s exports ("restoration", "inpainting", "label-to-video"), None if unknown."""
    fam = families().get(arch) if isinstance(arch, str) else None
    return None if fam is None else fam.serving


def family_of_model(model) -> Optional[Family]:
    """The family whose `model_classes` holds `type(model)` (exactly, else a subclass), or None."""
    cls = type(model)
    fams = families().values()
    name = f"{cls.__module__}.{cls.__qualname__}"
    for f in fams:
        if name in f.model_class_refs():
            return f
    for f in fams:
        for ref in f.model_classes:
            try:
                if isinstance(model, resolve(ref)):
                    return f
            except (ImportError, AttributeError):
                continue
    return None
