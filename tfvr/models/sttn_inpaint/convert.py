"""Weights from the authors' PyTorch STTN (researchmm/STTN `model/sttn.py`) into the Keras networks.

    gen = from_authors(state_dict)                 # InpaintGenerator (e.g. sttn.pth's "netG") -> STTNInpaintGenerator
    disc = discriminator_from_authors(state_dict)  # Discriminator ("netD") -> TPatchGANDiscriminator

`state_dict` is `{name: np.ndarray}` with PyTorch names and layouts (`tfvr.export.torch_state.load_state_dict`
reads .pth or .npz and unwraps `{"netG": ...}`). On the command line:
`tfvr convert-weights --arch sttn_inpaint sttn.pth -o sttn.weights.h5 [--kwargs '{"mask_attention": true}']`.

Name map (generator): encoder.{0,2,4,6} -> enc0..enc3; transformer.i.attention.{query,key,value}_embedding ->
block{i}.attention.{query,key,value}; .output_linear.0 -> .output; transformer.i.feed_forward.conv.{0,2} ->
block{i}.ffn{1,2}; decoder.{0.conv,2,4.conv,6} -> dec0..dec3. Discriminator: conv.{0,2,4,6,8,10} -> conv0..conv5;
a spectrally normalised conv (`weight_orig`, `weight_u`, `weight_v`) keeps that state in a "torch"
`SpectralNormConv3D` (kernel = weight_orig, u, v: training continues exactly as the authors'), or, for
`spectral_norm_impl="keras"`, is stored as PyTorch evaluates it, `weight_orig / sigma` with sigma = u·(W v), with
`weight_u` as Keras's `vector_u`.
"""

from __future__ import annotations

import numpy as np

from tfvr.export.torch_state import StateDict, conv3d_kernel, set_layer_weights

from .config import GeneratorConfig, as_kwargs
from .discriminator import SpectralNormConv3D, TPatchGANDiscriminator
from .generator import STTNInpaintGenerator

_DISC_TORCH_INDEX = (0, 2, 4, 6, 8, 10)


def _as_state(state_dict, source) -> StateDict:
    return state_dict if isinstance(state_dict, StateDict) else StateDict(state_dict, source=source)


def infer_generator_kwargs(state_dict) -> dict:
    """channels and num_blocks read off the weights (everything else keeps its default)."""
    keys = list(state_dict.keys())
    blocks = {int(k.split(".")[1]) for k in keys if k.startswith("transformer.")}
    channels = state_dict["encoder.6.weight"].shape[0] if "encoder.6.weight" in keys else 256
    return {"channels": int(channels), "num_blocks": (max(blocks) + 1) if blocks else 8}


def from_authors(state_dict, source: str = "state dict", **kwargs) -> STTNInpaintGenerator:
    """Keras `STTNInpaintGenerator` holding the authors' `InpaintGenerator` weights.

    kwargs go to the constructor (e.g. `mask_attention=True`); channels / num_blocks default to what the weights
    say. The model takes `(masked_frames [B,T,H,W,3] in [-1,1], masks [B,T,H,W,1])` and returns [B,T,H,W,3].
    """
    sd = _as_state(state_dict, source)
    cfg = {**as_kwargs(GeneratorConfig()), **infer_generator_kwargs(sd.arrays), **kwargs}
    gen = STTNInpaintGenerator(**cfg)
    gen.build()
    load_generator_weights(gen, sd)
    return gen


def load_generator_weights(gen: STTNInpaintGenerator, state_dict, source: str = "state dict") -> None:
    sd = _as_state(state_dict, source)

    def conv(layer, prefix):
        kernel, bias = sd.conv2d(prefix)
        set_layer_weights(layer, [kernel, bias], prefix)

    for layer, idx in zip(gen.enc, (0, 2, 4, 6)):
        conv(layer, f"encoder.{idx}")
    for i, block in enumerate(gen.blocks):
        p = f"transformer.{i}"
        conv(block.attention.query, f"{p}.attention.query_embedding")
        conv(block.attention.key, f"{p}.attention.key_embedding")
        conv(block.attention.value, f"{p}.attention.value_embedding")
        conv(block.attention.out, f"{p}.attention.output_linear.0")
        conv(block.ffn1, f"{p}.feed_forward.conv.0")
        conv(block.ffn2, f"{p}.feed_forward.conv.2")
    for layer, prefix in zip(gen.dec, ("decoder.0.conv", "decoder.2", "decoder.4.conv", "decoder.6")):
        conv(layer, prefix)
    sd.assert_all_used()


def _torch_sigma(w_orig: np.ndarray, u: np.ndarray, v: np.ndarray) -> float:
    # torch.nn.utils.spectral_norm in eval: sigma = dot(u, W_mat @ v), W_mat = weight.reshape(out, -1).
    return float(np.dot(u, w_orig.reshape(w_orig.shape[0], -1) @ v))


def discriminator_from_authors(state_dict, source: str = "state dict", use_spectral_norm=None,
                               **kwargs) -> TPatchGANDiscriminator:
    """Keras `TPatchGANDiscriminator` from the authors' `Discriminator` weights (with or without SN).

    `use_spectral_norm` defaults to what the weights hold (`weight_orig` keys = SN).
    """
    sd = _as_state(state_dict, source)
    has_sn = any(k.endswith(".weight_orig") for k in sd.keys())
    if use_spectral_norm is None:
        use_spectral_norm = has_sn
    channels = int(sd.arrays["conv.0.weight_orig" if has_sn else "conv.0.weight"].shape[0])
    disc = TPatchGANDiscriminator(channels=kwargs.pop("channels", channels),
                                  use_spectral_norm=use_spectral_norm, **kwargs)
    disc.build()
    load_discriminator_weights(disc, sd)
    return disc


def load_discriminator_weights(disc: TPatchGANDiscriminator, state_dict, source: str = "state dict") -> None:
    """Loads the authors' `Discriminator` state dict into a built `disc` (see `discriminator_from_authors`)."""
    sd = _as_state(state_dict, source)
    for i, idx in enumerate(_DISC_TORCH_INDEX):
        p = f"conv.{idx}"
        layer = disc.conv_layer(i)
        if f"{p}.weight_orig" in sd and isinstance(layer, SpectralNormConv3D):
            # PyTorch's spectral norm, state as torch keeps it: weight_orig, u, v
            w = sd.take(f"{p}.weight_orig")
            layer.kernel.assign(conv3d_kernel(w).astype(np.float32))
            layer.u.assign(sd.take(f"{p}.weight_u").astype(np.float32))
            layer.v.assign(sd.take(f"{p}.weight_v").astype(np.float32))
            if sd.take_optional(f"{p}.bias") is not None:
                raise ValueError(f"{source}: {p}.bias: a spectrally normalised conv has no bias")
            continue
        if f"{p}.weight_orig" in sd:
            w = sd.take(f"{p}.weight_orig")
            u, v = sd.take(f"{p}.weight_u"), sd.take(f"{p}.weight_v")
            kernel = conv3d_kernel(w / _torch_sigma(w, u, v))
        else:
            u = None
            kernel = conv3d_kernel(sd.take(f"{p}.weight"))
        bias = sd.take_optional(f"{p}.bias")
        if layer.use_bias:
            if bias is None:
                bias = np.zeros([kernel.shape[-1]], np.float32)
            set_layer_weights(layer, [kernel, bias], p)
        else:
            if bias is not None and np.any(bias != 0):
                raise ValueError(f"{source}: {p}.bias is non-zero but the Keras conv has no bias "
                                 "(use_spectral_norm=True); convert with use_spectral_norm=False")
            set_layer_weights(layer, [kernel], p)
        wrapper = disc.convs[i]
        if u is not None and wrapper is not layer:
            wrapper.vector_u.assign(u.reshape(1, -1).astype(np.float32))
    sd.assert_all_used()


def convert_cli(state_dict, preset=None, kwargs=None, source: str = "state dict"):
    """`tfvr convert-weights --arch sttn_inpaint` entry point: a generator or a discriminator, by the keys.

    `kwargs` are the Keras constructor's (e.g. {"mask_attention": true}); the one preset is "released"."""
    kwargs = dict(kwargs or {})
    if preset not in (None, "", "released", "default"):
        raise ValueError(f"sttn_inpaint has one preset ('released'), got {preset!r}")
    keys = list(state_dict.keys() if not isinstance(state_dict, StateDict) else state_dict.keys())
    if any(k.startswith("encoder.") for k in keys):
        return from_authors(state_dict, source=source, **kwargs)
    if any(k.startswith("conv.") for k in keys):
        return discriminator_from_authors(state_dict, source=source, **kwargs)
    raise ValueError("not an STTN state dict: expected InpaintGenerator keys (encoder.*, transformer.*, decoder.*) "
                     "or Discriminator keys (conv.*)")
