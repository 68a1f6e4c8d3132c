"""Experiment configs: the typed dataclass a training run is configured by, its JSON form, and flag checking.

A family declares its experiment by subclassing `Experiment` and adding its own `model` and `data` fields:

    @dataclasses.dataclass
    class STTNRestoreExperiment(tfvr.config.Experiment):
        model: STTNRestoreConfig = dataclasses.field(default_factory=STTNRestoreConfig)
        data: DataConfig = dataclasses.field(default_factory=DataConfig)

Rules (ml_collections 1.1 `DEFINE_config_dataclass` is what reads flagfiles into it):
- no `from __future__ import annotations` in config modules: field types must be real types;
- field types: int, float, bool, str, `tuple[T, ...]`, `Optional[...]`, enums, nested dataclasses (with
  `dataclasses.field(default_factory=...)`), never `frozen=True`;
- a flagfile is lines of `--config.model.num_feat=64` (comments start with `#` or `//`); `--flagfile=other.flags`
  includes another; the command line beats flagfiles, which beat the defaults.

`check_overrides(experiment, argv)` reads the flagfiles the way absl does and checks every `--config.*` line
*before* absl sees it, so a typo (unknown field, a value of the wrong type) stops the run with one line naming the
flagfile, the line and the field (`tfvr.errors.ConfigError`), instead of an absl traceback.

`save_json` / `load_json` write and read the resolved config (`workdir/config.json`). The JSON is the dataclass
as a dict plus one reserved top-level key, `"task"`, holding the registry name of the family's Task (and
`"task_module"`, the module that registers it), so `tfvr export --workdir` can rebuild the run. `load_json`
is strict: unknown keys and values of the wrong type raise `ConfigError` naming the file and the key.
Importing this module does not import TensorFlow.
"""

import ast
import dataclasses
import difflib
import enum
import json
import os
import re
import types
import typing
from typing import Any, Iterable, Optional

from tfvr import safety
from tfvr.errors import ConfigError
from tfvr.training.config import OptimConfig, RuntimeConfig, TrainerConfig

__all__ = [
    "Experiment",
    "OptimConfig",
    "TrainerConfig",
    "RuntimeConfig",
    "to_dict",
    "from_dict",
    "save_json",
    "load_json",
    "check_overrides",
    "checked_argv",
    "last_overrides",
    "read_flagfile_lines",
    "validate_experiment",
]

RESERVED_KEYS = ("task", "task_module")


@dataclasses.dataclass
class Experiment:
    """Base of every family's experiment config.

    Families subclass it and add `model: <FamilyConfig>` and `data: DataConfig` (or their own data config).

    Attributes:
        name: a name for the run (used in logs and as the default export name).
        optim: the optimizer and its LR schedule. A GAN family adds e.g. `d_optim: OptimConfig` for the
            discriminator and says so in `Task.optimizer_groups`.
        trainer: loop settings (steps, intervals, EMA, NaN guard, export switch).
        runtime: distribution strategy and precision.
    """

    name: str = "experiment"
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    trainer: TrainerConfig = dataclasses.field(default_factory=TrainerConfig)
    runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)


def validate_experiment(config: Any) -> Any:
    """Checks the whole config, ranges included, before anything is written: calls `validate()` on every
    (nested) dataclass that has one - `OptimConfig`, `TrainerConfig`, `RuntimeConfig`, `DataConfig`, a family's
    own configs and the experiment itself - and checks the schedule (`tfvr.training.schedules.validate`).
    Raises `ConfigError` (one line naming the field); returns `config`."""
    seen: set[int] = set()

    def walk(obj: Any, path: str) -> None:
        if id(obj) in seen or not dataclasses.is_dataclass(obj) or isinstance(obj, type):
            return
        seen.add(id(obj))
        for f in dataclasses.fields(obj):
            walk(getattr(obj, f.name), f"{path}{f.name}.")
        fn = getattr(obj, "validate", None)
        if callable(fn):
            if isinstance(obj, (OptimConfig, TrainerConfig, RuntimeConfig)) and path:
                fn(path[:-1])
            else:
                fn()

    walk(config, "")
    from tfvr.training import schedules  # no TensorFlow

    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, OptimConfig):
            schedules.validate(value)
    return config


# ----------------------------------------------------------------------------------------------------------------
# dict / JSON


def to_dict(config: Any) -> dict:
    """A dataclass config as plain JSON-able dicts (tuples become lists, enums their value)."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return _to_jsonable(config)


def _to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    return value


def _field_types(cls: type) -> dict[str, Any]:
    """Resolved type of each field of a dataclass type (string annotations are resolved when possible)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolvable forward refs: fall back to the raw annotations
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(cls)}


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Checks/converts a JSON value to the field type `tp`; raises ConfigError naming `where`."""
    tp, optional = _strip_optional(tp)
    if value is None:
        if optional or tp is Any:
            return None
        raise ConfigError(f"{where}: null is not allowed (expected {_type_name(tp)})")
    if tp is Any or tp is object:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object for {tp.__name__}, got {type(value).__name__}")
        return _from_dict(tp, value, where)
    origin = typing.get_origin(tp)
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
        if args:
            return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        return tuple(value)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(value)
        except ValueError:
            try:
                return tp[str(value)]
            except KeyError:
                raise ConfigError(
                    f"{where}: {value!r} is not one of {[m.value for m in tp]}"
                ) from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _from_dict(cls: type, data: dict, where: str) -> Any:
    # `where` is "<source>: <dotted.key>" (or just "<source>" at the top level).
    types_ = _field_types(cls)
    unknown = [k for k in data if k not in types_]
    if unknown:
        k = unknown[0]
        raise ConfigError(f"{where}: unknown field {k!r} in {cls.__name__}{_suggest(k, types_)}")
    kwargs = {}
    # A field may name a "coerce" function in its metadata: it maps older JSON forms onto the current type (e.g.
    # `data.crop_size`, an int in older runs' config.json, text such as "360x640" now).
    coerce = {f.name: f.metadata.get("coerce") for f in dataclasses.fields(cls)}
    for name, tp in types_.items():
        if name in data:
            sub = f"{where}.{name}" if ": " in where else f"{where}: {name}"
            value = coerce[name](data[name]) if coerce.get(name) else data[name]
            kwargs[name] = _convert(value, tp, sub)
    return cls(**kwargs)


def from_dict(cls: type, data: dict, source: str = "config") -> Any:
    """Builds dataclass `cls` from a dict (missing fields keep their defaults). Strict: unknown keys and values
    of the wrong type raise `ConfigError` naming `source` and the dotted key."""
    data = {k: v for k, v in data.items() if k not in RESERVED_KEYS}
    return _from_dict(cls, data, source)


def save_json(config: Any, path: str | os.PathLike, *, task: str | None = None, task_module: str | None = None) -> None:
    """Writes the config as indented JSON, atomically (temp file in the same folder, fsync, then rename)."""
    payload = {}
    if task is not None:
        payload["task"] = task
    if task_module is not None:
        payload["task_module"] = task_module
    payload.update(to_dict(config))
    safety.write_text(os.fspath(path), json.dumps(payload, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> dict:
    """The raw JSON object of a config file; `ConfigError` naming the file if missing, unreadable, not valid JSON
    or not an object (`tfvr.safety.read_json` with the config file messages)."""
    return safety.read_json(path, "not valid JSON", error=ConfigError, not_found="config file not found",
                             not_object="expected a JSON object at the top level")


def load_json(cls: type, path: str | os.PathLike) -> Any:
    """Reads a config written by `save_json` into dataclass `cls` (strict, see `from_dict`)."""
    data = read_json(path)
    return from_dict(cls, data, source=os.fspath(path))


# ----------------------------------------------------------------------------------------------------------------
# flagfiles


def _suggest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


_COMMENT = re.compile(r"^\s*(#|//)")


def read_flagfile_lines(path: str, _seen: tuple[str, ...] = ()) -> list[tuple[str, str, int]]:
    """Flags of a flagfile as (flag text, file, line number), nested `--flagfile=` lines expanded in place
    (absl's rules: one flag per line, `#` / `//` comments, blank lines ignored). Raises ConfigError for a missing
    file or an include cycle."""
    path = os.path.expanduser(path)
    if path in _seen:
        raise ConfigError(f"{path}: flagfile includes itself ({' -> '.join(_seen + (path,))})")
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        where = f" (included from {_seen[-1]})" if _seen else ""
        raise ConfigError(f"{path}: flagfile not found{where}") from None
    out = []
    for i, line in enumerate(lines, 1):
        text = line.strip()
        if not text or _COMMENT.match(text):
            continue
        m = re.match(r"^--?flagfile=(.*)$", text)
        if m:
            inc = m.group(1).strip()
            for sub in inc.split(","):
                if sub:
                    out.extend(read_flagfile_lines(sub, _seen + (path,)))
            continue
        out.append((text, path, i))
    return out


def expand_argv(argv: list[str]) -> list[tuple[str, str, int]]:
    """argv[1:] as (flag, source, line) with every `--flagfile=` expanded; command-line flags get source
    "command line" and line 0."""
    out = []
    args = list(argv[1:])
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            break
        if a in ("--flagfile", "-flagfile") and i + 1 < len(args):
            for sub in args[i + 1].split(","):
                out.extend(read_flagfile_lines(sub))
            i += 2
            continue
        m = re.match(r"^--?flagfile=(.*)$", a)
        if m:
            for sub in m.group(1).split(","):
                if sub:
                    out.extend(read_flagfile_lines(sub))
        else:
            out.append((a, "command line", 0))
        i += 1
    return out


def last_overrides(argv: list[str], flag_name: str = "config", *,
                   expanded: Optional[list[tuple[str, str, int]]] = None) -> list[str]:
    """argv with every `--flagfile` expanded and, of a `--<flag_name>.a.b[=v]` / `--no<flag_name>.a.b` given more
    than once (a flagfile line, then the command line), only the last occurrence kept, where it stands.
    `expanded`: `expand_argv(argv)` when the caller has it already (the flagfiles are then not read again).

    ml_collections appends a repeated tuple field instead of replacing it (`--config.optim.milestones=(900,)` in a
    flagfile, then `=(10,)` on the command line, gives (900, 10)); with this the command line replaces the
    flagfile for every field, as the README says."""
    prefix = re.compile(rf"^--?(?:no)?{re.escape(flag_name)}\.([^=]*)")
    flat = [text for text, _, _ in (expand_argv(argv) if expanded is None else expanded)]
    rest = argv[argv.index("--"):] if "--" in argv[1:] else []
    keys = [m.group(1) if (m := prefix.match(t)) else None for t in flat]
    last = {k: i for i, k in enumerate(keys) if k is not None}
    keep = [t for i, (t, k) in enumerate(zip(flat, keys)) if k is None or last[k] == i]
    return list(argv[:1]) + keep + list(rest)


_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}


def _check_value(text: str, tp: Any, field: str) -> Optional[str]:
    """None if `text` parses as type `tp` the way ml_collections will parse it, else the problem."""
    tp, optional = _strip_optional(tp)
    if optional and text.strip().lower() == "none":
        return None
    origin = typing.get_origin(tp)
    try:
        if tp is bool:
            if text.strip().lower() not in _TRUE | _FALSE:
                return f"expected true or false, got {text!r}"
        elif tp is int:
            int(text, 0)
        elif tp is float:
            float(text)
        elif tp is str:
            pass
        elif origin is tuple or tp is tuple:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text  # a bare string: one-element tuple of str
            if not isinstance(value, (tuple, list)):
                value = (value,)
            args = typing.get_args(tp)
            elem = args[0] if args else Any
            for v in value:
                if elem is int and (not isinstance(v, int) or isinstance(v, bool)):
                    return f"expected a tuple of integers like (1, 2), got {text!r}"
                if elem is float and (not isinstance(v, (int, float)) or isinstance(v, bool)):
                    return f"expected a tuple of numbers like (0.5, 1.0), got {text!r}"
                if elem is str and not isinstance(v, str):
                    return f"expected a tuple of strings like ('a', 'b'), got {text!r}"
        elif isinstance(tp, type) and issubclass(tp, enum.Enum):
            names = {m.name.lower() for m in tp}
            if text.strip().lower() not in names:
                return f"expected one of {sorted(names)}, got {text!r}"
        elif dataclasses.is_dataclass(tp):
            return f"{field} is a group of settings; set its fields (--config.{field}.<name>=...)"
        elif isinstance(tp, str):
            return (f"field {field} has the string annotation {tp!r}: remove `from __future__ import annotations` "
                    "from the config module (ml_collections needs real types)")
    except ValueError:
        return f"expected {_type_name(tp)}, got {text!r}"
    return None


def checked_argv(experiment: Any, argv: list[str], flag_name: str = "config") -> list[str]:
    """`check_overrides` then `last_overrides`, with the flagfiles read once: the argv a train script hands to
    absl (every `--flagfile` expanded, the last of each override kept), or ConfigError for the first bad line."""
    expanded = expand_argv(argv)
    check_overrides(experiment, argv, flag_name, expanded=expanded)
    return last_overrides(argv, flag_name, expanded=expanded)


def check_overrides(experiment: Any, argv: list[str], flag_name: str = "config", *,
                    expanded: Optional[list[tuple[str, str, int]]] = None) -> None:
    """Checks every `--<flag_name>.a.b=value` in argv and in the flagfiles argv names against the dataclass
    `experiment`: the path must name a field and the value must parse as its type. Raises ConfigError with
    `file:line: --config.a.b: problem` for the first bad line. `expanded`: `expand_argv(argv)` when the caller has
    it already."""
    prefix = re.compile(rf"^--?(no)?{re.escape(flag_name)}\.([^=]*)(=(.*))?$", re.S)
    for text, source, line in expand_argv(argv) if expanded is None else expanded:
        m = prefix.match(text)
        if not m:
            continue
        negated, path, has_value, value = m.group(1), m.group(2), m.group(3), m.group(4)
        where = f"{source}:{line}" if line else source
        flag = text.split("=", 1)[0]
        holder_cls = type(experiment)
        parts = path.split(".")
        tp: Any = None
        for depth, part in enumerate(parts):
            if not dataclasses.is_dataclass(holder_cls):
                parent = ".".join(parts[:depth])
                raise ConfigError(f"{where}: {flag}: {flag_name}.{parent} has no fields (it is a "
                                  f"{_type_name(holder_cls)})")
            types_ = _field_types(holder_cls)
            if part not in types_:
                group = ".".join([flag_name] + parts[:depth])
                raise ConfigError(
                    f"{where}: {flag}: unknown field {part!r} in {group} ({holder_cls.__name__})"
                    f"{_suggest(part, types_)}"
                )
            tp = types_[part]
            holder_cls, _ = _strip_optional(tp)
        base, _ = _strip_optional(tp)
        if dataclasses.is_dataclass(base) and not (has_value and value.strip().lower() == "none"):
            raise ConfigError(f"{where}: {flag}: {flag_name}.{path} is a group of settings; set its fields "
                              f"(--{flag_name}.{path}.<name>=...)")
        if negated or not has_value:
            if base is not bool:
                raise ConfigError(f"{where}: {flag}: needs a value (--{flag_name}.{path}=...)")
            continue
        problem = _check_value(value, tp, path)
        if problem:
            raise ConfigError(f"{where}: {flag}: {problem}")
