"""`tfvr prepare`: a folder of videos (or a public frame-folder layout) → sharded TFRecord clips + manifest.json.

    result = prepare("raw_videos/", "data/clips", settings=SceneSettings(threshold=25, interval=0.1, clip_len=10))
    result.failed      # VideoReports of the sources that could not be read (their error is in the manifest too)

Video files go through `tfvr.data.scenes` (scene split, sampling, fade / near-uniform filter); frame-folder layouts
(`tfvr.data.layouts`) are cut into clips as they are. Each source is written to a scratch file first and copied
into the split's shards only when it finished without error, so a video that breaks half-way contributes no clips.
Everything is written into a hidden temporary folder beside OUT_DIR that is renamed to OUT_DIR at the end: an
interrupted or crashed run leaves no OUT_DIR (and an existing one, replaced with `overwrite=True`, stays whole
until the new one is complete). OUT_DIR is checked first (`tfvr.safety.check_output`): it may not be, contain or
lie inside SRC_DIR (symlinks followed) or a training workdir, and `overwrite=True` replaces only a folder that
`prepare` wrote (it carries the `.tfvr-output` marker, or holds nothing but manifest.json and .tfrecord shards);
an empty folder counts as absent. The finished folder gets the user's umask (`tfvr.safety.atomic_dir`).

manifest.json holds: `format`, `version`, `layout`, `source_dir`, `settings` (every flag), `splits` (per split:
clips, frames, shard file names, lq kind / scale, labels, min/max frame size, min clip length), `counts`
(sources, failed, scenes, clips, frames kept, dropped frames and scenes) and `videos`: one entry per source with
`path` (relative to SRC_DIR), `split`, `scenes` ([start, end) frame pairs), `clips`, `error` (null when fine) and
what was dropped.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tfvr.data import layouts, records
from tfvr.data.scenes import SceneSettings, VideoReport, chunk, video_clips
from tfvr.errors import UserError
from tfvr.safety import MARKER, atomic_dir, check_output, guard_os_errors, read_json

MANIFEST = "manifest.json"
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
FORMAT = "tfvr-clips"
VERSION = 1
SHARD_TARGET_BYTES = 128 << 20  # auto sharding: about this many bytes per shard
MAX_AUTO_SHARDS = 1024

# extras(source, frame_indices, decoded_frames) -> {"frames"?, "lq"?, "lq_kind"?, "labels"?, "instances"?}
ExtrasFn = Callable[[layouts.Source, list, list], dict]


@dataclass
class PrepareResult:
    out_dir: Path
    manifest: dict
    failed: list

    @property
    def ok(self) -> bool:
        return not self.failed


def load_manifest(records_dir: str | os.PathLike) -> dict:
    """The manifest.json of a prepared folder; `UserError` naming the file if it is missing or unreadable."""
    path = Path(records_dir) / MANIFEST
    if not path.is_file():
        raise UserError(f"{path}: not found ({Path(records_dir)} is not a folder written by `tfvr prepare`)")
    m = read_json(path, "unreadable manifest", not_object="not a tfvr clip manifest (not a JSON object)")
    if m.get("format") != FORMAT:
        raise UserError(f"{path}: not a tfvr clip manifest (format {m.get('format')!r})")
    return m


def _estimate_bytes(source: layouts.Source, settings: SceneSettings) -> int:
    if isinstance(source, layouts.VideoSource):
        from tfvr.data import video_io

        info = video_io.probe(source.path)
        step = max(1.0, settings.interval * info.fps)
        return int(info.num_frames / step * info.width * info.height * 3 * 0.6)
    total = 0
    for ref in [*source.frames, *(source.lq or [])]:
        if isinstance(ref, layouts.ZipMember):
            with zipfile.ZipFile(ref.archive) as z:
                total += z.getinfo(ref.member).file_size * 3  # JPEG -> PNG
        else:
            total += ref.stat().st_size
    return total


class _Frames:
    """Reads the frames of one FrameSequence (keeps its zip archives open while it is being read)."""

    def __init__(self):
        self._zips: dict[Path, zipfile.ZipFile] = {}

    def png(self, ref) -> tuple[bytes, tuple[int, int]]:
        if isinstance(ref, layouts.ZipMember):
            z = self._zips.get(ref.archive)
            if z is None:
                z = self._zips[ref.archive] = zipfile.ZipFile(ref.archive)
            return layouts.load_png(ref, z.read(ref.member))
        try:
            return layouts.load_png(ref)
        except OSError as e:
            raise UserError(f"{ref}: cannot read ({e.strerror or e})") from None

    def close(self):
        for z in self._zips.values():
            z.close()


def _sequence_clips(seq: layouts.FrameSequence, settings: SceneSettings, report: VideoReport):
    n = len(seq.frames)
    report.num_frames = n
    report.fps = seq.fps
    report.scenes = [[0, n]]
    report.frames_sampled = n
    reader = _Frames()
    try:
        windows = chunk(n, 0 if seq.whole else settings.clip_len, settings.clip_stride)
        if not windows:
            report.dropped_scenes += 1
        for k, (a, b) in enumerate(windows):
            frames, sizes = zip(*(reader.png(r) for r in seq.frames[a:b]))
            if len(set(sizes)) > 1:
                raise UserError(f"{seq.root / seq.name if seq.root else seq.name}: frames have different sizes "
                                f"{sorted(set(sizes))}")
            h, w = sizes[0]
            report.height, report.width = h, w
            clip = records.Clip(frames=list(frames), source=seq.name, frame_indices=list(range(a, b)), scene=0,
                                clip=k, fps=seq.fps, height=h, width=w)
            if seq.lq:
                lq, lq_sizes = zip(*(reader.png(r) for r in seq.lq[a:b]))
                lh, lw = lq_sizes[0]
                want = (h, w) if seq.lq_kind in ("blur", "blur_comp") else (h / seq.lq_scale, w / seq.lq_scale)
                if len(set(lq_sizes)) > 1 or (lh, lw) != want:
                    raise UserError(f"{seq.lq[a]}: {seq.lq_kind} frame is {lw}x{lh}, expected "
                                    f"{want[1]:g}x{want[0]:g} for {w}x{h} frames")
                clip.lq, clip.lq_kind, clip.lq_height, clip.lq_width = list(lq), seq.lq_kind, lh, lw
            report.frames_kept += b - a
            report.clips += 1
            yield clip
    finally:
        reader.close()


def _video_clips(src: layouts.VideoSource, settings: SceneSettings, report: VideoReport, extras: ExtrasFn | None):
    for sc in video_clips(src.path, settings, report):
        clip = records.Clip(frames=sc.frames, source=src.name, frame_indices=sc.indices, scene=sc.scene,
                            clip=sc.clip, fps=report.fps)
        if extras is not None:
            for key, value in extras(src, sc.indices, sc.frames).items():
                setattr(clip, key, value)
        yield clip


class _SplitStats:
    def __init__(self):
        self.clips = 0
        self.frames = 0
        self.lq_kinds: set = set()
        self.labels: set = set()
        self.min_hw = [math.inf, math.inf]
        self.max_hw = [0, 0]
        self.min_len = math.inf

    def add(self, clip: records.Clip, h: int, w: int):
        t = len(clip.frames)
        self.clips += 1
        self.frames += t
        lq_h = _lq_h(clip)
        self.lq_kinds.add((clip.lq_kind, (h // lq_h) if clip.lq_kind in ("lr", "blur_lr") and lq_h else 1)
                          if clip.lq is not None and len(clip.lq) else ("", 1))
        self.labels.add(clip.labels is not None and len(clip.labels) > 0)
        self.min_hw = [min(self.min_hw[0], h), min(self.min_hw[1], w)]
        self.max_hw = [max(self.max_hw[0], h), max(self.max_hw[1], w)]
        self.min_len = min(self.min_len, t)

    def as_dict(self, shards: list[str]) -> dict:
        kind, scale = next(iter(self.lq_kinds)) if len(self.lq_kinds) == 1 else ("mixed", 0)
        return {
            "clips": self.clips, "frames": self.frames, "shards": shards,
            "lq_kind": kind, "lq_scale": scale, "labels": self.labels == {True},
            "min_height": 0 if self.clips == 0 else int(self.min_hw[0]),
            "min_width": 0 if self.clips == 0 else int(self.min_hw[1]),
            "max_height": int(self.max_hw[0]), "max_width": int(self.max_hw[1]),
            "min_clip_len": 0 if self.clips == 0 else int(self.min_len),
        }


def _clip_size(clip: records.Clip) -> tuple[int, int]:
    if clip.height and clip.width:
        return clip.height, clip.width
    f = np.asarray(clip.frames[0])
    return f.shape[0], f.shape[1]


def prepare(src_dir: str | os.PathLike, out_dir: str | os.PathLike, *, layout: str = "auto",
            settings: SceneSettings | None = None, num_shards: int = 0, val_fraction: float = 0.0, seed: int = 0,
            overwrite: bool = False, progress: bool = True, extras: ExtrasFn | None = None,
            manifest_extra: dict | None = None, reds_input: str = "auto") -> PrepareResult:
    """Prepares `src_dir` into `out_dir` (see the module docstring). Sources that cannot be read are listed in the
    manifest with their error and returned in `result.failed`; anything else wrong raises `UserError`."""
    import tensorflow as tf
    from tqdm import tqdm

    settings = check_arguments(settings, num_shards)
    src = Path(src_dir)
    out = Path(out_dir)
    check_output(out, [src], overwrite=overwrite, what="output folder", owned=is_prepared_folder,
                 allow_empty_dir=True)
    with guard_os_errors(src):  # a symlink loop or an unreadable folder in the source: one line
        layout_name, sources = layouts.scan(src, layout, reds_input=reds_input)
    layouts.assign_val(sources, val_fraction, seed)

    reports = [VideoReport(path=s.name, split=s.split) for s in sources]
    writers: dict[str, records.ShardWriter] = {}
    try:
        with atomic_dir(out) as tmp:
            # Shards per split: given, or from an estimate of the split's size (probing videos also finds unreadable
            # files early).
            est: dict[str, int] = {}
            for s, rep in zip(sources, reports):
                try:
                    est[s.split] = est.get(s.split, 0) + _estimate_bytes(s, settings)
                except (UserError, OSError) as e:
                    rep.error = str(e)
                    est.setdefault(s.split, 0)
            for split, nbytes in sorted(est.items()):
                k = num_shards or max(1, min(MAX_AUTO_SHARDS, math.ceil(nbytes / SHARD_TARGET_BYTES)))
                writers[split] = records.ShardWriter(tmp, split, k)
            stats = {split: _SplitStats() for split in writers}

            scratch = tmp / ".source.tfrecord"
            bar = tqdm(list(zip(sources, reports)), desc="prepare", unit="src", disable=None if progress else True)
            for s, rep in bar:
                bar.set_postfix_str(s.name[-40:], refresh=False)
                if rep.error:
                    continue
                made: list[tuple[int, int, records.Clip]] = []
                try:
                    clips = (_video_clips(s, settings, rep, extras) if isinstance(s, layouts.VideoSource)
                             else _sequence_clips(s, settings, rep))
                    with tf.io.TFRecordWriter(str(scratch)) as w:
                        for clip in clips:
                            h, w_ = _clip_size(clip)
                            w.write(records.serialize_clip(clip))
                            # Keep only what the split statistics need, not the frames.
                            made.append((h, w_, records.Clip(
                                frames=[b""] * len(clip.frames), source="", frame_indices=[], lq_kind=clip.lq_kind,
                                lq=[b""] if clip.lq is not None and len(clip.lq) else None, lq_height=_lq_h(clip),
                                labels=[b""] if clip.labels is not None and len(clip.labels) else None)))
                except (UserError, OSError, ValueError) as e:
                    if isinstance(e, OSError) and e.errno in _DISK_ERRNOS:
                        raise  # the output disk, not this source: stop (one line from the CLI)
                    rep.error = str(e) if isinstance(e, UserError) else f"{s.name}: {type(e).__name__}: {e}"
                    rep.clips = rep.frames_kept = 0
                    continue
                for raw in records.iter_raw(scratch):
                    writers[s.split].write(raw)
                for h, w_, c in made:
                    stats[s.split].add(c, h, w_)
            bar.close()
            scratch.unlink(missing_ok=True)
            shard_names = {split: [Path(p).name for p in w.close()] for split, w in writers.items()}

            failed = [r for r in reports if r.error]
            manifest = build_manifest(layout_name, src, settings, num_shards, val_fraction, seed, reds_input,
                                      stats, shard_names, reports, manifest_extra)
            (tmp / MANIFEST).write_text(_dumps(manifest))
    except BaseException:
        for w in writers.values():
            if not w.closed:
                w.abort()
        raise
    return PrepareResult(out_dir=out, manifest=manifest, failed=failed)


def is_prepared_folder(path: str | os.PathLike) -> bool:
    """A folder `prepare` / `write_dataset` wrote before the `.tfvr-output` marker existed: manifest.json (format
    tfvr-clips) and .tfrecord shards, nothing else."""
    p = Path(path)
    try:
        names = os.listdir(p)
        if MANIFEST not in names or not all(n in (MANIFEST, MARKER) or n.endswith(".tfrecord") for n in names):
            return False
        return json.loads((p / MANIFEST).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def check_arguments(settings, num_shards: int):
    """The prepare arguments both runners check before touching anything; returns the settings (defaults if None)."""
    settings = settings or SceneSettings()
    if settings.clip_len < 0:
        raise UserError(f"--clip-len must be >= 0, got {settings.clip_len}")
    if settings.interval <= 0:
        raise UserError(f"--interval must be > 0 seconds, got {settings.interval}")
    if num_shards < 0:
        raise UserError(f"--num-shards must be >= 0, got {num_shards}")
    return settings


def build_manifest(layout_name, src, settings, num_shards, val_fraction, seed, reds_input, stats, shard_names,
                   reports, manifest_extra=None, **extra_settings) -> dict:
    """manifest.json's content (both runners write it through this; `extra_settings` e.g. the Beam runner's)."""
    failed = [r for r in reports if r.error]
    return {
        "format": FORMAT,
        "version": VERSION,
        "layout": layout_name,
        "source_dir": str(Path(src).resolve()),
        "settings": {**settings.as_dict(), "num_shards": num_shards, "val_fraction": val_fraction,
                     "seed": seed, **({"reds_input": reds_input} if layout_name == "reds" else {}),
                     **extra_settings},
        "splits": {split: stats[split].as_dict(shard_names[split]) for split in sorted(shard_names)},
        "counts": {
            "sources": len(reports),
            "failed": len(failed),
            "scenes": sum(len(r.scenes) for r in reports if not r.error),
            "clips": sum(r.clips for r in reports),
            "frames": sum(r.frames_kept for r in reports),
            "dropped_frames": {"fade": sum(r.dropped_fade for r in reports),
                               "uniform": sum(r.dropped_uniform for r in reports)},
            "dropped_scenes": sum(r.dropped_scenes for r in reports if not r.error),
        },
        "videos": [r.as_dict() for r in reports],
        **(manifest_extra or {}),
    }


def _dumps(manifest: dict) -> str:
    text = json.dumps(manifest, indent=1)
    # [start, end] pairs and other short number lists on one line.
    text = re.sub(r"\[\s+(-?\d+(?:,\s+-?\d+)*)\s+\]", lambda m: "[" + re.sub(r",\s+", ", ", m.group(1)) + "]", text)
    return text + "\n"


def _lq_h(clip: records.Clip) -> int:
    if clip.lq is None or not len(clip.lq):
        return 0
    if clip.lq_height:
        return clip.lq_height
    return int(np.asarray(clip.lq[0]).shape[0])


def write_dataset(out_dir: str | os.PathLike, splits: dict, *, num_shards: int = 1, layout: str = "custom",
                  overwrite: bool = False) -> dict:
    """Writes in-memory clips as a prepared folder (shards + manifest.json), atomically; returns the manifest.

    `splits` maps a split name to an iterable of `records.Clip`. For data made in code (tests, benchmarks, other
    readers); videos and folders on disk go through `prepare`.
    """
    out = Path(out_dir)
    check_output(out, overwrite=overwrite, what="output folder", owned=is_prepared_folder, allow_empty_dir=True)
    with atomic_dir(out) as tmp:
        info = {}
        total = 0
        for split, clips in splits.items():
            stats = _SplitStats()
            with records.ShardWriter(tmp, split, num_shards) as w:
                for clip in clips:
                    h, w_ = _clip_size(clip)
                    w.write(records.serialize_clip(clip))
                    stats.add(clip, h, w_)
            info[split] = stats.as_dict(list(w.names))
            total += stats.clips
        manifest = {"format": FORMAT, "version": VERSION, "layout": layout, "source_dir": None,
                    "settings": {"num_shards": num_shards}, "splits": info,
                    "counts": {"sources": 0, "failed": 0, "clips": total}, "videos": []}
        (tmp / MANIFEST).write_text(_dumps(manifest))
    return manifest
