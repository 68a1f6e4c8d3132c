"""tfvr's model families. Importing `tfvr.models` registers every family's training Task (see `tfvr.registry`).

The imports are explicit (no folder scanning): a new family adds its line here.

| family | package | Task name |
|---|---|---|
| STTN-R (Kim et al., ECCV 2018) | `tfvr.models.sttn_restore` | `sttn_restore` |
| EDVR (Wang et al., CVPRW 2019) | `tfvr.models.edvr` | `edvr` |
| STTN-I (Zeng et al., ECCV 2020) | `tfvr.models.sttn_inpaint` | `sttn_inpaint` |
| vid2vid (Wang et al., NeurIPS 2018) | `tfvr.models.vid2vid` | `vid2vid` |
| MemVSR (memory-augmented VSR, seed 004) | `tfvr.models.memvsr` | `memvsr` |
"""

FAMILIES = ("sttn_restore", "edvr", "sttn_inpaint", "vid2vid", "memvsr")


def register_all() -> None:
    """Imports every family's Task module, which registers it with `tfvr.registry`."""
    import tfvr.models.edvr.task  # noqa: F401
    import tfvr.models.memvsr.task  # noqa: F401
    import tfvr.models.sttn_inpaint.task  # noqa: F401
    import tfvr.models.sttn_restore.task  # noqa: F401
    import tfvr.models.vid2vid.task  # noqa: F401
