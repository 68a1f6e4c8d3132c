"""Reading PyTorch state dicts (``.pth`` / ``.npz``) and converting their tensors to Keras layouts.

Family-agnostic: every ``tfvr.models.<family>.convert`` builds on this module.

Loading
    ``load_state_dict(path)`` returns ``dict[str, np.ndarray]`` keyed by PyTorch state-dict names.

    * ``.npz``: ``np.savez(path, **{name: tensor.numpy()})``. If the archive holds ``w/<name>`` keys (the layout of
      ``../shared/golden/*.npz``), only those are returned, with the ``w/`` prefix removed.
    * ``.pth`` / ``.pt`` / ``.ckpt`` / ``.bin``: read WITHOUT torch by ``tfvr.export.pth.read_pth`` (a restricted
      unpickler for the zip and the legacy ``torch.save`` formats: tensors become NumPy arrays, bfloat16 is widened
      to float32, every other global is refused, nothing in the file executes). Common wrappers are unwrapped: BasicSR's ``{"params": ...}`` /
      ``{"params_ema": ...}`` (``params_ema`` preferred when both exist, as BasicSR's test configs do), and
      ``{"state_dict": ...}`` / ``{"model": ...}``/ ``{"netG": ...}``; a leading ``module.`` (DataParallel) is
      stripped.
    * Any problem (missing file, not a state dict, a refused global) raises ``tfvr.errors.UserError`` naming
      the file.

    ``save_npz(state_dict, path)`` writes the NumPy form (atomically) so a machine without torch can convert later.

Layout helpers (PyTorch → Keras / TF, channels-last)
    ``conv2d_kernel``  OIHW → HWIO (``keras.layers.Conv2D``)
    ``conv3d_kernel``  OIDHW → DHWIO (``keras.layers.Conv3D``)
    ``conv_transpose2d_kernel``  ``ConvTranspose2d`` IOHW → HWOI (``keras.layers.Conv2DTranspose``, no flip)
    ``depthwise_conv2d_kernel``  (C·m, 1, H, W) → (H, W, C, m) (``keras.layers.DepthwiseConv2D``)
    ``linear_kernel``  (out, in) → (in, out) (``keras.layers.Dense``)

Consuming a state dict
    ``StateDict(arrays, source="file.pth")`` wraps the dict, records which keys were taken, and gives clear errors:
    ``take(key)``, ``conv2d(prefix)`` → (kernel_hwio, bias or None), ``linear(prefix)``, ``batch_norm(prefix)``,
    ``assert_all_used(ignore=...)``. ``set_layer_weights(layer, arrays, name)`` assigns with shape checks (builds
    nothing: the layer must be built).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from tfvr.errors import UserError

_WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model", "netG", "generator", "net")


# ----------------------------------------------------------------------------------------------- loading
def load_state_dict(path: str | os.PathLike, *, key: str | None = None) -> dict[str, np.ndarray]:
    """Loads a PyTorch state dict from ``.npz`` or ``.pth`` into ``{name: np.ndarray}`` (see the module docstring).

    ``key`` picks a wrapper entry explicitly (e.g. ``"params"`` instead of the preferred ``"params_ema"``).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix in (".pth", ".pt", ".ckpt", ".bin"):
        return _load_torch(path, key)
    raise UserError(f"{path}: unknown weight file type {suffix!r} (expected .pth, .pt, .ckpt or .npz)")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile.BadZipFile, ValueError (pickled object arrays), OSError
        raise UserError(f"{path}: not a readable .npz archive ({type(e).__name__}: {e})") from None
    if any(k.startswith("w/") for k in arrays):
        arrays = {k[2:]: v for k, v in arrays.items() if k.startswith("w/")}
    arrays = {k: v for k, v in arrays.items() if v.dtype != object}
    if not arrays:
        raise UserError(f"{path}: the archive holds no arrays")
    return _strip_module_prefix(arrays)


def _load_torch(path: Path, key: str | None) -> dict[str, np.ndarray]:
    from tfvr.export.pth import read_pth  # noqa: PLC0415 - restricted unpickler, no torch needed

    obj = _unwrap(read_pth(path), key, path)
    out = {str(name): value for name, value in obj.items() if isinstance(value, np.ndarray)}
    if not out:
        raise UserError(f"{path}: no tensors found in the state dict")
    return _strip_module_prefix(out)


def _unwrap(obj, key: str | None, path: Path) -> Mapping:
    if not isinstance(obj, Mapping):
        raise UserError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}")
    if key is not None:
        if key not in obj:
            raise UserError(f"{path}: no entry {key!r}; top-level keys: {sorted(map(str, obj))[:10]}")
        return _unwrap(obj[key], None, path)
    for k in _WRAPPER_KEYS:
        if k in obj and isinstance(obj[k], Mapping):
            return _unwrap(obj[k], None, path)
    return obj


def _strip_module_prefix(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if arrays and all(k.startswith("module.") for k in arrays):
        return {k[len("module."):]: v for k, v in arrays.items()}
    return arrays


def save_npz(state_dict: Mapping[str, np.ndarray], path: str | os.PathLike) -> Path:
    """Writes ``{name: array}`` as an uncompressed ``.npz`` (temp file + rename, so no half-written output)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp.npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **{k: np.asarray(v) for k, v in state_dict.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ----------------------------------------------------------------------------------------------- layouts
def conv2d_kernel(w: np.ndarray) -> np.ndarray:
    """PyTorch ``Conv2d.weight`` OIHW → Keras ``Conv2D.kernel`` HWIO."""
    _check_ndim(w, 4, "Conv2d weight (OIHW)")
    return np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)))


def conv3d_kernel(w: np.ndarray) -> np.ndarray:
    """PyTorch ``Conv3d.weight`` OIDHW → Keras ``Conv3D.kernel`` DHWIO."""
    _check_ndim(w, 5, "Conv3d weight (OIDHW)")
    return np.ascontiguousarray(np.transpose(w, (2, 3, 4, 1, 0)))


def conv_transpose2d_kernel(w: np.ndarray) -> np.ndarray:
    """PyTorch ``ConvTranspose2d.weight`` (I, O, H, W) → Keras ``Conv2DTranspose.kernel`` (H, W, O, I).

    Both frameworks define the transposed conv as the gradient of the forward conv, so no spatial flip is needed.
    Output padding / cropping conventions differ and are the caller's business (check numerically).
    """
    _check_ndim(w, 4, "ConvTranspose2d weight (IOHW)")
    return np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)))


def depthwise_conv2d_kernel(w: np.ndarray, in_channels: int) -> np.ndarray:
    """PyTorch depthwise ``Conv2d`` (groups=C) weight (C·m, 1, H, W) → Keras ``DepthwiseConv2D`` (H, W, C, m)."""
    _check_ndim(w, 4, "depthwise Conv2d weight")
    cm, one, kh, kw = w.shape
    if one != 1 or cm % in_channels:
        raise ValueError(f"not a depthwise weight for {in_channels} channels: shape {w.shape}")
    return np.ascontiguousarray(w.reshape(in_channels, cm // in_channels, kh, kw).transpose(2, 3, 0, 1))


def linear_kernel(w: np.ndarray) -> np.ndarray:
    """PyTorch ``Linear.weight`` (out, in) → Keras ``Dense.kernel`` (in, out)."""
    _check_ndim(w, 2, "Linear weight")
    return np.ascontiguousarray(w.T)


def _check_ndim(w: np.ndarray, ndim: int, what: str) -> None:
    if np.ndim(w) != ndim:
        raise ValueError(f"{what}: expected {ndim} dims, got shape {np.shape(w)}")


# ----------------------------------------------------------------------------------------------- consuming
class StateDict:
    """A state dict being consumed by a converter: tracks used keys, reports missing / unused ones clearly.

    Args:
        arrays: ``{name: np.ndarray}`` (PyTorch names and layouts).
        source: where it came from (a file name), used in error messages.
        dtype: every array taken is cast to this dtype (float32 by default; ``None`` keeps it).
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], source: str = "state dict", dtype=np.float32):
        self.arrays = dict(arrays)
        self.source = str(source)
        self.dtype = dtype
        self.used: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def keys(self) -> list[str]:
        return list(self.arrays)

    def has_prefix(self, prefix: str) -> bool:
        return any(k.startswith(prefix) for k in self.arrays)

    def take(self, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
        if key not in self.arrays:
            near = [k for k in self.arrays if k.rsplit(".", 1)[0] == key.rsplit(".", 1)[0]][:5]
            hint = f"; keys with the same prefix: {near}" if near else ""
            raise UserError(f"{self.source}: missing weight {key!r}{hint} (wrong --preset / constructor kwargs?)")
        value = self.arrays[key]
        if self.dtype is not None:
            value = value.astype(self.dtype)
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise UserError(f"{self.source}: {key!r} has shape {tuple(value.shape)}, the model expects "
                            f"{tuple(shape)} (wrong --preset / constructor kwargs?)")
        self.used.add(key)
        return value

    def take_optional(self, key: str) -> np.ndarray | None:
        return self.take(key) if key in self.arrays else None

    def conv2d(self, prefix: str) -> tuple[np.ndarray, np.ndarray | None]:
        """``<prefix>.weight`` (OIHW → HWIO) and ``<prefix>.bias`` (or None)."""
        return conv2d_kernel(self.take(f"{prefix}.weight")), self.take_optional(f"{prefix}.bias")

    def conv3d(self, prefix: str) -> tuple[np.ndarray, np.ndarray | None]:
        return conv3d_kernel(self.take(f"{prefix}.weight")), self.take_optional(f"{prefix}.bias")

    def linear(self, prefix: str) -> tuple[np.ndarray, np.ndarray | None]:
        return linear_kernel(self.take(f"{prefix}.weight")), self.take_optional(f"{prefix}.bias")

    def batch_norm(self, prefix: str) -> tuple[np.ndarray, ...]:
        """(gamma, beta, moving_mean, moving_variance), Keras ``BatchNormalization`` weight order."""
        self.used.update(k for k in (f"{prefix}.num_batches_tracked",) if k in self.arrays)
        return (self.take(f"{prefix}.weight"), self.take(f"{prefix}.bias"), self.take(f"{prefix}.running_mean"),
                self.take(f"{prefix}.running_var"))

    def unused(self, ignore: Iterable[str] = ()) -> list[str]:
        patterns = [re.compile(p) for p in ignore]
        return sorted(k for k in self.arrays if k not in self.used and not any(p.search(k) for p in patterns))

    def assert_all_used(self, ignore: Iterable[str] = (r"num_batches_tracked$",)) -> None:
        left = self.unused(ignore)
        if left:
            shown = ", ".join(left[:8]) + (f", … ({len(left)} in all)" if len(left) > 8 else "")
            raise UserError(f"{self.source}: weights not used by the model: {shown} "
                            "(wrong --preset / constructor kwargs, or a different architecture?)")


def set_layer_weights(layer, arrays: list[np.ndarray], name: str = "") -> None:
    """``layer.set_weights(arrays)`` with a shape check per weight and an error that names the layer."""
    current = layer.get_weights()
    label = name or getattr(layer, "path", None) or layer.name
    if len(current) != len(arrays):
        raise ValueError(f"{label}: the layer has {len(current)} weights, got {len(arrays)}")
    for cur, new, var in zip(current, arrays, layer.weights):
        if tuple(cur.shape) != tuple(np.shape(new)):
            raise ValueError(f"{label}: weight {var.name} has shape {tuple(cur.shape)}, got {tuple(np.shape(new))}")
    layer.set_weights([np.asarray(a, dtype=c.dtype) for a, c in zip(arrays, current)])
