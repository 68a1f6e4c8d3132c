"""STTN-R (Kim et al., ECCV 2018): spatio-temporal flow U-Net + trilinear sampler + ResNet head, for denoising and
deblurring windows of 2N+1 frames. `STTNRestore` is the Keras model, `STTNRestoreConfig` its constructor arguments.
"""

from tfvr.models.sttn_restore.config import STTNRestoreConfig
from tfvr.models.sttn_restore.model import ResNetHead, STTNRestore, UNetFlow

__all__ = ["STTNRestore", "STTNRestoreConfig", "UNetFlow", "ResNetHead"]
