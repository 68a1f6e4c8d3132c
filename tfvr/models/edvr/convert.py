"""BasicSR EDVR weights → tfvr `EDVR`.

`from_basicsr(state_dict, **basicsr_kwargs)` builds `tfvr.models.edvr.EDVR` from BasicSR's `EDVR(...)` constructor
kwargs and loads a BasicSR state dict (a dict of NumPy arrays keyed by BasicSR names, e.g. from
`tfvr.export.torch_state.load_state_dict`), or leaves the random initialisation when `state_dict` is None.

Conversions (checked by the golden parity tests):
* every conv: OIHW → HWIO;
* `upconv1`, `upconv2` feed PyTorch's PixelShuffle: their output channels are permuted to `tf.nn.depth_to_space`
  order (`tfvr.layers.pixel_shuffle.torch_to_depth_to_space_permutation`);
* DCNv2Pack (`*.dcn_pack.l{1,2,3}`, `cas_dcnpack`) → `tfvr.layers.deform_conv.ModulatedDeformConv2D`:
  `weight`/`bias` → `kernel`/`bias`, `conv_offset.weight`/`.bias` → `offset_kernel`/`offset_bias`. tfvr's deformable conv reads offsets in torchvision's interleaved (Δy, Δx)
  order, the order BasicSR's cat(o1, o2) produces, so `conv_offset` needs no row permutation (module docstring of
  `tfvr.ops.deform_conv`);
* module names: BasicSR's `nn.ModuleDict` / `nn.Sequential` children (`pcd_align.offset_conv1.l3`,
  `feature_extraction.0`) are attributes of the Keras layers (`pcd_align.offset_conv1_l3`,
  `feature_extraction[0]`); `EDVR.torch_layer_map()` is the one place that lists the correspondence.

`infer_basicsr_kwargs(state_dict)` reads the architecture back from the weight shapes (everything except
`center_frame_idx`, which has no weights). `convert_cli(state_dict, preset, kwargs)` is the hook of
`tfvr convert-weights --arch edvr`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping

import keras
import numpy as np

from tfvr.errors import ConfigError, UserError
from tfvr.export.torch_state import StateDict, conv2d_kernel, set_layer_weights
from tfvr.layers.pixel_shuffle import torch_to_depth_to_space_permutation
from tfvr.layers.residual import ResidualBlockNoBN
from tfvr.models.edvr.config import EDVRConfig
from tfvr.models.edvr.model import EDVR

_PIXEL_SHUFFLE_CONVS = ("upconv1", "upconv2")


def _is_dcn(layer) -> bool:
    return type(layer).__name__ == "ModulatedDeformConv2D"


def make_config(basicsr_kwargs: Mapping | None = None, **tfvr_kwargs) -> EDVRConfig:
    """`EDVRConfig` from BasicSR constructor kwargs (+ tfvr's own fields); unknown names raise ConfigError."""
    kwargs = dict(basicsr_kwargs or {}, **tfvr_kwargs)
    known = {f.name for f in dataclasses.fields(EDVRConfig)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ConfigError(f"unknown EDVR argument(s) {unknown}; known: {sorted(known)}")
    return EDVRConfig(**kwargs)


def from_basicsr(state_dict: Mapping[str, np.ndarray] | None = None, *, source: str = "state dict",
                 **basicsr_kwargs) -> EDVR:
    """Builds `EDVR(**basicsr_kwargs)` (BasicSR's constructor kwargs, plus tfvr's `dcn_impl` / `pad_mode`) and loads
    `state_dict` (BasicSR names → NumPy arrays, PyTorch layouts) into it; None keeps the random initialisation.

    Returns the built Keras model: input `[B, T, H, W, 3]` float in [0, 1], output `[B, sH, sW, 3]`.
    Raises `UserError` for missing, unused or mis-shaped weights (naming `source`).
    """
    cfg = make_config(basicsr_kwargs)
    model = EDVR(**cfg.to_kwargs())
    model.build_for_weights()
    if state_dict is not None:
        load_basicsr_weights(model, state_dict, source=source)
    return model


def load_basicsr_weights(model: EDVR, state_dict: Mapping[str, np.ndarray], source: str = "state dict") -> EDVR:
    """Assigns a BasicSR EDVR state dict to a built `EDVR`; every weight must be used exactly once."""
    sd = state_dict if isinstance(state_dict, StateDict) else StateDict(state_dict, source=source)
    for prefix, layer in model.torch_layer_map().items():
        if isinstance(layer, ResidualBlockNoBN):
            _set_conv(layer.conv1, sd, f"{prefix}.conv1")
            _set_conv(layer.conv2, sd, f"{prefix}.conv2")
        elif _is_dcn(layer):
            _set_dcn(layer, sd, prefix)
        else:
            perm = None
            if prefix in _PIXEL_SHUFFLE_CONVS:
                perm = torch_to_depth_to_space_permutation(layer.filters, 2)
            _set_conv(layer, sd, prefix, perm)
    sd.assert_all_used()
    return model


def _set_conv(layer, sd: StateDict, prefix: str, out_perm=None) -> None:
    kernel, bias = sd.conv2d(prefix)
    if out_perm is not None:
        kernel, bias = kernel[..., out_perm], bias[out_perm]
    _assign(layer, [kernel, bias], sd, prefix)


def _assign(layer, arrays, sd: StateDict, prefix: str) -> None:
    try:
        set_layer_weights(layer, arrays, name=prefix)
    except ValueError as e:
        raise UserError(f"{sd.source}: {e} (wrong --preset / constructor kwargs?)") from None


def _set_dcn(layer, sd: StateDict, prefix: str) -> None:
    # torchvision's offset order == tfvr's order, so conv_offset needs only the OIHW → HWIO transpose.
    _assign_vars(layer, {
        "offset_kernel": conv2d_kernel(sd.take(f"{prefix}.conv_offset.weight")),
        "offset_bias": sd.take(f"{prefix}.conv_offset.bias"),
        "kernel": conv2d_kernel(sd.take(f"{prefix}.weight")),
        "bias": sd.take(f"{prefix}.bias"),
    }, sd, prefix)


def _assign_vars(layer, values: dict, sd: StateDict, prefix: str) -> None:
    for attr, value in values.items():
        var = getattr(layer, attr)
        if tuple(var.shape) != tuple(value.shape):
            raise UserError(f"{sd.source}: {prefix}: {attr} has shape {tuple(var.shape)}, the weights have "
                            f"{tuple(value.shape)} (wrong --preset / constructor kwargs?)")
        var.assign(value.astype(var.dtype))


def to_basicsr(model: EDVR) -> dict[str, np.ndarray]:
    """The inverse of `load_basicsr_weights`: a BasicSR-named state dict (PyTorch layouts, float32)."""
    out: dict[str, np.ndarray] = {}

    def put(prefix, kernel, bias, inv_perm=None):
        k, b = np.asarray(kernel), np.asarray(bias)
        if inv_perm is not None:
            k, b = k[..., inv_perm], b[inv_perm]
        out[f"{prefix}.weight"] = np.ascontiguousarray(k.transpose(3, 2, 0, 1))
        out[f"{prefix}.bias"] = b

    def put_conv(layer, prefix, inv_perm=None):
        put(prefix, layer.kernel.numpy(), layer.bias.numpy(), inv_perm)

    for prefix, layer in model.torch_layer_map().items():
        if isinstance(layer, ResidualBlockNoBN):
            put_conv(layer.conv1, f"{prefix}.conv1")
            put_conv(layer.conv2, f"{prefix}.conv2")
        elif _is_dcn(layer):
            put(prefix, layer.kernel.numpy(), layer.bias.numpy())
            put(f"{prefix}.conv_offset", layer.offset_kernel.numpy(), layer.offset_bias.numpy())
        else:
            inv = None
            if prefix in _PIXEL_SHUFFLE_CONVS:
                inv = np.argsort(torch_to_depth_to_space_permutation(layer.filters, 2))
            put_conv(layer, prefix, inv)
    return out


def infer_basicsr_kwargs(state_dict: Mapping[str, np.ndarray], source: str = "state dict") -> dict:
    """BasicSR `EDVR(...)` kwargs read from the weight shapes (`center_frame_idx` cannot be inferred: default)."""
    def shape(key):
        if key not in state_dict:
            raise UserError(f"{source}: no {key!r}: not a BasicSR EDVR state dict")
        return tuple(np.shape(state_dict[key]))

    with_predeblur = "predeblur.conv_first.weight" in state_dict
    first = "predeblur.conv_first.weight" if with_predeblur else "conv_first.weight"
    nf, num_in_ch = shape(first)[:2]
    with_tsa = "fusion.feat_fusion.weight" in state_dict
    fusion_in = shape("fusion.feat_fusion.weight" if with_tsa else "fusion.weight")[1]
    offset_out = shape("pcd_align.cas_dcnpack.conv_offset.weight")[0]

    def count(prefix):
        ids = {int(m.group(1)) for k in state_dict for m in [re.match(rf"{prefix}\.(\d+)\.", k)] if m}
        return max(ids) + 1 if ids else 0

    return dict(num_in_ch=num_in_ch, num_out_ch=shape("conv_last.weight")[0], num_feat=nf,
                num_frame=fusion_in // nf, deformable_groups=offset_out // 27,
                num_extract_block=count("feature_extraction"), num_reconstruct_block=count("reconstruction"),
                hr_in="predeblur.stride_conv_hr1.weight" in state_dict, with_predeblur=with_predeblur,
                with_tsa=with_tsa)


def convert_cli(state_dict: Mapping[str, np.ndarray], preset: str | None, kwargs: Mapping | None,
                source: str = "state dict") -> keras.Model:
    """Hook of `tfvr convert-weights --arch edvr`. The architecture comes from the preset if one is named, else it
    is inferred from the weight shapes; `kwargs` (BasicSR constructor kwargs and/or `dcn_impl`, `pad_mode`,
    `center_frame_idx`) override either."""
    from tfvr.models.edvr.presets import PRESETS

    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"unknown EDVR preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
        base = dict(PRESETS[preset])
    else:
        base = infer_basicsr_kwargs(state_dict, source)
    base.update(kwargs or {})
    try:
        return from_basicsr(state_dict, source=source, **base)
    except (ConfigError, ValueError, TypeError) as e:
        if isinstance(e, UserError):
            raise
        raise UserError(f"{source}: cannot build EDVR({base}): {e}") from None


_BLOCK_KEY = re.compile(r"^(feature_extraction|reconstruction)\.(\d+)\.(.*)$")


def init_from_state_dict(model: EDVR, state_dict: Mapping[str, np.ndarray], mode: str = "prefix",
                         source: str = "state dict") -> dict:
    """Initialises `model` from another EDVR's BasicSR-named weights, copying every tensor whose name and shape
    agree (BasicSR's `strict_load: false`); returns {"copied", "kept", "unused"} lists of names.

    `mode` "prefix": block i ← source block i (a 40-block model initialised from a 10-block one gets the 10 trained
    blocks first and 30 near-identity blocks after them: the EDVR authors' "initialise deeper networks from
    shallower ones"); "repeat": block i ← source block i mod n_source.
    """
    if mode not in ("prefix", "repeat"):
        raise ValueError(f"mode must be 'prefix' or 'repeat', got {mode!r}")
    dst = to_basicsr(model)
    n_src = {}
    for k in state_dict:
        m = _BLOCK_KEY.match(k)
        if m:
            n_src[m.group(1)] = max(n_src.get(m.group(1), 0), int(m.group(2)) + 1)
    copied, kept, used = [], [], set()
    for k, v in dst.items():
        sk = k
        m = _BLOCK_KEY.match(k)
        if k not in state_dict and mode == "repeat" and m and n_src.get(m.group(1)):
            sk = f"{m.group(1)}.{int(m.group(2)) % n_src[m.group(1)]}.{m.group(3)}"
        if sk in state_dict and tuple(np.shape(state_dict[sk])) == v.shape:
            dst[k] = np.asarray(state_dict[sk], np.float32)
            copied.append(k)
            used.add(sk)
        else:
            kept.append(k)
    if not copied:
        raise UserError(f"{source}: no weight matches the model by name and shape (a different num_feat, or not "
                        "an EDVR state dict?)")
    load_basicsr_weights(model, dst, source=source)
    return {"copied": copied, "kept": kept, "unused": sorted(set(state_dict) - used)}
