"""Presets of the released checkpoints, as data (``released.json`` beside this module).

Each preset names an official checkpoint by its file name, the constructor kwargs of the architecture that reads it,
the scores its authors publish and where to download it (text only: tfvr never downloads anything), with the source
of every figure. keras-hub keeps presets the same way, as data beside the model.

    list_presets(family=None) -> list[Preset]
    get(name) -> Preset                       (UserError naming the known ones for an unknown name)
    find_for_file(path) -> Preset | None      (by file name; vid2vid's latest_net_G0.pth also by its folder)
    resolve_pytorch_checkpoint(path, arch=None, preset=None, kwargs=None) -> (arch, kwargs)
        what ``tfvr export --from-pytorch FILE`` builds: the preset the file name matches, else ``arch`` with
        ``preset`` (a name from here or a family preset such as ``edvr_l``) and/or ``kwargs``, else for EDVR the
        kwargs inferred from the state dict (``tfvr.models.edvr.convert.infer_basicsr_kwargs``).

``Preset`` fields: name, family, arch, files (file names), kwargs (the reference constructor's keyword arguments,
what ``tfvr convert-weights --kwargs`` takes), state_key (the checkpoint entry holding the weights, or None),
scale, test (how the authors test it), config_source, scores (dicts: dataset, metric, channel, value, source, …),
download (url, how, source), notes, directory (the folder a generic file name must sit in, vid2vid), generator.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from tfvr.errors import UserError

FORMAT = "tfvr.presets/1"


@dataclass(frozen=True)
class Preset:
    name: str
    family: str
    arch: str
    files: tuple[str, ...]
    kwargs: dict
    scale: int = 1
    state_key: str | None = None
    test: dict = field(default_factory=dict)
    config_source: str = ""
    scores: tuple[dict, ...] = ()
    download: dict = field(default_factory=dict)
    notes: str = ""
    directory: str | None = None
    generator: dict | None = None

    @property
    def file(self) -> str:
        return self.files[0]

    def score_text(self) -> str:
        """The first published score, e.g. ``REDS4 RGB PSNR 31.09`` (``-`` when none is published)."""
        if not self.scores:
            return "-"
        s = self.scores[0]
        return f"{s['dataset']} {s.get('channel', '')} {s['metric']} {s['value']}".replace("  ", " ")

    def where_to_get(self) -> str:
        d = self.download
        return f"{self.file} is not here; get it from {d.get('url', '?')} ({d.get('how', '')})"

    def describe(self) -> str:
        lines = [f"{self.name}  ({self.family})",
                 f"  files:    {', '.join(self.files)}" + (f"  (in a folder named {self.directory})"
                                                           if self.directory else ""),
                 f"  arch:     {self.arch}   scale: x{self.scale}",
                 f"  kwargs:   {json.dumps(self.kwargs, sort_keys=True)}",
                 f"  config:   {self.config_source}"]
        if self.test:
            lines.append(f"  test:     {json.dumps(self.test, sort_keys=True)}")
        for s in self.scores or ({},):
            if s:
                extra = ", ".join(f"{k} {v}" for k, v in s.items()
                                  if k not in ("dataset", "metric", "channel", "value", "source", "row"))
                lines.append(f"  score:    {s['dataset']} {s.get('channel', '')} {s['metric']} {s['value']}"
                             + (f" ({extra})" if extra else "") + f"  [{s['source']}]")
            else:
                lines.append("  score:    none published")
        lines += [f"  download: {self.download.get('url', '')}", f"            {self.download.get('how', '')}",
                  f"            [{self.download.get('source', '')}]"]
        if self.notes:
            lines.append(f"  notes:    {self.notes}")
        return "\n".join(lines)


def _from_dict(d: dict) -> Preset:
    return Preset(name=d["name"], family=d["family"], arch=d["arch"], files=tuple(d["files"]), kwargs=dict(d["kwargs"]),
                  scale=int(d.get("scale", 1)), state_key=d.get("state_key"), test=dict(d.get("test") or {}),
                  config_source=d.get("config_source", ""), scores=tuple(d.get("scores") or ()),
                  download=dict(d.get("download") or {}), notes=d.get("notes", ""), directory=d.get("directory"),
                  generator=d.get("generator"))


@lru_cache(maxsize=1)
def _load() -> tuple[Preset, ...]:
    text = resources.files(__package__).joinpath("released.json").read_text(encoding="utf-8")
    data = json.loads(text)
    if data.get("format") != FORMAT:
        raise RuntimeError(f"tfvr/presets/released.json: format {data.get('format')!r}, expected {FORMAT!r}")
    return tuple(_from_dict(d) for d in data["presets"])


def list_presets(family: str | None = None) -> list[Preset]:
    return [p for p in _load() if family is None or p.family == family]


def get(name: str) -> Preset:
    for p in _load():
        if p.name == name:
            return p
    raise UserError(f"unknown preset {name!r}; known: {', '.join(p.name for p in _load())}")


def find_for_file(path: str | os.PathLike) -> Preset | None:
    """The preset whose released file name is ``path``'s name (None if none or, for a generic name such as
    ``latest_net_G0.pth``, if the parent folder does not say which one)."""
    path = Path(path)
    hits = [p for p in _load() if path.name in p.files]
    if len(hits) > 1 or any(p.directory for p in hits):
        hits = [p for p in hits if p.directory == path.parent.name]
    return hits[0] if len(hits) == 1 else None


def resolve_pytorch_checkpoint(path: str | os.PathLike, arch: str | None = None, preset: str | None = None,
                               kwargs: dict | None = None, state_dict=None) -> tuple[str, dict]:
    """``(arch, constructor kwargs)`` to convert the PyTorch checkpoint ``path`` (see the module docstring).

    Order: an explicit ``preset`` (a released preset name, or with ``arch`` a family preset name such as
    ``edvr_l``); else the preset ``path``'s file name matches; else ``arch`` with ``kwargs``; else, for EDVR, the
    kwargs read from the state dict (``state_dict`` if given, else loaded from ``path``). ``kwargs`` always
    override. A released preset whose file does not exist raises UserError saying where to get it.
    """
    path = Path(path)
    kwargs = dict(kwargs or {})
    chosen = None
    if preset is not None:
        if any(p.name == preset for p in _load()):
            chosen = get(preset)
        elif arch is None:
            raise UserError(f"unknown preset {preset!r}; known: {', '.join(p.name for p in _load())} "
                            "(or give --arch with one of the family's own presets)")
        else:
            return arch, {**_family_preset(arch, preset), **kwargs}
    else:
        chosen = find_for_file(path)
        if chosen is not None and arch is not None and arch != chosen.arch:
            chosen = None  # the user said otherwise
    if chosen is not None:
        if arch is not None and arch != chosen.arch:
            raise UserError(f"preset {chosen.name} is a {chosen.arch} checkpoint, not {arch}")
        if not path.is_file():
            raise UserError(f"{path}: no such file. {chosen.where_to_get()}")
        return chosen.arch, {**chosen.kwargs, **kwargs}
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if arch is None:
        raise UserError(f"{path}: not a released checkpoint tfvr knows by name (see `tfvr presets`); say what it "
                        f"is with --arch ({', '.join(_converter_names())}) and --preset or --kwargs")
    if kwargs or arch != "edvr":
        if arch == "vid2vid" and not kwargs:
            raise UserError(f"{path}: a vid2vid generator needs --preset or --kwargs (its config cannot be read "
                            "off the weights)")
        return arch, kwargs
    from tfvr.export.torch_state import load_state_dict  # noqa: PLC0415
    from tfvr.models.edvr.convert import infer_basicsr_kwargs  # noqa: PLC0415

    sd = state_dict if state_dict is not None else load_state_dict(path)
    return "edvr", infer_basicsr_kwargs(sd, source=str(path))


def _converter_names() -> list[str]:
    from tfvr.registry import converter_names  # noqa: PLC0415

    return converter_names()


def _family_preset(arch: str, name: str) -> dict:
    """A family's own architecture preset (its record's `presets`, `tfvr.registry`); STTN-I's "released" /
    "default" is its released checkpoint's configuration."""
    if arch == "sttn_inpaint" and name in ("released", "default"):
        return dict(get("sttn_inpaint_youtube_vos").kwargs)
    from tfvr.registry import families  # noqa: PLC0415

    fam = families().get(arch)
    PRESETS = fam.load_presets() if fam is not None else {}
    if name not in PRESETS:
        known = sorted(PRESETS) + [p.name for p in list_presets(arch)]
        raise UserError(f"unknown {arch} preset {name!r}; known: {', '.join(known) or 'none'}")
    return dict(PRESETS[name])
