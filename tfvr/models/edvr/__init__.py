"""EDVR (Wang et al., CVPRW 2019) for tfvr: PCD alignment + TSA fusion, BasicSR-compatible.

`EDVR` (the Keras model), `EDVRConfig`, `get_preset`, `from_basicsr` (BasicSR state dict → EDVR).
"""

from tfvr.models.edvr.config import EDVRConfig
from tfvr.models.edvr.convert import from_basicsr, infer_basicsr_kwargs, to_basicsr
from tfvr.models.edvr.model import EDVR, PCDAlignment, PredeblurModule, TSAFusion
from tfvr.models.edvr.presets import PRESETS, get_preset

__all__ = ["EDVR", "EDVRConfig", "PCDAlignment", "PredeblurModule", "TSAFusion", "PRESETS", "get_preset",
           "from_basicsr", "infer_basicsr_kwargs", "to_basicsr"]
