"""tfvr.ops: warping and deformable convolution. `deform_conv2d` and `from_torchvision_offset` are re-exported
lazily (importing `tfvr.ops` stays cheap; TensorFlow loads on first use)."""

_LAZY = {"deform_conv2d": "tfvr.ops.deform_conv", "from_torchvision_offset": "tfvr.ops.deform_conv"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'tfvr.ops' has no attribute {name!r}")
