"""Readers for the data layouts people already have on disk, for `tfvr prepare --layout NAME`.

Every reader turns a folder into a list of sources, each assigned to a split:

- `VideoSource`: a video file, later cut into clips by `tfvr.data.scenes` (layout "videos").
- `FrameSequence`: an ordered list of frames (files, or members of a zip), optionally with paired degraded frames
  (`lq`, "blur" or "lr" ×`lq_scale`), later cut into clips of `clip_len` frames (taken as they are: no scene split,
  sampling or frame filter — these sets are curated).

Layouts (folder names as the public releases and BasicSR use them):

  videos     video files anywhere under SRC (.mp4 .avi .mov .mkv .webm ...).
  frames     plain frame folders: every folder under SRC that directly holds images is one sequence.
  gopro      GoPro (GOPRO_Large): {train,test}/<seq>/{blur,sharp}/*.png; lq = blur. test -> val.
  reds       REDS: train_sharp/<clip>/*.png (+ val_sharp, merged into train as BasicSR does) paired with one of
             REDS's inputs (`reds_input`, `tfvr prepare --reds-input`):
               sharp_bicubic  train_sharp_bicubic/X4/<clip>   lq_kind "lr"         (x4 SR; the default "auto"
                                                                                    takes it when present)
               blur           train_blur/<clip>               lq_kind "blur"       (deblurring)
               blur_comp      train_blur_comp/<clip>          lq_kind "blur_comp"  (deblurring + compression)
               blur_bicubic   train_blur_bicubic/X4/<clip>    lq_kind "blur_lr"    (x4 SR of blurry video)
             (val_* alike). The REDS4 clips 000, 011, 015, 020 -> val.
  vimeo90k   Vimeo-90K septuplets: sequences/<a>/<b>/im1..im7.png listed in sep_trainlist.txt (train) and
             sep_testlist.txt (val); LR from a vimeo_septuplet_matlabLRx4/sequences folder beside or inside SRC.
             One clip per septuplet.
  vid4       Vid4: GT/<clip>/*.png with BIx4/<clip> (or BDx4) LR frames; every clip -> val.
  davis      DAVIS / YouTube-VOS: JPEGImages folders (<video>/*.jpg, DAVIS's 480p/ level too) or one zip per video
             (JPEGImages/<video>.zip, as STTN's data loader reads them). DAVIS ImageSets/*/train.txt / val.txt and
             YouTube-VOS train/valid folders give the splits. Annotations are not read.

For "videos" and "frames", a first folder level named train / val / valid / validation / test gives the split
(valid and validation -> val); everything else is "train" (then `tfvr prepare --val-fraction` can hold some out).
`detect_layout` guesses the layout from the folder's contents.

Family-specific readers that feed a family's training directly (not `tfvr prepare`) live beside this module:
`tfvr.data.layouts.cityscapes` (NVIDIA/vid2vid's Cityscapes sequence folders, label-to-video clips) and
`tfvr.data.layouts.nextframe` (MemVSR's next-frame clips: synthetic videos, HumanEva, Charades).
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from tfvr.errors import UserError

VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp",
              ".y4m", ".ogv"}
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
LAYOUTS = ("videos", "frames", "gopro", "reds", "vimeo90k", "vid4", "davis")
ALIASES = {"youtube-vos": "davis", "youtube_vos": "davis", "ytvos": "davis", "vimeo": "vimeo90k",
           "vimeo-90k": "vimeo90k", "video": "videos", "folders": "frames"}
REDS4 = ("000", "011", "015", "020")
_SPLIT_DIRS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}


@dataclass(frozen=True)
class ZipMember:
    archive: Path
    member: str

    def __str__(self) -> str:
        return f"{self.archive}:{self.member}"


FrameRef = Union[Path, ZipMember]


@dataclass
class VideoSource:
    path: Path
    name: str  # relative to SRC (what the manifest and records call it)
    split: str = "train"


@dataclass
class FrameSequence:
    name: str
    frames: list
    split: str = "train"
    lq: list | None = None
    lq_kind: str = ""
    lq_scale: int = 1
    fps: float = 0.0
    whole: bool = False  # one clip of all frames (Vimeo-90K septuplets), whatever clip_len says
    root: Path | None = field(default=None, repr=False)


Source = Union[VideoSource, FrameSequence]


def _natural_key(s: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                   and not p.name.startswith(".")), key=lambda p: _natural_key(p.name))


def _subdirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: _natural_key(p.name))


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _split_of(rel: str) -> str:
    first = rel.split("/", 1)[0].lower()
    return _SPLIT_DIRS.get(first, "train") if "/" in rel else "train"


# ---------------------------------------------------------------------------------------------------------------
# Reading frames


def read_frame(ref: FrameRef) -> bytes:
    """The raw bytes of a frame file or zip member."""
    if isinstance(ref, ZipMember):
        with zipfile.ZipFile(ref.archive) as z:
            return z.read(ref.member)
    return Path(ref).read_bytes()


def load_png(ref: FrameRef, data: bytes | None = None) -> tuple[bytes, tuple[int, int]]:
    """(PNG bytes of the frame as 8-bit RGB, (height, width)). 8-bit RGB PNGs are passed through untouched;
    anything else is decoded with OpenCV and re-encoded. Raises `UserError` naming the file if it doesn't decode."""
    from tfvr.data import records

    data = read_frame(ref) if data is None else data
    size = records.png_rgb8_size(data)
    if size is not None:
        return data, size
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise UserError(f"{ref}: not a readable image")
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    if arr.ndim == 2:
        arr = cv2.cvtColor(arr, cv2.COLOR_GRAY2RGB)
    elif arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB)
    else:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    return records.encode_png(arr), arr.shape[:2]


# ---------------------------------------------------------------------------------------------------------------
# Layout readers


def scan_videos(src: Path) -> list[Source]:
    out = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames, key=_natural_key):
            p = Path(dirpath) / f
            if p.suffix.lower() in VIDEO_EXTS and not f.startswith("."):
                rel = _rel(p, src)
                out.append(VideoSource(path=p, name=rel, split=_split_of(rel)))
    return out


def scan_frames(src: Path) -> list[Source]:
    out = []
    for dirpath, dirnames, _ in os.walk(src):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=_natural_key)
        d = Path(dirpath)
        imgs = _images(d)
        if imgs:
            rel = _rel(d, src) if d != src else d.name
            out.append(FrameSequence(name=rel, frames=imgs, split=_split_of(rel + "/x") if d != src else "train",
                                     root=src))
    return out


def scan_gopro(src: Path) -> list[Source]:
    out = []
    # GOPRO_Large/{train,test}/<seq>/{blur,sharp}, or a single split folder <seq>/{blur,sharp}.
    seq_dirs = [p.parent for p in sorted(src.glob("*/*/sharp"))] or [p.parent for p in sorted(src.glob("*/sharp"))]
    for seq in seq_dirs:
        sharp = _images(seq / "sharp")
        blur = _images(seq / "blur")
        if not sharp:
            continue
        rel = _rel(seq, src)
        if blur and [p.name for p in blur] != [p.name for p in sharp]:
            raise UserError(f"{seq}: blur/ and sharp/ hold different frame names")
        part = rel.split("/", 1)[0].lower() if "/" in rel else "train"
        split = "val" if part in ("test", "val", "valid") else "train"
        out.append(FrameSequence(name=rel, frames=sharp, lq=blur or None, lq_kind="blur" if blur else "",
                                 split=split, root=src))
    return out


def _lr_dir(base: Path) -> tuple[Path | None, int]:
    """(folder, scale) of the first X<s> folder in `base` (REDS's train_sharp_bicubic/X4), else (base, 4) if it
    directly holds clip folders."""
    if not base.is_dir():
        return None, 1
    for d in _subdirs(base):
        m = re.fullmatch(r"[Xx](\d+)", d.name)
        if m:
            return d, int(m.group(1))
    return (base, 4) if _subdirs(base) else (None, 1)


# REDS's inputs: --reds-input name -> (folder suffix, lq_kind, low resolution?).
REDS_INPUTS = {"sharp_bicubic": ("sharp_bicubic", "lr", True), "blur": ("blur", "blur", False),
               "blur_comp": ("blur_comp", "blur_comp", False), "blur_bicubic": ("blur_bicubic", "blur_lr", True)}


def scan_reds(src: Path, reds_input: str = "auto") -> list[Source]:
    """REDS clips paired with the input `reds_input` ("auto": sharp_bicubic when present, else none)."""
    if reds_input != "auto" and reds_input not in REDS_INPUTS:
        raise UserError(f"--reds-input: {reds_input!r} is not one of auto, {', '.join(REDS_INPUTS)}")
    kind = "sharp_bicubic" if reds_input == "auto" else reds_input
    suffix, lq_kind, low_res = REDS_INPUTS[kind]
    out = []
    for part in ("train", "val"):
        hr = src / f"{part}_sharp"
        if low_res:
            lr, scale = _lr_dir(src / f"{part}_{suffix}")
        else:
            lr, scale = (src / f"{part}_{suffix}", 1) if (src / f"{part}_{suffix}").is_dir() else (None, 1)
        if _subdirs(hr) and lr is None and reds_input != "auto":
            raise UserError(f"{src}: --reds-input {kind} needs {part}_{suffix}/"
                            f"{'X4/' if low_res else ''}<clip> folders beside {part}_sharp/")
        for clip in _subdirs(hr):
            frames = _images(clip)
            if not frames:
                continue
            lq = _images(lr / clip.name) if lr is not None else []
            if lr is not None and reds_input != "auto" and not lq:
                raise UserError(f"{lr / clip.name}: no {kind} frames for {clip}")
            if lq and [p.name for p in lq] != [p.name for p in frames]:
                raise UserError(f"{lr / clip.name}: {len(lq)} {kind} frames do not match the {len(frames)} frames "
                                f"of {clip} by name")
            split = "val" if part == "train" and clip.name in REDS4 else "train"
            out.append(FrameSequence(name=f"{part}_sharp/{clip.name}", frames=frames, lq=lq or None,
                                     lq_kind=lq_kind if lq else "", lq_scale=scale if lq else 1, split=split,
                                     fps=24.0, root=src))
    return out


def _vimeo_lr(src: Path) -> tuple[Path | None, int]:
    for base in (src, src.parent):
        for d in sorted(base.glob("*[Ll][Rr]*")):
            m = re.search(r"[xX](\d+)", d.name)
            if (d / "sequences").is_dir() and m:
                return d / "sequences", int(m.group(1))
    return None, 1


def scan_vimeo90k(src: Path) -> list[Source]:
    seq_root = src / "sequences"
    if not seq_root.is_dir():
        raise UserError(f"{src}: no sequences/ folder (a Vimeo-90K septuplet copy has sequences/ and sep_*list.txt)")
    lr_root, scale = _vimeo_lr(src)
    out = []
    lists = [("sep_trainlist.txt", "train"), ("sep_testlist.txt", "val")]
    if not any((src / f).is_file() for f, _ in lists):
        raise UserError(f"{src}: neither sep_trainlist.txt nor sep_testlist.txt found")
    for fname, split in lists:
        lst = src / fname
        if not lst.is_file():
            continue
        for line in lst.read_text().splitlines():
            key = line.strip()
            if not key:
                continue
            d = seq_root / key
            frames = _images(d)
            if not frames:
                raise UserError(f"{lst}: lists {key}, but {d} holds no frames")
            lq = _images(lr_root / key) if lr_root is not None else []
            out.append(FrameSequence(name=f"sequences/{key}", frames=frames, lq=lq or None,
                                     lq_kind="lr" if lq else "", lq_scale=scale if lq else 1, split=split,
                                     whole=True, root=src))
    return out


def scan_vid4(src: Path) -> list[Source]:
    gt = src / "GT"
    lr_dir = next((src / n for n in ("BIx4", "BDx4") if (src / n).is_dir()), None)
    out = []
    for clip in _subdirs(gt):
        frames = _images(clip)
        if not frames:
            continue
        lq = _images(lr_dir / clip.name) if lr_dir is not None else []
        if lq and len(lq) != len(frames):
            raise UserError(f"{lr_dir / clip.name}: {len(lq)} LR frames for {len(frames)} GT frames")
        out.append(FrameSequence(name=f"GT/{clip.name}", frames=frames, lq=lq or None, lq_kind="lr" if lq else "",
                                 lq_scale=4 if lq else 1, split="val", root=src))
    return out


def _zip_frames(path: Path) -> list[ZipMember]:
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if Path(n).suffix.lower() in IMAGE_EXTS and not n.endswith("/")]
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{path}: not a readable zip file ({e})") from None
    return [ZipMember(path, n) for n in sorted(names, key=_natural_key)]


def scan_davis(src: Path) -> list[Source]:
    jpeg_dirs = sorted({p for p in [src / "JPEGImages", *src.glob("*/JPEGImages"), *src.glob("*/*/JPEGImages")]
                        if p.is_dir()})
    if not jpeg_dirs:
        raise UserError(f"{src}: no JPEGImages folder (DAVIS / YouTube-VOS layout)")
    # DAVIS lists its splits in ImageSets/<year>/{train,val}.txt.
    listed: dict[str, str] = {}
    for lst in sorted(src.glob("**/ImageSets/*/*.txt")):
        split = {"train": "train", "val": "val", "test-dev": "test", "test-challenge": "test"}.get(lst.stem)
        if split:
            for name in lst.read_text().split():
                listed.setdefault(name, split)
    out = []
    for jd in jpeg_dirs:
        base = jd
        for res in ("480p", "Full-Resolution", "1080p"):
            if (jd / res).is_dir():
                base = jd / res
                break
        parent = jd.parent.name.lower()
        dir_split = ("train" if parent.startswith("train") else
                     "val" if parent.startswith(("valid", "val")) else
                     "test" if parent.startswith("test") else None)
        items: list[tuple[str, list]] = []
        for d in _subdirs(base):
            imgs = _images(d)
            if imgs:
                items.append((d.name, imgs))
        for z in sorted(base.glob("*.zip"), key=lambda p: _natural_key(p.name)):
            members = _zip_frames(z)
            if members:
                items.append((z.stem, members))
        for name, frames in items:
            split = listed.get(name) or dir_split or "train"
            out.append(FrameSequence(name=f"{_rel(base, src)}/{name}", frames=frames, split=split, root=src))
    return out


SCANNERS = {"videos": scan_videos, "frames": scan_frames, "gopro": scan_gopro, "reds": scan_reds,
            "vimeo90k": scan_vimeo90k, "vid4": scan_vid4, "davis": scan_davis}


def _has_any(src: Path, exts: set[str], max_files: int = 100000) -> bool:
    n = 0
    for _, dirnames, filenames in os.walk(src):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for f in filenames:
            if Path(f).suffix.lower() in exts and not f.startswith("."):
                return True
            n += 1
            if n > max_files:
                return False
    return False


def detect_layout(src: str | os.PathLike) -> str:
    """Guesses the layout of `src` from its contents (see the module docstring)."""
    src = Path(src)
    if (src / "sep_trainlist.txt").is_file() or (src / "sep_testlist.txt").is_file():
        return "vimeo90k"
    if (src / "train_sharp").is_dir() or (src / "val_sharp").is_dir():
        return "reds"
    if (src / "GT").is_dir() and any((src / n).is_dir() for n in ("BIx4", "BDx4")):
        return "vid4"
    if next(src.glob("*/*/sharp"), None) is not None or next(src.glob("*/sharp"), None) is not None:
        return "gopro"
    if ((src / "JPEGImages").is_dir() or next(src.glob("*/JPEGImages"), None) is not None
            or next(src.glob("*/*/JPEGImages"), None) is not None):
        return "davis"
    if _has_any(src, VIDEO_EXTS):
        return "videos"
    if _has_any(src, IMAGE_EXTS):
        return "frames"
    raise UserError(f"{src}: found no video files or frame folders to prepare")


def scan(src: str | os.PathLike, layout: str = "auto", *, reds_input: str = "auto") -> tuple[str, list[Source]]:
    """(layout name, sources) of `src`. Raises `UserError` for a missing folder, an unknown layout or no sources.
    `reds_input` picks REDS's paired input (see `scan_reds`); other layouts must leave it "auto"."""
    src = Path(src)
    if not src.is_dir():
        raise UserError(f"{src}: no such directory")
    layout = ALIASES.get(layout.lower(), layout.lower())
    if layout == "auto":
        layout = detect_layout(src)
    if layout not in SCANNERS:
        raise UserError(f"unknown layout {layout!r} (choose from auto, {', '.join(LAYOUTS)})")
    if reds_input != "auto" and layout != "reds":
        raise UserError(f"--reds-input applies to the reds layout only (this is {layout!r})")
    sources = scan_reds(src, reds_input) if layout == "reds" else SCANNERS[layout](src)
    if not sources:
        raise UserError(f"{src}: no {'video files' if layout == 'videos' else 'frame sequences'} found "
                        f"for layout {layout!r}")
    return layout, sources


def assign_val(sources: list[Source], fraction: float, seed: int = 0) -> None:
    """Moves about `fraction` of the "train" sources (at least one, if fraction > 0 and there are two or more) to
    "val", chosen by a hash of their names: stable when files are added or removed."""
    if fraction <= 0:
        return
    if fraction >= 1:
        raise UserError(f"--val-fraction must be in [0, 1), got {fraction}")
    train = [s for s in sources if s.split == "train"]
    if len(train) < 2:
        return
    k = max(1, int(round(fraction * len(train))))
    ranked = sorted(train, key=lambda s: hashlib.sha1(f"{seed}:{s.name}".encode()).hexdigest())
    for s in ranked[:k]:
        s.split = "val"
