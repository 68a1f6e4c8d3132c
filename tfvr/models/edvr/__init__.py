"""EDVR (Wang et al., CVPRW 2019) for tfvr: PCD alignment + TSA fusion, BasicSR-compatible.

`EDVR` (the Keras model), `EDVRConfig`, `get_preset`, `from_basicsr` (BasicSR state dict → EDVR).
"""

from tfvr.family import lazy_exports

_EXPORTS = {
    "EDVR": "tfvr.models.edvr.model",
    "EDVRConfig": "tfvr.models.edvr.config",
    "PCDAlignment": "tfvr.models.edvr.model",
    "PredeblurModule": "tfvr.models.edvr.model",
    "TSAFusion": "tfvr.models.edvr.model",
    "PRESETS": "tfvr.models.edvr.presets",
    "get_preset": "tfvr.models.edvr.presets",
    "from_basicsr": "tfvr.models.edvr.convert",
    "infer_basicsr_kwargs": "tfvr.models.edvr.convert",
    "to_basicsr": "tfvr.models.edvr.convert",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
