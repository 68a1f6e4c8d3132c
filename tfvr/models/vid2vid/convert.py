"""NVIDIA/vid2vid PyTorch state dicts ⇄ tfvr's Keras vid2vid networks.

The Keras networks keep PyTorch's module tree (`Sequence.items[i]` is torch index i, sub-layers carry the torch
attribute names), so a key such as `model_down_seg.10.conv_block.5.weight` is resolved by walking the path; no
name table to keep in sync. Every key must land on a variable and every variable must be given a value, otherwise
`ValueError` names what is missing or left over.

    gen = from_nvidia(torch.load("latest_net_G0.pth"), input_nc=..., ...)       # CompositeGenerator
    disc = discriminator_from_nvidia(torch.load("latest_net_D.pth"), input_nc=7, ndf=64, ...)
"""

from __future__ import annotations

import numpy as np

from tfvr.models.vid2vid.discriminator import MultiscaleDiscriminator
from tfvr.models.vid2vid.generator import CompositeGenerator
from tfvr.layers.torch_nn import Sequence, to_keras_array, to_torch_array, torch_params

# Keys PyTorch keeps for bookkeeping only.
_IGNORED_SUFFIXES = ("num_batches_tracked",)


def _numpy(v):
    if hasattr(v, "detach"):  # a torch tensor, when torch is installed
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def _child(node, part: str):
    if isinstance(node, Sequence) and part.isdigit():
        i = int(part)
        if i >= len(node.items):
            raise KeyError(part)
        return node.items[i]
    if isinstance(node, MultiscaleDiscriminator):
        return node.torch_child(part)
    child = getattr(node, part, None)
    if child is None:
        raise KeyError(part)
    return child


def _resolve(model, key: str):
    """(layer, torch parameter name) for a state-dict key."""
    *path, name = key.split(".")
    node = model
    for part in path:
        try:
            node = _child(node, part)
        except KeyError:
            raise ValueError(f"state-dict key {key!r}: the Keras model has no module {part!r} there") from None
    params = torch_params(node)
    if name not in params:
        raise ValueError(f"state-dict key {key!r}: {type(node).__name__} has no parameter {name!r}")
    return node, name


def iter_torch_modules(model, prefix: str = ""):
    """Yields (torch key prefix, layer) for every weight-holding layer, in PyTorch's state-dict order."""
    if isinstance(model, MultiscaleDiscriminator):
        for name, child in model.torch_children():
            yield from iter_torch_modules(child, f"{prefix}{name}.")
        return
    if isinstance(model, Sequence):
        for i, item in enumerate(model.items):
            yield from iter_torch_modules(item, f"{prefix}{i}.")
        return
    if torch_params(model):
        yield prefix[:-1], model
        return
    for name in getattr(model, "TORCH_CHILDREN", ()):
        if hasattr(model, name):
            yield from iter_torch_modules(getattr(model, name), f"{prefix}{name}.")


def load_state_dict(model, state_dict, *, partial: bool = False) -> tuple[int, int]:
    """Assigns a PyTorch state dict to a built Keras vid2vid network, strictly (see module docstring); with
    `partial` the model may have tensors the state dict lacks (they keep their values; never other shapes or keys
    the model lacks). Nothing is assigned unless every tensor fits. Returns (tensors copied, tensors kept)."""
    expected = {}
    for prefix, layer in iter_torch_modules(model):
        for name in torch_params(layer):
            expected[f"{prefix}.{name}"] = (layer, name)
    given = {k: v for k, v in state_dict.items() if not k.endswith(_IGNORED_SUFFIXES)}
    given = {k[len("module."):] if k.startswith("module.") else k: v for k, v in given.items()}
    for key in given:
        if key not in expected:
            _resolve(model, key)  # raises with the reason
            raise ValueError(f"state-dict key {key!r} does not match the model's layout")
    missing = sorted(set(expected) - set(given))
    if missing and not partial:
        raise ValueError(f"state dict lacks {len(missing)} parameters the model needs, e.g. {missing[:3]}")
    pending = []
    for key, value in given.items():
        layer, name = expected[key]
        var = torch_params(layer)[name]
        arr = to_keras_array(layer, name, _numpy(value))
        if tuple(arr.shape) != tuple(var.shape):
            raise ValueError(f"state-dict key {key!r}: shape {tuple(_numpy(value).shape)} does not fit the Keras "
                             f"variable {tuple(var.shape)} (after layout change {tuple(arr.shape)})")
        pending.append((var, arr))
    for var, arr in pending:
        var.assign(arr.astype(np.float32))
    return len(given), len(missing)


def state_dict(model) -> dict[str, np.ndarray]:
    """The PyTorch state dict of a built Keras vid2vid network (float32 NumPy arrays, PyTorch layouts)."""
    out = {}
    for prefix, layer in iter_torch_modules(model):
        for name, var in torch_params(layer).items():
            out[f"{prefix}.{name}"] = to_torch_array(layer, name, np.asarray(var))
    return out


def build_generator(**config) -> CompositeGenerator:
    """A `CompositeGenerator` with its variables created (called once on a small dummy input)."""
    import tensorflow as tf

    gen = CompositeGenerator(**config)
    size = 2 ** gen.n_downsampling * 4
    labels = tf.zeros([1, size, size, gen.input_nc])
    prev = tf.zeros([1, size, size, gen.prev_output_nc])
    mask = tf.zeros([1, size, size, 1]) if gen.use_fg_model else None
    gen(labels, prev, mask)
    return gen


def build_discriminator(**config) -> MultiscaleDiscriminator:
    import tensorflow as tf

    disc = MultiscaleDiscriminator(**config)
    size = 16 * 2 ** disc.num_D
    disc(tf.zeros([1, size, size, disc.input_nc]))
    return disc


def from_nvidia(state_dict_, **config) -> CompositeGenerator:
    """NVIDIA/vid2vid `CompositeGenerator` weights → a Keras `CompositeGenerator`.

    `config` are the constructor arguments, named as vid2vid's (`input_nc`, `output_nc`, `prev_output_nc`, `ngf`,
    `n_downsampling`, `n_blocks`, `use_fg_model`, `no_flow`, `norm`, optionally `padding_type`). A `module.`
    prefix (DataParallel checkpoints) is stripped. The returned model is in inference mode by default (BatchNorm
    uses the running statistics, as `netG.eval()`).
    """
    gen = build_generator(**config)
    load_state_dict(gen, state_dict_)
    return gen


def discriminator_from_nvidia(state_dict_, **config) -> MultiscaleDiscriminator:
    """NVIDIA/vid2vid (pix2pixHD) `MultiscaleDiscriminator` weights → a Keras `MultiscaleDiscriminator`."""
    config = dict(config)
    if "getIntermFeat" in config:
        config["get_interm_feat"] = config.pop("getIntermFeat")
    disc = build_discriminator(**config)
    load_state_dict(disc, state_dict_)
    return disc


# Presets for `tfvr convert-weights`: generator configs of NVIDIA/vid2vid's scripts. label2city_512
# (`scripts/street/train_512.sh`: --label_nc 35 --use_instance --fg, defaults ngf 128, n_downsample_G 3, n_blocks 9,
# n_frames_G 3, norm batch). The 1024/2048 checkpoints add CompositeLocalGenerators (netG1, netG2) that this
# preset does not convert.
PRESETS = {
    "label2city_512": dict(input_nc=(35 + 1) * 3, output_nc=3, prev_output_nc=6, ngf=128, n_downsampling=3,
                           n_blocks=9, use_fg_model=True, no_flow=False, norm="batch"),
}


def convert_cli(state_dict_, preset: str | None, kwargs: dict):
    """Entry point for `tfvr convert-weights --arch vid2vid`: returns the Keras generator.

    With `CompositeGenerator` kwargs (input_nc, ...) the result is that network (NVIDIA's netG0). With
    `Vid2VidGenerator` kwargs (`label_nc` given: label_nc, n_frames_G, use_instance, fg_labels, ngf, ...) it is a
    `Vid2VidGenerator` (one spatial scale) whose netG0 holds the weights: the whole streaming generator, with the
    label encoding and foreground classes a SavedModel export needs."""
    config = dict(PRESETS[preset]) if preset else {}
    config.update(kwargs or {})
    if not config:
        raise ValueError(f"vid2vid conversion needs a preset ({', '.join(PRESETS)}) or generator kwargs")
    if "label_nc" in config:
        return vid2vid_generator_from_nvidia(state_dict_, **config)
    return from_nvidia(state_dict_, **config)


def vid2vid_generator_from_nvidia(state_dict_, **config):
    """A `Vid2VidGenerator` (one spatial scale) holding NVIDIA's netG0 weights (`latest_net_G0.pth`)."""
    import tensorflow as tf

    from tfvr.models.vid2vid.generator import Vid2VidGenerator

    if int(config.get("n_scales_spatial", 1)) != 1:
        raise ValueError("only one spatial scale converts (netG0); the coarse-to-fine netG1/netG2 of the released "
                         "1024/2048 models are separate files this converter does not read")
    gen = Vid2VidGenerator(**config)
    size = gen.size_multiple * 4
    n = gen.n_frames_G
    labels = tf.zeros([1, n, size, size], tf.int32)
    inst = tf.zeros([1, n, size, size], tf.int32) if gen.use_instance else None
    gen(labels, tf.zeros([1, n - 1, size, size, gen.output_nc]), inst, training=False)
    load_state_dict(gen.netG0, state_dict_)
    return gen
