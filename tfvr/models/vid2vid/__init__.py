"""vid2vid (Wang et al., NeurIPS 2018) as NVIDIA/vid2vid computes it: flow-warping sequential generator,
multi-scale image discriminator and multi-scale temporal discriminators."""

from tfvr.models.vid2vid.convert import discriminator_from_nvidia, from_nvidia
from tfvr.models.vid2vid.discriminator import MultiscaleDiscriminator, VideoDiscriminator
from tfvr.models.vid2vid.generator import CompositeGenerator, CompositeLocalGenerator

__all__ = [
    "CompositeGenerator",
    "CompositeLocalGenerator",
    "MultiscaleDiscriminator",
    "VideoDiscriminator",
    "from_nvidia",
    "discriminator_from_nvidia",
]
