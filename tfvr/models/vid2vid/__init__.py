"""vid2vid (Wang et al., NeurIPS 2018) as NVIDIA/vid2vid computes it: flow-warping sequential generator,
multi-scale image discriminator and multi-scale temporal discriminators."""

from tfvr.family import lazy_exports

_EXPORTS = {
    "CompositeGenerator": "tfvr.models.vid2vid.generator",
    "CompositeLocalGenerator": "tfvr.models.vid2vid.generator",
    "MultiscaleDiscriminator": "tfvr.models.vid2vid.discriminator",
    "VideoDiscriminator": "tfvr.models.vid2vid.discriminator",
    "from_nvidia": "tfvr.models.vid2vid.convert",
    "discriminator_from_nvidia": "tfvr.models.vid2vid.convert",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
