"""`tfvr prepare --runner beam`: the same preparation as `tfvr.data.prepare.prepare`, as an Apache Beam pipeline.

    prepare_beam("raw_videos/", "data/clips", settings=SceneSettings(...), workers=4)
    prepare_beam(..., beam_options=["--runner=FlinkRunner", "--flink_master=host:8081", ...])

Needs the optional extra `pip install tfvr[beam]` (apache-beam). Without `--runner` in `beam_options` it runs on
Beam's DirectRunner in multi-process mode (`direct_running_mode=multi_processing`, `direct_num_workers=workers`);
any other runner (Dataflow, Flink, Spark) takes its own options through `beam_options`, and then OUT_DIR's parent
and SRC_DIR must be on a file system every worker sees, and tfvr must be installed on the workers (e.g.
`--setup_file`, `--requirements_file` or a custom container: the runner's documentation).

The output is the single-process path's, byte for byte (shards and manifest.json, except `settings.runner` /
`settings.workers`): the driver lists the sources, decides the split (`layouts.assign_val`, by a hash of each
source's name) and the number of shards per split exactly as `prepare` does; then the pipeline

1. (one element per source, reshuffled over the workers) runs the single-process path's per-source step
   (`process_source`: scene detection, sampling, filters, clips serialised into a scratch TFRecord file of that
   source; a source that fails contributes no clips and keeps its error), and writes the source's report;
2. gathers the (small) per-source clip lists and numbers every clip of a split in source order, which puts it in
   shard `ordinal % num_shards` at position `ordinal // num_shards`: the round-robin of `records.ShardWriter`;
3. writes each shard (grouped by (split, shard)) from the scratch files, temp name then rename.

The driver then writes manifest.json from the reports with the single-process code and renames the hidden temp
folder to OUT_DIR (nothing is left behind when the pipeline fails).
"""

from __future__ import annotations

import math
import os
import pickle
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Optional, Sequence

from tfvr.data import layouts, records
from tfvr.data.scenes import SceneSettings, VideoReport
from tfvr.errors import UserError
from tfvr.safety import atomic_dir, check_output

__all__ = ["prepare_beam", "process_source", "pipeline_options", "beam_available", "default_threads_per_worker"]

_SCRATCH = ".scratch"
_REPORTS = ".reports"


def beam_available() -> bool:
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        return False
    return True


def process_source(source, report: VideoReport, settings: SceneSettings, extras, scratch: str):
    """The per-source step of `tfvr.data.prepare.prepare` (same code, same error handling): clips of `source`
    serialised into the TFRecord file `scratch`. Returns (report, clip_stats, refs): `clip_stats` what
    `_SplitStats.add` needs per clip, `refs` the (byte offset, length) of each record in `scratch`.

    No TensorFlow here nor in the shard writer (a worker process never imports it): the Example and the TFRecord
    framing come from `records.serialize_clip` / `records.frame_record`, byte for byte what TensorFlow writes."""
    from tfvr.data.prepare import _clip_size, _lq_h, _sequence_clips, _video_clips

    stats: list[tuple] = []
    refs: list[tuple[int, int]] = []
    if report.error:
        return report, stats, refs
    try:
        clips = (_video_clips(source, settings, report, extras) if isinstance(source, layouts.VideoSource)
                 else _sequence_clips(source, settings, report))
        pos = 0
        with open(scratch, "wb") as w:
            for clip in clips:
                h, w_ = _clip_size(clip)
                raw = records.serialize_clip(clip)
                head, foot = records.frame_record(raw)  # 8-byte length, its CRC, data, the data's CRC
                w.write(head + raw + foot)
                refs.append((pos + 12, len(raw)))
                pos += 16 + len(raw)
                stats.append((h, w_, len(clip.frames), clip.lq_kind, bool(clip.lq is not None and len(clip.lq)),
                              _lq_h(clip), bool(clip.labels is not None and len(clip.labels))))
    except (UserError, OSError, ValueError) as e:
        report.error = str(e) if isinstance(e, UserError) else f"{source.name}: {type(e).__name__}: {e}"
        report.clips = report.frames_kept = 0
        stats, refs = [], []
    return report, stats, refs


def _trace(what: str, key, t0: float) -> None:
    """bench/prepare.py (env TFVR_BEAM_TRACE=file): one line per step, `pid what key start end tf`, tf = 1 when
    this process has imported TensorFlow (a worker must not: tests/data/test_beam_prepare.py)."""
    trace = os.environ.get("TFVR_BEAM_TRACE")
    if trace:
        import sys

        with open(trace, "a") as f:
            f.write(f"{os.getpid()} {what} {key} {t0:.3f} {time.time():.3f} {int('tensorflow' in sys.modules)}\n")


def _stat_clip(entry: tuple) -> records.Clip:
    _h, _w, t, lq_kind, has_lq, lq_h, has_labels = entry
    return records.Clip(frames=[b""] * t, source="", frame_indices=[], lq_kind=lq_kind,
                        lq=[b""] if has_lq else None, lq_height=lq_h, labels=[b""] if has_labels else None)


# ---------------------------------------------------------------------------------------------------------------
# pipeline steps (module-level so the runner pickles them by reference)
class _ProcessSource:
    def __init__(self, tmp: str, settings: SceneSettings, extras, threads: int = 0):
        self.tmp, self.settings, self.extras, self.threads = tmp, settings, extras, threads

    def __call__(self, item):
        from tfvr import quiet

        quiet.setup()  # in a Beam worker process: before TensorFlow / scenedetect are imported
        if self.threads:
            from tfvr.data import video_io

            video_io.set_threads(self.threads)
        i, source, report = item
        scratch = os.path.join(self.tmp, _SCRATCH, f"{i:08d}.tfrecord")
        t0 = time.time()
        report, stats, refs = process_source(source, report, self.settings, self.extras, scratch)
        _trace("source", i, t0)
        path = os.path.join(self.tmp, _REPORTS, f"{i:08d}.pkl")
        part = f"{path}.{uuid.uuid4().hex[:8]}.part"
        with open(part, "wb") as f:
            pickle.dump((report, stats), f)
        os.replace(part, path)
        return i, report.split, len(refs) if not report.error else 0, refs


class _AssignShards:
    def __init__(self, shards: dict):
        self.shards = shards  # split -> number of shards

    def __call__(self, items):
        offsets: dict[str, int] = {}
        for i, split, n, refs in sorted(items, key=lambda x: x[0]):
            k = self.shards[split]
            base = offsets.get(split, 0)
            for j, (pos, length) in enumerate(refs[:n]):
                ordinal = base + j
                yield (split, ordinal % k), (ordinal, i, pos, length)
            offsets[split] = base + n


class _WriteShard:
    def __init__(self, tmp: str, shards: dict):
        self.tmp, self.shards = tmp, shards

    def __call__(self, keyed):
        (split, k), entries = keyed
        t0 = time.time()
        name = records.shard_name(split, k, self.shards[split])
        final = os.path.join(self.tmp, name)
        part = os.path.join(self.tmp, f".{name}.{uuid.uuid4().hex[:8]}.tmp")
        files: dict[int, Any] = {}
        try:
            with open(part, "wb") as w:  # the framed records as the worker wrote them (CRCs included)
                for _ordinal, i, pos, length in sorted(entries):
                    f = files.get(i)
                    if f is None:
                        f = files[i] = open(os.path.join(self.tmp, _SCRATCH, f"{i:08d}.tfrecord"), "rb")
                    f.seek(pos - 12)
                    data = f.read(length + 16)
                    if len(data) != length + 16:
                        raise OSError(f"{f.name}: truncated scratch record at byte {pos - 12}")
                    w.write(data)
        finally:
            for f in files.values():
                f.close()
        os.replace(part, final)
        _trace("shard", name, t0)
        return name


def _names_runner(beam_options: Sequence[str]) -> bool:
    return any(a == "--runner" or a.startswith("--runner=") for a in beam_options)


def default_threads_per_worker(workers: int, cores: Optional[int] = None) -> int:
    """The local DirectRunner's default: the cores this process may use, shared out over `workers` processes (at
    least 1 each), so 2 workers on 2 cores run one decode thread each instead of two each."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def pipeline_options(workers: int, beam_options: Sequence[str] = ()):
    """Beam PipelineOptions: `beam_options` as given; without a `--runner` there, the DirectRunner with `workers`
    processes (multi_processing mode)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    args = list(beam_options)
    from tfvr import quiet

    if not quiet.is_verbose() and not any(a.startswith("--default_sdk_harness_log_level") for a in args):
        args.append("--default_sdk_harness_log_level=WARNING")  # the workers' INFO lines (quiet console)
    if not _names_runner(args):
        args += ["--runner=DirectRunner", f"--direct_num_workers={int(workers)}",
                 "--direct_running_mode=" + ("multi_processing" if workers > 1 else "in_memory")]
    return PipelineOptions(args)


def prepare_beam(src_dir: str | os.PathLike, out_dir: str | os.PathLike, *, layout: str = "auto",
                 settings: SceneSettings | None = None, num_shards: int = 0, val_fraction: float = 0.0,
                 seed: int = 0, overwrite: bool = False, workers: int = 2, beam_options: Sequence[str] = (),
                 extras=None, manifest_extra: Optional[dict] = None, reds_input: str = "auto",
                 threads_per_worker: Optional[int] = None):
    """`tfvr.data.prepare.prepare` as a Beam pipeline (module docstring); returns the same `PrepareResult`.

    `threads_per_worker`: decode / OpenCV threads of each worker (`video_io.set_threads`); None = the local
    DirectRunner's cores shared out (`default_threads_per_worker`), and the libraries' defaults on any other runner;
    0 = the libraries' defaults (a thread per core in every worker). It changes no output byte."""
    t_start = time.time()
    from tfvr import quiet

    try:
        with quiet.filtered_stderr():  # apache_beam's import warns about optional GCP clients
            import apache_beam as beam
    except ImportError:
        raise UserError("--runner beam needs Apache Beam: pip install 'tfvr[beam]' (or use --runner direct)") from None
    from tfvr.data import prepare as P

    settings = P.check_arguments(settings, num_shards)
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if threads_per_worker is None:
        threads_per_worker = 0 if _names_runner(beam_options) else default_threads_per_worker(workers)
    elif threads_per_worker < 0:
        raise UserError(f"--threads-per-worker must be >= 0, got {threads_per_worker}")
    src, out = Path(src_dir), Path(out_dir)
    layout_name, sources = layouts.scan(src, layout, reds_input=reds_input)
    layouts.assign_val(sources, val_fraction, seed)
    # the same output rules as the direct runner (tfvr.safety): never an input, a run or a foreign folder
    check_output(out, [src], overwrite=overwrite, what="output folder", owned=P.is_prepared_folder,
                 allow_empty_dir=True)

    reports = [VideoReport(path=s.name, split=s.split) for s in sources]
    with atomic_dir(out) as tmp:  # marked, umask applied, renamed onto OUT only when complete
        (tmp / _SCRATCH).mkdir()
        (tmp / _REPORTS).mkdir()
        est: dict[str, int] = {}
        for s, rep in zip(sources, reports):
            try:
                est[s.split] = est.get(s.split, 0) + P._estimate_bytes(s, settings)
            except (UserError, OSError) as e:
                rep.error = str(e)
                est.setdefault(s.split, 0)
        shards = {split: num_shards or max(1, min(P.MAX_AUTO_SHARDS, math.ceil(nbytes / P.SHARD_TARGET_BYTES)))
                  for split, nbytes in sorted(est.items())}
        items = [(i, s, rep) for i, (s, rep) in enumerate(zip(sources, reports))]
        t_pipe = time.time()
        with quiet.filtered_stderr(), beam.Pipeline(options=pipeline_options(workers, beam_options)) as p:
            done = (p | "Sources" >> beam.Create(items)
                    | "Spread" >> beam.Reshuffle()
                    | "ScenesAndClips" >> beam.Map(_ProcessSource(str(tmp), settings, extras, threads_per_worker)))
            _ = (done
                 | "Gather" >> beam.combiners.ToList()
                 | "AssignShards" >> beam.FlatMap(_AssignShards(shards))
                 | "GroupByShard" >> beam.GroupByKey()
                 | "WriteShards" >> beam.Map(_WriteShard(str(tmp), shards)))
        _trace("pipeline", "-", t_pipe)
        # the driver: reports in source order, empty shards, the manifest (the single-process code)
        stats = {split: P._SplitStats() for split in shards}
        for i in range(len(sources)):
            with open(tmp / _REPORTS / f"{i:08d}.pkl", "rb") as f:
                rep, clip_stats = pickle.load(f)
            reports[i] = rep
            for entry in clip_stats if not rep.error else ():
                stats[rep.split].add(_stat_clip(entry), entry[0], entry[1])
        shard_names = {}
        for split, k in shards.items():
            names = [records.shard_name(split, j, k) for j in range(k)]
            for n in names:
                if not (tmp / n).exists():
                    (tmp / n).write_bytes(b"")  # what TFRecordWriter leaves for a shard with no clips
            shard_names[split] = names
        shutil.rmtree(tmp / _SCRATCH)
        shutil.rmtree(tmp / _REPORTS)
        failed = [r for r in reports if r.error]
        manifest = P.build_manifest(layout_name, src, settings, num_shards, val_fraction, seed, reds_input, stats,
                                    shard_names, reports, manifest_extra, runner="beam", workers=workers)
        (tmp / P.MANIFEST).write_text(P._dumps(manifest))
    _trace("prepare_beam", "-", t_start)
    return P.PrepareResult(out_dir=out, manifest=manifest, failed=failed)


