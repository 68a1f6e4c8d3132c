"""tfvr's model families: one line each below, naming the module that holds the family's `FAMILY` record
(`tfvr.family.Family`: its Tasks, experiment config, model classes, converter, serving kind, presets).
`tfvr.registry` reads them on its first lookup. Adding a family: its folder, plus one line here
(CONTRIBUTING_MODELS.md).

| family | package | Task names |
|---|---|---|
| STTN-R (Kim et al., ECCV 2018) | `tfvr.models.sttn_restore` | `sttn_restore` |
| EDVR (Wang et al., CVPRW 2019) | `tfvr.models.edvr` | `edvr`, `edvr_stage2` |
| STTN-I (Zeng et al., ECCV 2020) | `tfvr.models.sttn_inpaint` | `sttn_inpaint` |
| vid2vid (Wang et al., NeurIPS 2018) | `tfvr.models.vid2vid` | `vid2vid` |
| MemVSR (memory-augmented VSR, seed 004) | `tfvr.models.memvsr` | `memvsr` |

Importing this package imports no family (the entries are module names, imported when the list is read).
"""

from __future__ import annotations

import importlib

FAMILIES: dict[str, str] = {
    "sttn_restore": "tfvr.models.sttn_restore.family",
    "edvr": "tfvr.models.edvr.family",
    "sttn_inpaint": "tfvr.models.sttn_inpaint.family",
    "vid2vid": "tfvr.models.vid2vid.family",
    "memvsr": "tfvr.models.memvsr.family",
}


def builtin_families() -> list:
    """The `Family` records of tfvr's own families, in the order above (imports each record's module)."""
    out = []
    for name, module in FAMILIES.items():
        fam = importlib.import_module(module).FAMILY
        if fam.name != name:
            raise ValueError(f"{module}: FAMILY.name is {fam.name!r}, listed as {name!r} in tfvr.models")
        out.append(fam)
    return out
