"""Name -> class registries, so a run or a converted model can be rebuilt from a JSON file - without ever
importing a module whose name comes from that file.

Tasks. A family registers its Task where it defines it:

    @tfvr.registry.register_task
    class EDVRTask(Task):
        name = "edvr"

`config.json` stores `"task": "edvr"` (and, for information only, `"task_module"`). `get_task(name)` looks the
name up among the registered Tasks; tfvr's own families are registered by importing `tfvr.models` (a fixed list
of imports, no folder scanning). A Task outside tfvr (a plug-in) is registered by importing its module before
the lookup: either in your own script, or by naming the module in the environment variable
``TFVR_PLUGINS=mypkg.task,other.task`` (comma-separated; the user's environment, never a file). A name that is
still unknown is a one-line `UserError` naming the file and the value: **nothing named by config.json is
imported.**

Converted weights. `tfvr convert-weights` writes `X.config.json` with `"class": "<module>.<Class>"`;
`model_class(value, source)` resolves it only among tfvr's own model classes (`MODEL_CLASSES`), again without
importing anything a file names. Importing this module is cheap.
"""

from __future__ import annotations

import importlib
import os
from typing import Optional

from tfvr.errors import ConfigError, UserError

_TASKS: dict[str, type] = {}
_PLUGINS_LOADED: set[str] = set()

# The Keras models `tfvr convert-weights` can write, by "<module>.<qualname>" (what the sidecar's "class" holds).
# The module strings are literals here; `model_class` imports only these.
MODEL_CLASSES: dict[str, tuple[str, str]] = {
    "tfvr.models.edvr.model.EDVR": ("tfvr.models.edvr.model", "EDVR"),
    "tfvr.models.sttn_inpaint.generator.STTNInpaintGenerator": ("tfvr.models.sttn_inpaint.generator",
                                                                "STTNInpaintGenerator"),
    "tfvr.models.sttn_inpaint.discriminator.TPatchGANDiscriminator": ("tfvr.models.sttn_inpaint.discriminator",
                                                                      "TPatchGANDiscriminator"),
    "tfvr.models.vid2vid.generator.CompositeGenerator": ("tfvr.models.vid2vid.generator", "CompositeGenerator"),
    "tfvr.models.vid2vid.generator.Vid2VidGenerator": ("tfvr.models.vid2vid.generator", "Vid2VidGenerator"),
    "tfvr.models.vid2vid.discriminator.MultiscaleDiscriminator": ("tfvr.models.vid2vid.discriminator",
                                                                  "MultiscaleDiscriminator"),
    "tfvr.models.sttn_restore.model.STTNRestore": ("tfvr.models.sttn_restore.model", "STTNRestore"),
}


def register_task(cls: type) -> type:
    """Class decorator: registers a Task subclass under its `name` attribute."""
    name = getattr(cls, "name", "")
    if not name:
        raise ValueError(f"{cls.__name__} has no `name`: set the class attribute name = '<family>'")
    old = _TASKS.get(name)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"task name {name!r} is already registered by {old.__module__}.{old.__qualname__}")
    _TASKS[name] = cls
    return cls


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


def get_task(name: str, module: Optional[str] = None, *, source: str = "config") -> type:
    """The Task class registered as `name`. `module` (config.json's "task_module") is never imported: it only
    makes the error message more useful. `source` names the file the name came from (for the message)."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{source}: \"task\" must be a task name string, got {name!r}")
    if name not in _TASKS:
        from tfvr.models import register_all

        register_all()
    if name not in _TASKS:
        _load_plugins()
    if name not in _TASKS:
        hint = ""
        if module:
            hint = (f" (its \"task_module\" {module!r} is not imported from a file; if it is a plug-in you trust, "
                    f"import it yourself or set TFVR_PLUGINS={module})")
        raise ConfigError(f"{source}: unknown task {name!r}; registered tfvr tasks: {sorted(_TASKS) or 'none'}"
                          f"{hint}")
    cls = _TASKS[name]
    if module is not None and not isinstance(module, str):
        raise ConfigError(f"{source}: \"task_module\" must be a string, got {module!r}")
    return cls


def model_class(value, source: str = "config") -> type:
    """The Keras model class a converted-weights sidecar (`X.config.json`) names in its "class" field, resolved
    only among `MODEL_CLASSES`. Raises ConfigError naming `source` and the value for anything else."""
    if not isinstance(value, str) or value not in MODEL_CLASSES:
        raise ConfigError(f"{source}: \"class\" {value!r} is not a tfvr model class (known: "
                          f"{', '.join(sorted(MODEL_CLASSES))}); nothing was imported")
    module_name, cls_name = MODEL_CLASSES[value]
    cls = getattr(importlib.import_module(module_name), cls_name, None)
    if cls is None:
        raise ConfigError(f"{source}: \"class\" {value!r}: tfvr has no such class (any more)")
    return cls


def list_tasks() -> list[str]:
    """Names of every family's Task (imports them all)."""
    from tfvr.models import register_all

    register_all()
    return sorted(_TASKS)
