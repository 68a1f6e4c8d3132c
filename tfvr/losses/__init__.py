"""Losses shared by the families (all return float32 scalars; see each module for reductions)."""

from tfvr.losses.adversarial import (  # noqa: F401
    AdversarialLoss,
    adversarial_loss,
    discriminator_loss,
    feature_matching_loss,
    gan_feature_losses,
    generator_loss,
)
from tfvr.losses.perceptual import VGGLoss  # noqa: F401
from tfvr.losses.pixel import charbonnier, l1, masked_l1, masked_mean, mse, pixel_loss  # noqa: F401
from tfvr.losses.regularizers import flow_smoothness, total_variation  # noqa: F401
from tfvr.losses.temporal import flow_warp_losses  # noqa: F401
