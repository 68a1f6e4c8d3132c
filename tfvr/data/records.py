"""The TFRecord format of prepared clips: one `tf.train.Example` per clip, in sharded files.

Schema (every clip has the first group; the rest are optional and empty when absent):

    frames         bytes list   T PNG-encoded uint8 RGB frames (the clean / sharp / HR ground truth)
    height, width  int64        frame size
    num_frames     int64        T
    source         bytes        the source video or sequence, relative to the prepared SRC_DIR
    scene          int64        scene index within the source (0 for frame-folder layouts)
    clip           int64        clip index within the source
    frame_indices  int64 list   T frame numbers in the source (a video's frame number, or a sequence's frame position)
    fps            float        frame rate of the source (0 when unknown, e.g. frame folders)
    lq             bytes list   T PNG paired degraded frames: GoPro blur, REDS / Vid4 / Vimeo LR (optional)
    lq_kind        bytes        what `lq` holds: "blur" / "blur_comp" (same size as frames: blurry, blurry and
                                compressed) or "lr" / "blur_lr" (frames / lq_scale: bicubic LR of the sharp /
                                of the blurry frames; REDS's four inputs)
    lq_height, lq_width  int64
    labels         bytes list   T 16-bit single-channel PNG semantic class maps (optional)
    instances      bytes list   T 16-bit single-channel PNG instance-id maps (optional)

Shards are named `<split>-00000-of-000NN.tfrecord`. `ShardWriter` writes them round-robin under temporary names
and renames them when closed. `list_shards` finds a split's complete set; `verify_shard` walks a file's record
framing (length + CRC, no data read) and its first Example, and raises `tfvr.errors.RecordError` naming the file
for a truncated or garbage shard. `parse_example` / `decode_frames` are the graph-mode readers the pipeline uses.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from tfvr.errors import RecordError

SHARD_RE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.tfrecord$")
PNG_COMPRESSION = 1  # zlib level: 1 encodes ~3x faster than the default 3 for ~5 % more bytes; decoding is the same


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


# ---------------------------------------------------------------------------------------------------------------
# PNG helpers (NumPy side)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 RGB [H, W, 3] image, or of a 16-bit single-channel [H, W] map (labels / instances)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 2:
        if image.min(initial=0) < 0 or image.max(initial=0) > 65535:
            raise ValueError("label / instance maps must be in 0..65535 to fit a 16-bit PNG")
        image = image.astype(np.uint16)
    else:
        raise ValueError(f"encode_png wants uint8 [H, W, 3] RGB or an integer [H, W] map, got {image.dtype} {image.shape}")
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def decode_png(data: bytes, label: bool = False) -> np.ndarray:
    """Inverse of `encode_png`: uint8 [H, W, 3] RGB, or int32 [H, W] when `label`."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ValueError("not a decodable PNG")
    if label:
        return arr.astype(np.int32)
    if arr.ndim == 2:
        arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR)
    if arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2BGR)
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def png_rgb8_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) if `data` is an 8-bit RGB PNG (colour type 2) that can be stored as it is, else None."""
    if len(data) < 33 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    interlace = data[28]
    if depth != 8 or colour != 2 or interlace != 0:
        return None
    return int(height), int(width)


# ---------------------------------------------------------------------------------------------------------------
# Clip -> Example


@dataclass
class Clip:
    """One training clip before serialisation.

    Image lists hold either arrays (uint8 [H, W, 3] RGB; int [H, W] for labels / instances) or already PNG-encoded
    bytes (then `height`/`width` must be given). `lq_kind` is "blur", "blur_comp", "lr" or "blur_lr" when `lq` is given.
    """

    frames: Sequence
    source: str
    frame_indices: Sequence[int]
    scene: int = 0
    clip: int = 0
    fps: float = 0.0
    lq: Sequence | None = None
    lq_kind: str = ""
    labels: Sequence | None = None
    instances: Sequence | None = None
    height: int = 0
    width: int = 0
    lq_height: int = 0
    lq_width: int = 0
    extra: dict = field(default_factory=dict)


_POOL = None


def _pool():
    """A small thread pool for PNG encoding (OpenCV releases the GIL while it compresses)."""
    global _POOL
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)), thread_name_prefix="tfvr-png")
    return _POOL


def _encode_list(images: Sequence, what: str) -> tuple[list[bytes], tuple[int, int]]:
    arrays = []
    size = None
    for img in images:
        if isinstance(img, (bytes, bytearray)):
            continue
        img = np.asarray(img)
        if size is None:
            size = img.shape[:2]
        elif img.shape[:2] != size:
            raise ValueError(f"{what}: frames of one clip must have one size, got {img.shape[:2]} and {size}")
        arrays.append(img)
    encoded = iter(list(_pool().map(encode_png, arrays)) if len(arrays) > 1 else [encode_png(a) for a in arrays])
    out = [bytes(img) if isinstance(img, (bytes, bytearray)) else next(encoded) for img in images]
    return out, (size or (0, 0))


# A `tf.train.Example` written without TensorFlow (a Beam worker then never imports it, ~5 s and ~0.6 GB per
# process): the protobuf wire format of example.proto / feature.proto, byte for byte what
# `tf.train.Example.SerializeToString(deterministic=True)` gives (map entries in upb's key order, key and value
# always written, packed int64 / float lists, an empty list still marks its oneof) - tests/data/test_records.py checks it.
def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # int64: negative values are their 10-byte two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:  # a length-delimited field (wire type 2), tag < 16
    return bytes([(tag << 3) | 2]) + _varint(len(payload)) + payload


def _feature(kind: str, values) -> bytes:
    if kind == "bytes":
        return _field(1, b"".join(_field(1, bytes(v)) for v in values))
    if kind == "float":
        packed = struct.pack(f"<{len(values)}f", *values)
        return _field(2, _field(1, packed) if values else b"")
    packed = b"".join(_varint(v) for v in values)
    return _field(3, _field(1, packed) if values else b"")


def _upb_key_order(a: bytes, b: bytes) -> int:
    # upb's deterministic map order (what tf.train.Example writes with protobuf's default upb backend): bytewise
    # on the common prefix, then the LONGER key first ("lq_height" before "lq")
    n = min(len(a), len(b))
    if a[:n] != b[:n]:
        return -1 if a[:n] < b[:n] else 1
    return len(b) - len(a)


def _serialize_example(feats: dict) -> bytes:
    import functools

    keys = sorted((k.encode() for k in feats), key=functools.cmp_to_key(_upb_key_order))
    entries = b"".join(_field(1, _field(1, k) + _field(2, _feature(*feats[k.decode()]))) for k in keys)
    return _field(1, entries)


def serialize_clip(clip: Clip) -> bytes:
    """The serialised `tf.train.Example` of a clip (see the module docstring for the schema), in pure Python."""

    def b(values):
        return ("bytes", list(values))

    def i(values):
        return ("int64", [int(v) for v in values])

    def f(values):
        return ("float", [float(v) for v in values])

    frames, (h, w) = _encode_list(clip.frames, "frames")
    t = len(frames)
    if t == 0:
        raise ValueError(f"{clip.source}: a clip needs at least one frame")
    if len(clip.frame_indices) != t:
        raise ValueError(f"{clip.source}: {t} frames but {len(clip.frame_indices)} frame indices")
    h, w = (h, w) if h else (clip.height, clip.width)
    if not h or not w:
        raise ValueError(f"{clip.source}: height/width must be given for PNG-encoded frames")
    feats = {
        "frames": b(frames),
        "height": i([h]),
        "width": i([w]),
        "num_frames": i([t]),
        "source": b([clip.source.encode()]),
        "scene": i([clip.scene]),
        "clip": i([clip.clip]),
        "frame_indices": i(clip.frame_indices),
        "fps": f([clip.fps]),
    }
    if clip.lq is not None and len(clip.lq):
        lq, (lh, lw) = _encode_list(clip.lq, "lq")
        lh, lw = (lh, lw) if lh else (clip.lq_height, clip.lq_width)
        if len(lq) != t:
            raise ValueError(f"{clip.source}: {t} frames but {len(lq)} lq frames")
        if clip.lq_kind not in ("blur", "blur_comp", "lr", "blur_lr"):
            raise ValueError(f"{clip.source}: lq_kind must be 'blur', 'blur_comp', 'lr' or 'blur_lr', "
                             f"got {clip.lq_kind!r}")
        feats.update(lq=b(lq), lq_kind=b([clip.lq_kind.encode()]), lq_height=i([lh]), lq_width=i([lw]))
    for name in ("labels", "instances"):
        maps = getattr(clip, name)
        if maps is not None and len(maps):
            enc, _ = _encode_list(maps, name)
            if len(enc) != t:
                raise ValueError(f"{clip.source}: {t} frames but {len(enc)} {name} maps")
            feats[name] = b(enc)
    # a fixed map order (deterministic serialisation), so the same clips give byte-identical shards
    return _serialize_example(feats)


def example_to_numpy(serialized: bytes) -> dict:
    """Decodes one serialised clip in Python: frames/lq uint8 [T, H, W, 3], labels/instances int32 [T, H, W]."""
    import tensorflow as tf

    ex = tf.train.Example.FromString(serialized)
    feat = ex.features.feature

    def ints(name, default=0):
        return list(feat[name].int64_list.value) if name in feat else default

    out = {
        "frames": np.stack([decode_png(x) for x in feat["frames"].bytes_list.value]),
        "source": feat["source"].bytes_list.value[0].decode() if "source" in feat else "",
        "scene": ints("scene", [0])[0],
        "clip": ints("clip", [0])[0],
        "frame_indices": np.asarray(ints("frame_indices", []), np.int64),
        "fps": feat["fps"].float_list.value[0] if "fps" in feat else 0.0,
    }
    if "lq" in feat and feat["lq"].bytes_list.value:
        out["lq"] = np.stack([decode_png(x) for x in feat["lq"].bytes_list.value])
        out["lq_kind"] = feat["lq_kind"].bytes_list.value[0].decode()
    for name in ("labels", "instances"):
        if name in feat and feat[name].bytes_list.value:
            out[name] = np.stack([decode_png(x, label=True) for x in feat[name].bytes_list.value])
    return out


# ---------------------------------------------------------------------------------------------------------------
# Writing shards


class ShardWriter:
    """Writes serialised clips round-robin into `num_shards` shards of one split, atomically.

    Files are written as `.<name>.tmp` and renamed to `<split>-NNNNN-of-NNNNN.tfrecord` by `close()`; `abort()` (or
    leaving a `with` block by an exception) deletes them. `counts[i]` is the number of clips in shard i.
    """

    def __init__(self, out_dir: str | os.PathLike, split: str, num_shards: int):
        import tensorflow as tf

        if not re.fullmatch(r"[A-Za-z0-9_]+", split):
            raise ValueError(f"split names are letters, digits and _, got {split!r}")
        if num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {num_shards}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.split = split
        self.names = [shard_name(split, k, num_shards) for k in range(num_shards)]
        self._tmp = [self.out_dir / f".{n}.tmp" for n in self.names]
        self._writers = [tf.io.TFRecordWriter(str(p)) for p in self._tmp]
        self.counts = [0] * num_shards
        self._next = 0
        self.closed = False

    def write(self, serialized: bytes) -> None:
        k = self._next
        self._writers[k].write(serialized)
        self.counts[k] += 1
        self._next = (k + 1) % len(self._writers)

    def close(self) -> list[Path]:
        for w in self._writers:
            w.close()
        paths = []
        for tmp, name in zip(self._tmp, self.names):
            os.replace(tmp, self.out_dir / name)
            paths.append(self.out_dir / name)
        self.closed = True
        return paths

    def abort(self) -> None:
        for w in self._writers:
            try:
                w.close()
            except Exception:  # noqa: BLE001 - best effort clean-up
                pass
        for tmp in self._tmp:
            tmp.unlink(missing_ok=True)
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self.closed:
            self.abort() if exc_type else self.close()


def write_records(path: str | os.PathLike, serialized: Iterable[bytes]) -> int:
    """Writes one TFRecord file (atomically: temp name, then rename). Returns the number of records."""
    import tensorflow as tf

    path = Path(path)
    tmp = path.parent / f".{path.name}.tmp"
    n = 0
    try:
        with tf.io.TFRecordWriter(str(tmp)) as w:
            for s in serialized:
                w.write(s)
                n += 1
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


# ---------------------------------------------------------------------------------------------------------------
# Finding and checking shards


def list_shards(records_dir: str | os.PathLike, split: str) -> list[str]:
    """The sorted shard paths of `split` in `records_dir`; `RecordError` if there are none or the set is incomplete."""
    d = Path(records_dir)
    if not d.is_dir():
        raise RecordError(f"{d}: no such directory (expected TFRecord shards written by `tfvr prepare`)")
    found: dict[int, set[int]] = {}
    for p in d.iterdir():
        m = SHARD_RE.match(p.name)
        if m and m["split"] == split:
            found.setdefault(int(m["count"]), set()).add(int(m["index"]))
    if not found:
        have = sorted({m["split"] for p in d.iterdir() if (m := SHARD_RE.match(p.name))})
        hint = f" (it has: {', '.join(have)})" if have else ""
        raise RecordError(f"{d}: no {split}-NNNNN-of-NNNNN.tfrecord shards{hint}")
    if len(found) > 1:
        raise RecordError(f"{d}: {split} shards of several sets ({sorted(found)} shards) are mixed in one directory")
    (count, indices), = found.items()
    missing = sorted(set(range(count)) - indices)
    if missing:
        raise RecordError(f"{d}: {split} shard set is incomplete: missing {shard_name(split, missing[0], count)}"
                          + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    return [str(d / shard_name(split, k, count)) for k in range(count)]


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def _crc_raw(c: int, data) -> int:  # the register after `data`, from register c (no final xor)
    for byte in data:
        c = _CRC_TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c


_CRC_NP: dict = {}
_CRC_LANE = 64  # bytes per lane of the vectorised CRC


def _crc_zeros_map(n: int):
    """The register map of n zero bytes (linear over GF(2)) as 4 byte tables: Z(x) = t0[x&255] ^ t1[..] ^ ..."""
    tabs = _CRC_NP.get(n)
    if tabs is None:
        basis = np.array([1 << j for j in range(32)], np.uint32)
        if n == 1:
            img = np.array([_crc_raw(int(x), b"\0") for x in basis], np.uint32)
        else:
            img = _crc_apply(_crc_zeros_map(n // 2), _crc_apply(_crc_zeros_map(n - n // 2), basis))
        v = np.arange(256, dtype=np.uint32)
        tabs = np.zeros((4, 256), np.uint32)
        for k in range(4):
            for j in range(8):
                tabs[k] ^= np.where((v >> j) & 1, img[8 * k + j], np.uint32(0))
        _CRC_NP[n] = tabs
    return tabs


def _crc_apply(tabs, x):
    return tabs[0][x & 0xFF] ^ tabs[1][(x >> 8) & 0xFF] ^ tabs[2][(x >> 16) & 0xFF] ^ tabs[3][x >> 24]


def _crc_lanes(buf: np.ndarray) -> int:
    """The register after `buf` (uint8) from register 0: zero bytes in front (they leave register 0 as it is) make
    it a power of two of 64-byte lanes; every lane's CRC at once (numpy over lanes), then neighbours combined,
    crc(A || B) = Z_len(B)(crc(A)) ^ crc(B), until one is left."""
    table = _CRC_NP.get("table")
    if table is None:
        table = _CRC_NP["table"] = np.array(_CRC_TABLE, np.uint32)
    lanes = 1 << max(0, (-(-len(buf) // _CRC_LANE) - 1).bit_length())
    pad = lanes * _CRC_LANE - len(buf)
    cols = np.concatenate([np.zeros(pad, np.uint8), buf]).reshape(lanes, _CRC_LANE).T.astype(np.uint32)
    c = np.zeros(lanes, np.uint32)
    for col in cols:
        c = table[(c ^ col) & 0xFF] ^ (c >> 8)
    n = _CRC_LANE
    while len(c) > 1:
        c = _crc_apply(_crc_zeros_map(n), c[0::2]) ^ c[1::2]
        n *= 2
    return int(c[0])


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) without TensorFlow: table-driven Python for short data, numpy over 64-byte lanes for
    long data (~100 MB/s; TensorFlow's C++ is faster but costs its import)."""
    if len(data) < 4 * _CRC_LANE:
        return _crc_raw(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    buf = np.frombuffer(data, np.uint8).copy()
    buf[:4] ^= np.uint8(0xFF)  # start register 0xFFFFFFFF == register 0 with it xor-ed into the first 4 bytes
    return _crc_lanes(buf) ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(data: bytes) -> tuple[bytes, bytes]:
    """The TFRecord framing of one record, (header, footer): 8-byte length and its masked CRC-32C, then the data,
    then the data's masked CRC-32C. What `tf.io.TFRecordWriter` writes (no compression), without TensorFlow."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)), struct.pack("<I", masked_crc32c(data))


def verify_shard(path: str | os.PathLike, deep: bool = False) -> int:
    """Checks a TFRecord shard and returns its number of records; raises `RecordError` naming the file.

    The quick check walks the record framing (every length and its CRC, seeking over the data) and parses the
    first record as a clip Example: it catches truncated files, garbage and files that are not tfvr clips in
    milliseconds. `deep=True` also reads every record through TensorFlow, which checks the data CRCs.
    """
    name = os.fspath(path)
    try:
        size = os.path.getsize(name)
    except OSError as e:
        raise RecordError(f"{name}: cannot read shard ({e.strerror or e})") from None
    n = 0
    first = None
    with open(name, "rb") as fh:
        pos = 0
        while pos < size:
            header = fh.read(12)
            if len(header) < 12:
                raise RecordError(f"{name}: truncated TFRecord shard (record {n} header cut off at byte {pos})")
            (length,) = struct.unpack("<Q", header[:8])
            (crc,) = struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != crc:
                raise RecordError(f"{name}: corrupt or not a TFRecord file (bad length checksum of record {n} "
                                  f"at byte {pos})")
            end = pos + 12 + length + 4
            if end > size:
                raise RecordError(f"{name}: truncated TFRecord shard (record {n} needs {end} bytes, the file has "
                                  f"{size})")
            if first is None:
                first = fh.read(length)
                fh.seek(4, os.SEEK_CUR)
            else:
                fh.seek(length + 4, os.SEEK_CUR)
            pos = end
            n += 1
    if first is not None:
        import tensorflow as tf

        try:
            ex = tf.train.Example.FromString(first)
        except Exception:  # noqa: BLE001 - protobuf raises DecodeError and friends
            raise RecordError(f"{name}: record 0 is not a tf.train.Example") from None
        if "frames" not in ex.features.feature:
            raise RecordError(f"{name}: record 0 is not a tfvr clip (no 'frames' feature)")
    if deep:
        import tensorflow as tf

        count = 0
        try:
            for _ in tf.data.TFRecordDataset(name):
                count += 1
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError, tf.errors.InvalidArgumentError) as e:
            raise RecordError(f"{name}: corrupt TFRecord shard at record {count}: "
                              f"{str(e.message).splitlines()[0]}") from None
    return n


def iter_raw(path: str | os.PathLike) -> Iterable[bytes]:
    """The serialised records of a TFRecord file, read in Python without checking the data CRCs (for files this
    process just wrote; `verify_shard` / TensorFlow for anything else)."""
    name = os.fspath(path)
    with open(name, "rb") as fh:
        while True:
            header = fh.read(12)
            if not header:
                return
            if len(header) < 12:
                raise RecordError(f"{name}: truncated TFRecord file")
            (length,) = struct.unpack("<Q", header[:8])
            data = fh.read(length)
            if len(data) < length or len(fh.read(4)) < 4:
                raise RecordError(f"{name}: truncated TFRecord file")
            yield data


def read_clips(path: str | os.PathLike) -> list[dict]:
    """All clips of one shard decoded in Python (`example_to_numpy`); for tests and inspection."""
    import tensorflow as tf

    verify_shard(path)
    out = []
    try:
        for rec in tf.data.TFRecordDataset(os.fspath(path)):
            out.append(example_to_numpy(rec.numpy()))
    except tf.errors.DataLossError as e:
        raise RecordError(f"{os.fspath(path)}: corrupt TFRecord shard: {str(e.message).splitlines()[0]}") from None
    return out


# ---------------------------------------------------------------------------------------------------------------
# Graph-mode parsing (used by tfvr.data.pipeline)


def feature_spec() -> dict:
    import tensorflow as tf

    var_s = tf.io.VarLenFeature(tf.string)
    return {
        "frames": var_s,
        "lq": var_s,
        "labels": var_s,
        "instances": var_s,
        "frame_indices": tf.io.VarLenFeature(tf.int64),
        "height": tf.io.FixedLenFeature([], tf.int64),
        "width": tf.io.FixedLenFeature([], tf.int64),
        "num_frames": tf.io.FixedLenFeature([], tf.int64),
        "lq_height": tf.io.FixedLenFeature([], tf.int64, default_value=0),
        "lq_width": tf.io.FixedLenFeature([], tf.int64, default_value=0),
        "source": tf.io.FixedLenFeature([], tf.string, default_value=""),
        "lq_kind": tf.io.FixedLenFeature([], tf.string, default_value=""),
        "scene": tf.io.FixedLenFeature([], tf.int64, default_value=0),
        "clip": tf.io.FixedLenFeature([], tf.int64, default_value=0),
        "fps": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
    }


def parse_example(serialized):
    """Graph-mode parse of one clip: encoded PNG strings `[T]` (lq/labels/instances may be empty `[0]`), sizes."""
    import tensorflow as tf

    ex = tf.io.parse_single_example(serialized, feature_spec())
    for key in ("frames", "lq", "labels", "instances"):
        ex[key] = tf.sparse.to_dense(ex[key], default_value="")
    ex["frame_indices"] = tf.sparse.to_dense(ex["frame_indices"])
    return ex


def decode_frames(encoded, height=None, width=None, channels: int = 3, dtype=None, num: int | None = None):
    """Decodes a `[T]` string tensor of PNGs into `[T, H, W, channels]` (uint8 RGB, or uint16 label maps).

    With `num` (= T, known when the graph is built) the decodes are unrolled instead of run in a `map_fn` loop,
    which is cheaper for small frames."""
    import tensorflow as tf

    dtype = dtype or tf.uint8
    if num is not None:
        out = tf.stack([tf.io.decode_png(encoded[i], channels=channels, dtype=dtype) for i in range(num)])
    else:
        out = tf.map_fn(
            lambda x: tf.io.decode_png(x, channels=channels, dtype=dtype),
            encoded,
            fn_output_signature=tf.TensorSpec([None, None, channels], dtype),
        )
    if height is not None and width is not None:
        out = tf.ensure_shape(out, [None, None, None, channels])
        out = tf.reshape(out, tf.stack([tf.shape(encoded)[0], tf.cast(height, tf.int32), tf.cast(width, tf.int32),
                                        channels]))
    return out
