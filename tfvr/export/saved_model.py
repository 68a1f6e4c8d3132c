"""Writing a SavedModel that is known to load: `export(module, out_dir)`.

1. The serving functions of `module` (tf.functions with an input signature; `serving_default` is the default
   signature) are traced once, under the save context `tf.saved_model.save` uses (so the save reuses these traces
   instead of tracing every function a second time), and run in-process on example inputs.
2. The SavedModel is written to a temporary folder beside `out_dir`.
3. A fresh Python process that never imports tfvr (only tensorflow and numpy; it checks `sys.modules` at the
   end) loads it with `tf.saved_model.load`, runs every signature on the same inputs through
   `loaded.signatures[name]` - what TF Serving calls - and writes the outputs back.
4. The outputs must match the in-process ones (same names, shapes, dtypes; integer outputs within `int_atol`,
   float outputs within `atol + rtol * |expected|`).
5. Only then is the folder marked as tfvr's (`.tfvr-output`), given the user's umask (0755 folders / 0644 files
   by default, so a TF Serving process running as another user can read it), fsynced and renamed to `out_dir`
   (`tfvr.safety.atomic_dir`). Otherwise the temporary folder is deleted and `ExportError` says why (e.g. a
   custom op the fresh process cannot load: `Op type not registered`).

`out_dir` is checked first (`tfvr.safety.check_output`): it may not be, contain or lie inside an input (`inputs`,
e.g. the training run being exported) or a training workdir (unless `allow_inside_workdir`, for the run's own
`<workdir>/export`); an existing `out_dir` is replaced only with `overwrite=True` and only when it is tfvr's
export (the marker, or a folder holding nothing but a SavedModel).

A SavedModel from here loads in stock TF Serving as long as it uses only core TF ops (so tfvr's optional C++ DCN
kernel must not be inside an exported graph: export on the pure-TF path).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import tempfile
from typing import Callable, Mapping, Optional

import numpy as np
import tensorflow as tf

from tfvr.errors import UserError

__all__ = ["export", "ExportError", "find_signatures", "example_inputs", "run_in_fresh_process"]


class ExportError(UserError):
    """The SavedModel was not kept: it failed the reload check, or the target exists."""


def _is_signature_fn(obj) -> bool:
    return hasattr(obj, "get_concrete_function") and getattr(obj, "input_signature", None) is not None


def find_signatures(module: tf.Module) -> dict[str, Callable]:
    """Every attribute of `module` that is a tf.function with an input signature, by attribute name. If there is
    no `serving_default` but exactly one such function, it becomes `serving_default`."""
    found = {}
    for name in dir(type(module)):
        if name.startswith("_"):
            continue
        try:
            obj = getattr(module, name)
        except Exception:  # noqa: BLE001 - properties that fail are not signatures
            continue
        if _is_signature_fn(obj):
            found[name] = obj
    if "serving_default" not in found and len(found) == 1:
        found = {"serving_default": next(iter(found.values()))}
    return found


def _arg_names(fn) -> list[str]:
    specs = fn.input_signature
    names = []
    for i, spec in enumerate(specs):
        names.append(spec.name if getattr(spec, "name", None) else None)
    # fall back on the Python argument names
    try:
        params = [p for p in inspect.signature(fn.python_function).parameters if p != "self"]
    except (TypeError, ValueError, AttributeError):
        params = []
    return [n or (params[i] if i < len(params) else f"arg_{i}") for i, n in enumerate(names)]


def example_inputs(fn, batch: int = 1, other: int = 32, seed: int = 0) -> dict[str, np.ndarray]:
    """Random inputs shaped like `fn.input_signature` (unknown dims: `batch` for axis 0, `other` elsewhere);
    uint8 in [0, 255], floats in [0, 1], ints in [0, 2)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, spec in zip(_arg_names(fn), fn.input_signature):
        dims = [d if d is not None else (batch if i == 0 else other) for i, d in enumerate(spec.shape.as_list())]
        dt = spec.dtype
        if dt == tf.uint8:
            out[name] = rng.integers(0, 256, dims, dtype=np.uint8)
        elif dt.is_floating:
            out[name] = rng.uniform(0, 1, dims).astype(dt.as_numpy_dtype)
        elif dt.is_integer:
            out[name] = rng.integers(0, 2, dims).astype(dt.as_numpy_dtype)
        elif dt == tf.bool:
            out[name] = rng.integers(0, 2, dims).astype(bool)
        else:
            raise ExportError(f"cannot make an example input for {name} of dtype {dt.name}: pass examples")
    return out


def _normalize_outputs(out) -> dict[str, np.ndarray]:
    if isinstance(out, Mapping):
        return {k: np.asarray(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return {f"output_{i}": np.asarray(v) for i, v in enumerate(out)}
    return {"output_0": np.asarray(out)}


_RELOAD_SCRIPT = r"""
import json, sys, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
model_dir, inputs_path, outputs_path = sys.argv[1:4]
loaded = tf.saved_model.load(model_dir)
inputs = np.load(inputs_path, allow_pickle=False)
groups = {}
for key in inputs.files:
    sig, arg = key.split("/", 1)
    groups.setdefault(sig, {})[arg] = inputs[key]
results = {}
for sig, kwargs in groups.items():
    if sig not in loaded.signatures:
        raise SystemExit(f"signature {sig!r} not found; the SavedModel has {sorted(loaded.signatures)}")
    out = loaded.signatures[sig](**{k: tf.constant(v) for k, v in kwargs.items()})
    for name, value in out.items():
        results[f"{sig}/{name}"] = value.numpy()
np.savez(outputs_path, **results)
bad = sorted(m for m in sys.modules if m == "tfvr" or m.startswith("tfvr."))
if bad:
    raise SystemExit(f"the reload process imported tfvr modules: {bad[:5]}")
print(json.dumps({"ok": True, "signatures": sorted(loaded.signatures)}))
"""


def run_in_fresh_process(model_dir: str, inputs: Mapping[str, Mapping[str, np.ndarray]],
                         timeout: float = 600, label: Optional[str] = None) -> dict[str, dict[str, np.ndarray]]:
    """Loads `model_dir` in a new Python process (no tfvr import), runs `inputs` {signature: {arg: array}}
    through `loaded.signatures[...]`, returns {signature: {output: array}}. Raises ExportError on failure
    (naming `label`, default `model_dir`)."""
    label = label or model_dir
    with tempfile.TemporaryDirectory(prefix="tfvr-reload-") as scratch:
        in_path = os.path.join(scratch, "inputs.npz")
        out_path = os.path.join(scratch, "outputs.npz")
        flat = {f"{sig}/{arg}": np.asarray(v) for sig, kw in inputs.items() for arg, v in kw.items()}
        np.savez(in_path, **flat)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            proc = subprocess.run([sys.executable, "-c", _RELOAD_SCRIPT, os.path.abspath(model_dir), in_path,
                                   out_path], cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ExportError(f"{label}: reloading in a fresh process timed out after {timeout:.0f} s") from None
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or "").strip().splitlines() if ln.strip()]
            useful = [ln for ln in lines if "Error" in ln or "error" in ln or "not found" in ln or "imported" in ln]
            reason = (useful or lines or ["(no output)"])[-1].strip()
            raise ExportError(f"{label}: not exported, the SavedModel does not load and run in a fresh process "
                              f"without tfvr: {reason[:500]}")
        with np.load(out_path, allow_pickle=False) as z:
            out: dict[str, dict[str, np.ndarray]] = {}
            for key in z.files:
                sig, name = key.split("/", 1)
                out.setdefault(sig, {})[name] = z[key]
        return out


def _compare(sig: str, expected: dict, got: dict, atol: float, rtol: float, int_atol: int) -> Optional[str]:
    if set(expected) != set(got):
        return f"signature {sig!r}: outputs {sorted(got)} after reload, {sorted(expected)} in-process"
    for name, e in expected.items():
        g = got[name]
        if e.shape != g.shape:
            return f"signature {sig!r} output {name!r}: shape {g.shape} after reload, {e.shape} in-process"
        if e.dtype != g.dtype:
            return f"signature {sig!r} output {name!r}: dtype {g.dtype} after reload, {e.dtype} in-process"
        if e.dtype.kind in "iub":
            diff = int(np.max(np.abs(e.astype(np.int64) - g.astype(np.int64)))) if e.size else 0
            if diff > int_atol:
                return f"signature {sig!r} output {name!r}: max abs diff {diff} after reload (allowed {int_atol})"
        elif e.dtype.kind in "fc":
            if not np.allclose(g, e, atol=atol, rtol=rtol, equal_nan=True):
                diff = float(np.nanmax(np.abs(g.astype(np.float64) - e.astype(np.float64))))
                return f"signature {sig!r} output {name!r}: max abs diff {diff:.3g} after reload"
        elif not np.array_equal(e, g):
            return f"signature {sig!r} output {name!r}: values differ after reload"
    return None


SAVED_MODEL_ENTRIES = {"saved_model.pb", "saved_model.pbtxt", "variables", "assets", "fingerprint.pb",
                       "keras_metadata.pb"}


def is_saved_model_only(path) -> bool:
    """True for a folder that holds a SavedModel and nothing else (an export written before the marker)."""
    try:
        names = set(os.listdir(path))
    except OSError:
        return False
    return ("saved_model.pb" in names or "saved_model.pbtxt" in names) and names <= SAVED_MODEL_ENTRIES


def export(module: tf.Module, out_dir: str, *, signatures: Optional[Mapping[str, Callable]] = None,
           examples: Optional[Mapping[str, Mapping[str, np.ndarray]]] = None, overwrite: bool = False,
           atol: float = 1e-4, rtol: float = 1e-4, int_atol: int = 1, timeout: float = 600,
           inputs=(), allow_inside_workdir: bool = False, precision: Optional[str] = None) -> str:
    """Exports `module` to `out_dir` as a SavedModel, keeping it only if it reloads in a fresh process and gives
    the in-process results (see the module docstring). Returns `out_dir`.

    Args:
        module: the tf.Module (it must track the variables its functions use, e.g. `self.model = model`).
        out_dir: final folder, e.g. `saved_models/<name>/<version>` (TF Serving layout).
        signatures: {name: tf.function with input signature}; default `find_signatures(module)`.
        examples: {signature: {arg: array}} inputs for the check; default `example_inputs(fn)` per signature.
        overwrite: replace an existing `out_dir` (only an export tfvr wrote).
        inputs: paths `out_dir` must not be, contain or lie inside (the training run being exported).
        allow_inside_workdir: `out_dir` may lie inside a training workdir (the run's own `<workdir>/export`).
        precision: None (the models as they are) or "float32" / "bfloat16" / "float16": the compute dtype of the
            serving graph, set on the module's Keras models before tracing (`tfvr.export.precision`, in place;
            weights stay float32; offsets, flows, softmax and final residual adds stay float32).
    """
    from tfvr.safety import OutputError, check_output

    out_dir = os.path.abspath(out_dir)
    try:
        check_output(out_dir, inputs, overwrite=overwrite, allow_inside_workdir=allow_inside_workdir,
                     what="export", owned=is_saved_model_only)
    except OutputError as e:
        raise ExportError(str(e)) from None
    sigs = dict(signatures) if signatures is not None else find_signatures(module)
    if not sigs:
        raise ExportError(f"{type(module).__name__} has no tf.function with an input_signature to serve")
    if "serving_default" not in sigs:
        raise ExportError(f"{type(module).__name__}: no 'serving_default' among the signatures {sorted(sigs)}")
    if precision is not None:
        from tfvr.export.precision import apply_to_module

        traced = [n for n, f in sigs.items() if getattr(f, "experimental_get_tracing_count", lambda: 0)()]
        if traced:  # a cached trace would keep the old dtypes
            raise ExportError(f"{type(module).__name__}: signatures {traced} were traced before the export; "
                              f"export(precision={precision!r}) needs a module whose functions were never called")
        apply_to_module(module, precision)
    examples = dict(examples) if examples is not None else {n: example_inputs(f) for n, f in sigs.items()}
    # Serving graphs must hold stock TF ops only (TF Serving cannot load tfvr's custom kernels), so every trace
    # below resolves the deformable convolution's impl="auto" to its pure-TF reference.
    from tensorflow.python.saved_model import save_context  # what tf.saved_model.save enters (deform_conv uses it too)

    from tfvr.ops.deform_conv import implementation

    for name in sigs:
        if name not in examples:
            raise ExportError(f"no example inputs for signature {name!r}")
    # One trace per signature: traced under the save context `tf.saved_model.save` uses (its options are part of
    # tf.function's cache key), so the save finds these traces instead of tracing every function again, and the
    # in-process results below come from the very graphs that are saved.
    options = tf.saved_model.SaveOptions()
    with implementation("reference"), save_context.save_context(options):
        concrete = {name: fn.get_concrete_function() for name, fn in sigs.items()}
    expected = {}
    for name, fn in concrete.items():
        kwargs = {k: tf.constant(v) for k, v in examples[name].items()}
        expected[name] = _normalize_outputs(fn(**kwargs))
    from tfvr.safety import atomic_dir

    with atomic_dir(out_dir) as tmp:
        with implementation("reference"):
            tf.saved_model.save(module, str(tmp), signatures=concrete, options=options)
        got = run_in_fresh_process(str(tmp), examples, timeout=timeout, label=out_dir)
        for name in sigs:
            problem = _compare(name, expected[name], got.get(name, {}), atol, rtol, int_atol)
            if problem:
                raise ExportError(f"{out_dir}: not exported, the reloaded SavedModel differs: {problem}")
    return out_dir


def describe(out_dir: str) -> str:
    """A short JSON description of a SavedModel's signatures (names, input/output specs) - for logs."""
    loaded = tf.saved_model.load(out_dir)
    desc = {}
    for name, fn in loaded.signatures.items():
        ins = {k: [v.dtype.name, v.shape.as_list()] for k, v in fn.structured_input_signature[1].items()}
        outs = {k: [v.dtype.name, v.shape.as_list()] for k, v in fn.structured_outputs.items()}
        desc[name] = {"inputs": ins, "outputs": outs}
    return json.dumps(desc)
