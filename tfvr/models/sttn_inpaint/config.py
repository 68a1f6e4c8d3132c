"""Typed configs of STTN-I's two networks. Fields are exactly the constructors' arguments (and `get_config()`)."""

import dataclasses
from dataclasses import dataclass, field

# The released model's reference resolution: frames are resized to 432x240 (w x h) in the authors' test.py.
REFERENCE_HEIGHT = 240
REFERENCE_WIDTH = 432


@dataclass
class GeneratorConfig:
    """`STTNInpaintGenerator(**asdict(cfg))`.

    channels: transformer width (256 in the release). num_blocks: transformer blocks (8).
    patch_divisors: one head per entry; head i attends over patches of (feature_w / d_i, feature_h / d_i).
      (1, 3, 6, 12) reproduces the released (108,60), (36,20), (18,10), (9,5) at 432x240.
    mask_attention: False = as released (hole mask never reaches the scores); True = corrected variant.
    conv_impl: "direct" | "auto" | "winograd" | "winograd_cc": how the 3x3 convs are computed (same weights and
      function; "auto" (default) uses Winograd F(4x4, 3x3) with the compiled transforms where it was measured faster on the conv
      and the library is loaded, see `generator.use_winograd_cc` and `generator.use_winograd`).
    """

    channels: int = 256
    num_blocks: int = 8
    patch_divisors: tuple[int, ...] = (1, 3, 6, 12)
    mask_attention: bool = False
    conv_impl: str = "auto"


@dataclass
class DiscriminatorConfig:
    """`TPatchGANDiscriminator(**asdict(cfg))`.

    fold_batch_into_time: the authors read each device's batch of clips as one long clip. Training defaults to
      False here (clips kept apart) so that a step does not depend on the number of replicas; set True to train
      as the authors did on one device.
    spectral_norm_impl: "torch" (PyTorch's spectral_norm: what the authors train with) or "keras" (Keras'
      SpectralNormalization, a different training; see `TPatchGANDiscriminator`).
    """

    channels: int = 64
    use_spectral_norm: bool = True
    use_sigmoid: bool = False
    fold_batch_into_time: bool = False
    spectral_norm_impl: str = "torch"


@dataclass
class ModelConfig:
    """Both networks plus the resolution the generator is trained and served at (H and W multiples of 4, and of
    4·max(patch_divisors) when patch sizes are derived: 48 for the default heads)."""

    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    height: int = REFERENCE_HEIGHT
    width: int = REFERENCE_WIDTH


def as_kwargs(cfg) -> dict:
    """Constructor kwargs from a config dataclass (tuples kept as tuples, nested sequences too)."""

    def fix(v):
        if isinstance(v, (list, tuple)):
            return tuple(fix(x) for x in v)
        return v

    return {f.name: fix(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
