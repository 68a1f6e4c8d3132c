"""`trainer.freeze`: which variables a run does not train.

    --config.trainer.freeze="('pcd', 'feature_extraction')"      # EDVR layer groups (Task.layer_groups)
    --config.trainer.freeze="('edvr/pcd_align/*',)"              # or fnmatch patterns over <model>/<variable path>

`frozen_variables(task, models, entries)` resolves the entries: a name of `task.layer_groups(models)` selects that
group's variables; anything else is an fnmatch pattern (case-sensitive) over "<model name>/<variable.path>" of every
trainable variable. The trainer removes the frozen variables from every optimizer group before building the
optimizers, so they keep their values (initialisation, `init_from`, or the restored checkpoint) and get no
optimizer slots; everything else trains as before. An entry that matches nothing, or freezing every variable,
raises `ConfigError` (a typo must not silently train everything).
"""

from __future__ import annotations

import fnmatch
from typing import Any, Iterable

from tfvr.errors import ConfigError


def _ref(v):
    return v.ref() if hasattr(v, "ref") else id(v)


def variable_names(models: dict[str, Any]) -> list[tuple[str, Any]]:
    """[("<model>/<variable path>", variable)] of every trainable variable (the names patterns match)."""
    out = []
    for name, m in models.items():
        for v in m.trainable_variables:
            path = getattr(v, "path", None) or v.name  # Keras 3: "<model>/<layer>/.../<name>"
            out.append((path if path.startswith(f"{name}/") else f"{name}/{path}", v))
    return out


def frozen_variables(task, models: dict[str, Any], entries: Iterable[str]) -> tuple[set, dict[str, int]]:
    """(set of frozen variable refs, {entry: number of variables it froze})."""
    entries = [e for e in entries if e]
    if not entries:
        return set(), {}
    groups = task.layer_groups(models)
    names = variable_names(models)
    frozen: set = set()
    report: dict[str, int] = {}
    for entry in entries:
        if entry in groups:
            vs = list(groups[entry])
        else:
            vs = [v for n, v in names if fnmatch.fnmatchcase(n, entry)]
        if not vs:
            known = ", ".join(sorted(groups))
            raise ConfigError(f"trainer.freeze: {entry!r} is neither a layer group of this task ({known}) nor a "
                              f"pattern matching any variable (names look like {names[0][0]!r})")
        report[entry] = len(vs)
        frozen.update(_ref(v) for v in vs)
    if all(_ref(v) in frozen for _, v in names):
        raise ConfigError(f"trainer.freeze={tuple(entries)} freezes every trainable variable: nothing to train")
    return frozen, report
