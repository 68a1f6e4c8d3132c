"""STTN-I: spatial-temporal transformer video inpainting (Zeng, Fu, Chao, ECCV 2020).

`STTNInpaintGenerator`, `TPatchGANDiscriminator`, `from_authors(state_dict)` (the released PyTorch weights).
"""

from tfvr.family import lazy_exports

_EXPORTS = {
    "DiscriminatorConfig": "tfvr.models.sttn_inpaint.config",
    "GeneratorConfig": "tfvr.models.sttn_inpaint.config",
    "ModelConfig": "tfvr.models.sttn_inpaint.config",
    "STTNInpaintGenerator": "tfvr.models.sttn_inpaint.generator",
    "TPatchGANDiscriminator": "tfvr.models.sttn_inpaint.discriminator",
    "discriminator_from_authors": "tfvr.models.sttn_inpaint.convert",
    "from_authors": "tfvr.models.sttn_inpaint.convert",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
