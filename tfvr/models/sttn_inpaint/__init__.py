"""STTN-I: spatial-temporal transformer video inpainting (Zeng, Fu, Chao, ECCV 2020).

`STTNInpaintGenerator`, `TPatchGANDiscriminator`, `from_authors(state_dict)` (the released PyTorch weights).
"""

from .config import DiscriminatorConfig, GeneratorConfig, ModelConfig
from .convert import discriminator_from_authors, from_authors
from .discriminator import TPatchGANDiscriminator
from .generator import STTNInpaintGenerator

__all__ = [
    "DiscriminatorConfig",
    "GeneratorConfig",
    "ModelConfig",
    "STTNInpaintGenerator",
    "TPatchGANDiscriminator",
    "discriminator_from_authors",
    "from_authors",
]
