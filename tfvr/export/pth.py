"""Reading PyTorch ``torch.save`` files without PyTorch: a restricted unpickler that rebuilds tensors as NumPy.

``read_pth(path) -> object`` returns the saved object (dicts, lists, tuples, numbers, strings) with every tensor
replaced by a ``np.ndarray``. Nothing in the file can execute: the unpickler resolves only the globals on
``ALLOWED_GLOBALS`` (tensor/parameter rebuild functions, storage types, ``collections.OrderedDict``, ``torch.Size``
and ``_codecs.encode``, each mapped to a NumPy-side replacement — no real torch or module object is ever looked up);
any other global (``os.system``, ``builtins.eval``, a model class, ``numpy.core.multiarray._reconstruct`` …)
raises ``tfvr.errors.UserError`` naming the file and the global. ``torch`` is never imported.

Formats
    * zip (``torch.save`` since torch 1.6): ``<archive>/data.pkl`` is the object pickle; each storage is the raw
      little-endian record ``<archive>/data/<key>``, referenced by the persistent id
      ``('storage', <StorageType>, key, location, numel)``; ``<archive>/byteorder`` (``little``/``big``, absent in
      old files = little).
    * legacy (``_use_new_zipfile_serialization=False``, and files written by torch < 1.6): five pickles in one
      stream — the magic number ``0x1950a86a20f9469cfc6c``, the protocol version (1001), ``sys_info``
      (``little_endian``, type sizes), the object pickle (persistent id
      ``('storage', <StorageType>, root_key, location, numel, view_metadata)``), the sorted list of storage keys —
      then, per key in that order, an int64 element count followed by the raw storage bytes.
    The old tar format (torch < 0.4) and TorchScript archives are refused with a message.

Tensors
    ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`` →
    ``as_strided`` view of the storage (bounds-checked) copied to a contiguous array; ``_rebuild_parameter``
    (``_with_state``) returns its data. Storages shared by several tensors are read once.
    dtypes: float64/32/16, bfloat16 (widened to float32 by a 16-bit shift: exact), int64/32/16/8, uint8, bool.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from tfvr.errors import UserError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage type name -> NumPy dtype ("bfloat16" is read as uint16 and widened).
STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16", "BFloat16Storage": "bfloat16",
    "LongStorage": "int64", "IntStorage": "int32", "ShortStorage": "int16", "CharStorage": "int8",
    "ByteStorage": "uint8", "BoolStorage": "bool",
}


class _StorageType:
    """Stands in for ``torch.<X>Storage`` in a persistent id (only its dtype is used)."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _Storage:
    """A flat storage: ``array`` holds its elements (uint16 for bfloat16), ``dtype`` the torch dtype name."""

    def __init__(self, array: np.ndarray, dtype: str):
        self.array = array
        self.dtype = dtype


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"tensor storage is a {type(storage).__name__}, not a storage")
    size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
    offset = int(storage_offset)
    if len(size) != len(stride) or any(s < 0 for s in size) or any(s < 0 for s in stride) or offset < 0:
        raise pickle.UnpicklingError(f"bad tensor geometry size={size} stride={stride} offset={offset}")
    flat = storage.array
    if 0 in size:
        out = np.zeros(size, flat.dtype)
    else:
        last = offset + sum((n - 1) * s for n, s in zip(size, stride))
        if last >= flat.size:
            raise pickle.UnpicklingError(f"tensor (size={size}, stride={stride}, offset={offset}) reads past the end "
                                         f"of its storage ({flat.size} elements)")
        item = flat.itemsize
        out = np.lib.stride_tricks.as_strided(flat[offset:], shape=size, strides=[s * item for s in stride],
                                              writeable=False).copy()
    if storage.dtype == "bfloat16":
        out = (out.astype(np.uint32) << 16).view(np.float32)
    return out


def _no_tensor(*args):
    return None


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


def _size(*args):
    return tuple(*args)


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    if not isinstance(obj, str):
        raise pickle.UnpicklingError("_codecs.encode of a non-string")
    return obj.encode(encoding, errors)


ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch", "Size"): _size,
    ("_codecs", "encode"): _codecs_encode,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: Path, load_storage, dry: bool = False):
        super().__init__(file)
        self._source = source
        self._load_storage = load_storage
        self._dry = dry

    def find_class(self, module, name):
        try:
            found = ALLOWED_GLOBALS[(module, name)]
            if self._dry and found is _rebuild_tensor_v2:
                return _no_tensor
            return found
        except KeyError:
            raise UserError(f"{self._source}: refusing to load global {module}.{name} (only tensors, numbers, "
                            "strings and containers are read from a .pth; nothing in the file is executed)") from None

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            kind = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
            raise UserError(f"{self._source}: refusing persistent object {kind!r} (only tensor storages are read)")
        if len(pid) < 5 or not isinstance(pid[1], _StorageType):
            raise pickle.UnpicklingError(f"malformed storage id {pid[:5]!r}")
        return self._load_storage(pid)


def _dtype(name: str, little: bool) -> np.dtype:
    dt = np.dtype("uint16" if name == "bfloat16" else name)
    return dt.newbyteorder("<" if little else ">") if dt.itemsize > 1 else dt


def _native(a: np.ndarray) -> np.ndarray:
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def read_pth(path: str | os.PathLike) -> object:
    """The object saved in a ``torch.save`` file, tensors as NumPy arrays (see the module docstring)."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        data = path.read_bytes()
    except UserError:
        raise
    except (OSError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: cannot read ({type(e).__name__}: {e})") from None
    if data[:2] == b"\x80\x02" or data[:1] == b"\x80":
        return _read_legacy(path, data)
    if len(data) > 262 and data[257:262] == b"ustar":
        raise UserError(f"{path}: a torch<0.4 tar checkpoint; re-save it with a newer torch (torch.save(torch.load(f)))")
    raise UserError(f"{path}: not a PyTorch checkpoint (neither a torch.save zip archive nor a legacy pickle)")


def _read_zip(path: Path) -> object:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            pkl = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
            if not pkl:
                hint = " (a TorchScript archive? export the state_dict instead)" if any(
                    n.endswith("constants.pkl") for n in names) else ""
                raise UserError(f"{path}: zip archive without <archive>/data.pkl: not a torch.save file{hint}")
            prefix = pkl[0][: -len("data.pkl")]
            little = True
            if prefix + "byteorder" in names:
                little = zf.read(prefix + "byteorder").strip() != b"big"
            cache: dict[str, _Storage] = {}

            def load_storage(pid):
                _, stype, key, _location, numel = pid[:5]
                key = str(key)
                if key not in cache:
                    record = f"{prefix}data/{key}"
                    if record not in names:
                        raise UserError(f"{path}: storage record {record} is missing (truncated file?)")
                    raw = zf.read(record)
                    dt = _dtype(stype.dtype, little)
                    if len(raw) < int(numel) * dt.itemsize:
                        raise UserError(f"{path}: storage {key} holds {len(raw)} bytes, expected "
                                        f"{int(numel) * dt.itemsize} (truncated file?)")
                    cache[key] = _Storage(_native(np.frombuffer(raw, dt, count=int(numel))), stype.dtype)
                return cache[key]

            return _unpickle(path, io.BytesIO(zf.read(pkl[0])), load_storage)
    except UserError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        raise UserError(f"{path}: corrupt torch zip archive ({type(e).__name__}: {e})") from None


def _unpickle(path: Path, f, load_storage, dry: bool = False):
    try:
        return _RestrictedUnpickler(f, path, load_storage, dry).load()
    except UserError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            struct.error, UnicodeDecodeError, MemoryError) as e:
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None


def _read_legacy(path: Path, data: bytes) -> object:
    f = io.BytesIO(data)

    def no_storage(pid):
        raise UserError(f"{path}: unexpected storage reference in the legacy header")

    magic = _unpickle(path, f, no_storage)
    if magic != LEGACY_MAGIC:
        raise UserError(f"{path}: a pickle file but not a torch.save checkpoint (no torch magic number)")
    protocol = _unpickle(path, f, no_storage)
    if protocol != LEGACY_PROTOCOL:
        raise UserError(f"{path}: unsupported legacy torch protocol version {protocol!r}")
    sys_info = _unpickle(path, f, no_storage)
    little = bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True

    # Storages come after the object pickle; record the references, fill them in once the keys are known.
    refs: dict[str, tuple[str, int]] = {}
    views: list[tuple[_Storage, str, int, int]] = []
    roots: dict[str, _Storage] = {}

    def load_storage(pid):
        _, stype, key, _location, numel = pid[:5]
        view = pid[5] if len(pid) > 5 else None
        key = str(key)
        refs.setdefault(key, (stype.dtype, int(numel)))
        if key not in roots:
            roots[key] = _Storage(np.empty(0, np.uint8), stype.dtype)
        if view is None:
            return roots[key]
        view_key, offset, view_size = view
        st = _Storage(np.empty(0, np.uint8), stype.dtype)
        views.append((st, key, int(offset), int(view_size)))
        return st

    # Tensors are rebuilt during unpickling, but their bytes come after the object pickle: pass 1 (dry: no tensor
    # is rebuilt) collects the storage references, then the storages are read, then pass 2 rebuilds the tensors.
    start = f.tell()
    _unpickle(path, f, load_storage, dry=True)
    obj_end = f.tell()
    keys = _unpickle(path, f, no_storage)
    if not isinstance(keys, list):
        raise UserError(f"{path}: malformed legacy checkpoint (storage key list missing)")
    for key in keys:
        head = f.read(8)
        if len(head) < 8:
            raise UserError(f"{path}: truncated legacy checkpoint (storage {key} missing)")
        (numel,) = struct.unpack("<q" if little else ">q", head)
        dtype_name = refs.get(str(key), ("uint8", 0))[0]
        dt = _dtype(dtype_name, little)
        raw = f.read(numel * dt.itemsize)
        if len(raw) < numel * dt.itemsize:
            raise UserError(f"{path}: truncated legacy checkpoint (storage {key}: {len(raw)} of "
                            f"{numel * dt.itemsize} bytes)")
        if str(key) in roots:
            roots[str(key)].array = _native(np.frombuffer(raw, dt))
    missing = [k for k in refs if k not in set(map(str, keys))]
    if missing:
        raise UserError(f"{path}: truncated legacy checkpoint (storages {missing[:3]} not stored)")
    for st, key, offset, size in views:
        st.array = roots[key].array[offset:offset + size]
    cache = {}

    def load_filled(pid):
        key = str(pid[2])
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return roots[key]
        k = (key, int(view[1]), int(view[2]))
        if k not in cache:
            cache[k] = _Storage(roots[key].array[k[1]:k[1] + k[2]], roots[key].dtype)
        return cache[k]

    return _unpickle(path, io.BytesIO(data[start:obj_end]), load_filled)  # pass 2: tensors with their data
