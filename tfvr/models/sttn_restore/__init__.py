"""STTN-R (Kim et al., ECCV 2018): spatio-temporal flow U-Net + trilinear sampler + ResNet head, for denoising and
deblurring windows of 2N+1 frames. `STTNRestore` is the Keras model, `STTNRestoreConfig` its constructor arguments.
"""

from tfvr.family import lazy_exports

_EXPORTS = {
    "STTNRestore": "tfvr.models.sttn_restore.model",
    "STTNRestoreConfig": "tfvr.models.sttn_restore.config",
    "UNetFlow": "tfvr.models.sttn_restore.model",
    "ResNetHead": "tfvr.models.sttn_restore.model",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
