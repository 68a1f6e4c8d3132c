"""The embedded default data set: synthetic videos → .mp4 → `tfvr prepare` → cached TFRecord clips.

    records_dir = ensure(cfg)        # cfg: DataConfig with source == "synthetic"

`ensure` generates `cfg.synthetic.num_train_videos` training and `num_eval_videos` held-out videos with
`tfvr.data.synthetic.generate` (training video i from seed `seed + i`, held-out video j from `seed + 1_000_003 + j`:
disjoint seeds), writes them as .mp4 files (train/ and val/ folders) and runs the real preparation path on them
(`tfvr.data.prepare.prepare`: PySceneDetect scene split, sampling, fade / near-uniform filter, clip cutting,
sharding), so the code that prepares real videos runs every time the default data is made.

What an .mp4 cannot carry is written into the records directly from the generator, for the frames the
preparation kept (matched by frame number): the GoPro-style blurred frames (`lq`, kind "blur", for deblurring),
the semantic `labels` and `instances` maps (label-to-video), and, with `synthetic.exact_frames` (default), the
exact sharp frames instead of the mpeg-4 decoded ones (clean ground truth; the decoded frames still drive scene
detection and the frame filter).

The result is cached in `<cache_dir>/synthetic-<hash>/`, the hash covering everything that changes the data (the
`synthetic` group, `VERSION` and the source of the generator / preparation modules); a second call returns at once. `cache_dir` is `cfg.cache_dir`, else
`$TFVR_CACHE`, else `~/.cache/tfvr`. A lock file keeps two processes (e.g. two workers on one machine) from
generating the same set at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tfvr.data.config import DataConfig, SyntheticConfig

# Bump when the generator, the preparation or this recipe changes what the records hold.
VERSION = 1
EVAL_SEED_OFFSET = 1_000_003


def cache_root(cfg: DataConfig) -> Path:
    root = cfg.cache_dir or os.environ.get("TFVR_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tfvr")
    return Path(root)


# The code whose changes change the data: a new version of any of these makes a new cache entry.
_CODE = ("synthetic.py", "scenes.py", "prepare.py", "records.py", "synthetic_records.py")


def _code_digest() -> str:
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _CODE:
        h.update((here / name).read_bytes())
    return h.hexdigest()


def settings_hash(s: SyntheticConfig) -> str:
    """Cache key: the `synthetic` settings, `VERSION` and the source of the modules that make the data."""
    payload = json.dumps({"version": VERSION, "code": _code_digest(), **dataclasses.asdict(s)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def video_plan(s: SyntheticConfig) -> list[tuple[str, str, int, dict]]:
    """(split, file name, seed, generate() options) of every video of the set."""
    cuts = max(1, s.num_frames // 24) if s.cuts and s.num_frames >= 8 else 0
    plan = []
    for split, count, base in (("train", s.num_train_videos, s.seed), ("val", s.num_eval_videos,
                                                                         s.seed + EVAL_SEED_OFFSET)):
        for i in range(count):
            # Every 4th video fades in and out (exercises the fade filter).
            fade = 3 if i % 4 == 3 and s.num_frames >= 3 * s.clip_len else 0
            plan.append((split, f"{split}/video_{i:03d}.mp4", base + i, {"cuts": cuts, "fade_frames": fade}))
    return plan


@contextlib.contextmanager
def _lock(path: Path):
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure(cfg: DataConfig, progress: bool = False) -> Path:
    """The prepared records folder of the synthetic set of `cfg.synthetic` (made and cached on first use)."""
    s = cfg.synthetic
    root = cache_root(cfg)
    out = root / f"synthetic-{settings_hash(s)}"
    if (out / "manifest.json").is_file():
        return out
    with _lock(root / f".{out.name}.lock"):
        if (out / "manifest.json").is_file():  # made by another process while we waited
            return out
        t0 = time.perf_counter()
        print(f"tfvr: generating the embedded synthetic data ({s.num_train_videos} + {s.num_eval_videos} videos of "
              f"{s.num_frames} frames, {s.width}x{s.height}) into {out} (first use only)", file=sys.stderr,
              flush=True)
        build(s, out, progress=progress)
        print(f"tfvr: synthetic data ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return out


def build(s: SyntheticConfig, out: Path, progress: bool = False) -> dict:
    """Generates the videos of `s` and prepares them into `out` (replacing it). Returns the manifest."""
    from tfvr.data import synthetic
    from tfvr.data.prepare import prepare
    from tfvr.data.scenes import SceneSettings
    from tfvr.errors import UserError

    out = Path(out)
    src = out.parent / f".{out.name}.src-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    plan = video_plan(s)
    by_name = {name: (seed, opts) for _, name, seed, opts in plan}

    def make(seed: int, opts: dict):
        return synthetic.generate(seed, s.num_frames, s.height, s.width, fps=s.fps, **opts)

    # Keep the generated videos for the records when they fit in memory; else generate each one again.
    keep = len(plan) * s.num_frames * s.height * s.width * 14 < (1 << 30)
    cache: dict = {}
    try:
        def make_and_write(item):
            _, name, seed, opts = item
            video = make(seed, opts)
            synthetic.write_mp4(video, src / name, fps=s.fps)
            return name, (video if keep else None)

        # Threads: OpenCV (warps, mp4 encoding) releases the GIL; ~1.5x faster on 2 cores.
        with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
            for name, video in pool.map(make_and_write, plan):
                if video is not None:
                    cache[name] = video

        def extras(source, indices, decoded):
            if source.name not in cache:
                cache.clear()  # one video in memory at a time
                cache[source.name] = make(*by_name[source.name])
            v = cache[source.name]
            idx = np.asarray(indices)
            frames = v.frames[idx] if s.exact_frames else [f[: s.height, : s.width] for f in decoded]
            return {"frames": frames, "lq": v.blurred[idx], "lq_kind": "blur", "labels": v.labels[idx],
                    "instances": v.instances[idx]}

        settings = SceneSettings(interval=1.0 / s.fps, clip_len=s.clip_len)
        result = prepare(src, out, layout="videos", settings=settings, overwrite=True, progress=progress,
                         extras=extras, manifest_extra={"synthetic": {"version": VERSION, **dataclasses.asdict(s)}})
        if result.failed:
            raise UserError(f"synthetic data: preparing {result.failed[0].path} failed: {result.failed[0].error}")
        return result.manifest
    finally:
        shutil.rmtree(src, ignore_errors=True)
