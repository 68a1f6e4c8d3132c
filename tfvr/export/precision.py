"""Reduced-precision serving graphs: `apply_precision(model, "bfloat16" | "float16" | "float32")`.

What `tfvr export --precision P` does to the model(s) of the serving module before the graph is traced:

* Every Keras layer inside gets the dtype policy `mixed_<P>` (Keras 3 mixed precision: variables stay float32,
  layers compute in P, reading their weights through an autocast). So convs, dense layers / matmuls and the
  attention matmuls run in P; the weights in the SavedModel stay **float32** (same files, same size as a float32
  export: the casts are a few µs per call and the weights are tiny next to the activations; a float32 checkpoint
  and a reduced-precision export share one set of numbers, and nothing is rounded twice).
* The outermost model keeps its float32 inputs (its call casts them itself), so the float32 frames reach the parts
  that need them (EDVR's upsampled base image, STTN-R's sampler).
* float32 where 16 bits are not safe, whatever P:
    - offsets / flows: every `ModulatedDeformConv2D` computes its offset-and-mask conv in float32 and samples
      with float32 positions (DCN kernels: float32 offsets/masks, float32 accumulation); STTN-R's flow head
      (`UNetFlow.out_conv`) is float32; vid2vid's flow and weight heads (`model_final_flow`, `model_final_w`)
      are float32 and its warp/composite runs in float32 (model code);
    - softmax: STTN-I's attention scores and softmax are float32 (in the model code, for every policy);
    - final residual adds: EDVR adds its residual to the float32 bilinear base in float32 (model code);
      STTN-R's `ResNetHead` and its `conv_last` are float32 so `reference + residual` is a float32 add.
  `FLOAT32_LAYERS` lists the layers kept float32, per model class.
* uint8 in, uint8 out: the serving functions convert to/from float32 outside the model, unchanged.

"float32" leaves the model as it is. The change is in place (layer policies are set on the given model); call it
on the model you are about to export. bfloat16 needs hardware support to be fast (AVX512-BF16/AMX on x86, any
recent GPU); without it TensorFlow emulates it and it is *slower* than float32 (see docs/performance.md).
"""

from __future__ import annotations

import json
import os
from typing import Iterable

PRECISIONS = ("float32", "bfloat16", "float16")
POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}

# Layers kept in float32, per model class: attribute paths from an instance of that class. "layers": just that
# layer (its sublayers keep the reduced policy); "subtrees": the layer and everything inside it.
FLOAT32_LAYERS = {
    # STTN-R: the raw (u, v, z) flow head; the ResNet head container and its last conv, so that
    # `reference + residual` is a float32 add.
    "UNetFlow": {"layers": ("out_conv",)},
    "ResNetHead": {"layers": ("", "conv_last")},
    # vid2vid (both scales): the flow head (× 20 px) and the occlusion weight head.
    "CompositeGenerator": {"subtrees": ("model_final_flow", "model_final_w")},
    "CompositeLocalGenerator": {"subtrees": ("model_final_flow", "model_final_w")},
}


def check_precision(precision: str) -> str:
    from tfvr.errors import UserError

    if precision not in PRECISIONS:
        raise UserError(f"--precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
    return precision


def _layers(model) -> list:
    return list(model._flatten_layers(include_self=True, recursive=True))  # noqa: SLF001 — no public walk


def _resolve(layer, attr_path: str):
    for name in [p for p in attr_path.split(".") if p]:
        layer = getattr(layer, name, None)
        if layer is None:
            return None
    return layer


def float32_set(model) -> set:
    """ids of the layers of `model` that `FLOAT32_LAYERS` keeps in float32."""
    import keras

    keep = set()
    for layer in _layers(model):
        rules = FLOAT32_LAYERS.get(type(layer).__name__)
        if not rules:
            continue
        for attr in rules.get("layers", ()):
            target = _resolve(layer, attr)
            if isinstance(target, keras.layers.Layer):
                keep.add(id(target))
        for attr in rules.get("subtrees", ()):
            target = _resolve(layer, attr)
            if isinstance(target, keras.layers.Layer):
                keep.update(id(t) for t in _layers(target))
    return keep


def apply_precision(models, precision: str) -> list:
    """Sets the compute dtype of `models` (a Keras model/layer or an iterable of them) for `precision` (see the
    module docstring). Returns the list of layer paths kept in float32 (for logs and tests)."""
    import keras

    from tfvr.layers.deform_conv import ModulatedDeformConv2D

    check_precision(precision)
    if isinstance(models, keras.layers.Layer):
        models = [models]
    kept = []
    policy = POLICIES[precision]
    for model in models:
        keep = float32_set(model)
        for layer in _layers(model):
            if precision == "float32" or id(layer) in keep:
                layer.dtype_policy = "float32"
                if precision != "float32":
                    kept.append(getattr(layer, "path", layer.name))
            else:
                layer.dtype_policy = policy
            if isinstance(layer, ModulatedDeformConv2D):
                layer.offset_dtype = "float32" if precision != "float32" else None
        # The outermost model casts its inputs itself (EDVR, STTN-R, ...) and keeps float32 copies where needed.
        model._convert_input_args = precision == "float32"  # noqa: SLF001 — Keras's input auto-cast switch
    return kept


def keras_layers_of(module) -> list:
    """The Keras models/layers held by a serving `tf.Module` (its direct attributes, e.g. `module.model`,
    `module.generator`)."""
    import keras

    found, seen = [], set()
    for value in vars(module).values():
        items = value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if isinstance(v, keras.layers.Layer) and id(v) not in seen:
                seen.add(id(v))
                found.append(v)
    return found


def apply_to_module(module, precision: str) -> list:
    """`apply_precision` on every Keras model of the serving `module`, and the precision recorded in its
    metadata (`assets/tfvr.json`, when the module has one). Returns the float32-kept layer paths."""
    check_precision(precision)
    kept = apply_precision(keras_layers_of(module), precision)
    record_precision(module, precision)
    return kept


def record_precision(module, precision: str) -> None:
    """Adds "precision" to a module's `metadata` dict and rewrites its metadata asset file, if it has both."""
    meta = getattr(module, "metadata", None)
    asset = getattr(module, "metadata_asset", None)
    if not isinstance(meta, dict):
        return
    meta["precision"] = precision
    path = getattr(asset, "asset_path", None)
    try:
        path = path.numpy().decode() if hasattr(path, "numpy") else path
    except Exception:  # noqa: BLE001
        path = None
    if path and os.path.isfile(path):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True, default=str)
        os.replace(tmp, path)


def float32_layers(models: Iterable) -> list:
    """Paths of the layers of `models` whose compute dtype is float32 (after `apply_precision`)."""
    out = []
    for model in models:
        out += [getattr(layer, "path", layer.name) for layer in _layers(model) if layer.compute_dtype == "float32"]
    return out
