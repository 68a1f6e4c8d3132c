"""Name -> Task registry, so a run can be rebuilt from its `workdir/config.json` (`tfvr export --workdir`).

A family registers its Task where it defines it:

    @tfvr.registry.register_task
    class EDVRTask(Task):
        name = "edvr"

`config.json` stores `"task": "edvr"` and `"task_module": "tfvr.models.edvr.task"`; `get_task(name, module)`
imports that module if the name is not registered yet (no folder scanning). Importing this module is cheap.
"""

from __future__ import annotations

import importlib
from typing import Optional

from tfvr.errors import UserError

_TASKS: dict[str, type] = {}


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


def get_task(name: str, module: Optional[str] = None) -> type:
    """The Task class registered as `name`, importing `module` first if given and not yet registered."""
    if name not in _TASKS and module:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise UserError(f"task {name!r}: cannot import its module {module!r} ({e})") from None
    if name not in _TASKS:
        from tfvr.models import register_all

        register_all()
    if name not in _TASKS:
        raise UserError(f"unknown task {name!r}; registered: {sorted(_TASKS) or 'none'}")
    return _TASKS[name]


def list_tasks() -> list[str]:
    """Names of every family's Task (imports them all)."""
    from tfvr.models import register_all

    register_all()
    return sorted(_TASKS)
