"""tf.data throughput of `tfvr.data.pipeline.build_dataset`: clips/s for 5×64×64 and 5×256×256 training crops.

    .venv/bin/python bench/data_pipeline.py [--seconds 5] [--batch 16]

Writes synthetic clips (5 frames of the crop size, PNG frames, as `tfvr prepare` stores them) to a temporary
folder, then times the training pipeline: parse + decode + window + crop + flips/rot90/time reversal + on-the-fly
degradation + batch + prefetch, for several tasks. Reference (../shared/docs/platform-notes.md, 2 cores): ≈2,500
clips/s for 5×64×64 PNG clips with parse + crop + flips + batch + prefetch. Prints figures and ratios; asserts
nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tfvr import quiet  # noqa: E402

quiet.setup()  # before TensorFlow is imported (TFVR_VERBOSE=1 shows its logs)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REFERENCE_64 = 2500.0  # clips/s, platform-notes


def make_records(root: Path, size: int, num_clips: int, frames: int = 5) -> Path:
    from tfvr.data import records, synthetic
    from tfvr.data.prepare import write_dataset

    clips = []
    per_video = 4
    for v in range(-(-num_clips // per_video)):
        video = synthetic.generate(100 + v, frames * per_video, size, size, blur=False)
        for k in range(per_video):
            sl = slice(k * frames, (k + 1) * frames)
            clips.append(records.Clip(frames=video.frames[sl], source=f"v{v}", frame_indices=list(range(frames)),
                                      clip=k))
    out = root / f"clips{size}"
    write_dataset(out, {"train": clips[:num_clips]}, num_shards=4)
    return out


def measure(ds, seconds: float, batch: int) -> tuple[float, float]:
    """(clips per wall-clock second, clips per CPU-second of this process). The second figure hardly depends on
    what else the machine runs; on an otherwise idle machine wall-clock throughput approaches it times the number
    of cores the pipeline keeps busy."""
    it = iter(ds)
    for _ in range(5):  # warm-up: tracing, autotune, shuffle buffer
        next(it)
    n = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        next(it)
        n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return n * batch / wall, n * batch / max(cpu, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per configuration")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--clips", type=int, default=64, help="distinct clips written per size")
    args = ap.parse_args()

    import tensorflow as tf

    from tfvr.data import pipeline
    from tfvr.data.config import DataConfig

    try:
        from tfvr.data import degrade  # noqa: F401
        have_degrade = True
    except ImportError:
        have_degrade = False
    print(f"tf {tf.__version__}, {os.cpu_count()} CPUs, batch {args.batch}, {args.seconds:g} s per configuration")
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for size in (64, 256):
            t = time.perf_counter()
            d = make_records(Path(tmp), size, args.clips)
            mb = sum(p.stat().st_size for p in d.glob("*.tfrecord")) / 2**20
            print(f"wrote {args.clips} clips of 5x{size}x{size} ({mb:.1f} MB PNG) in {time.perf_counter() - t:.1f} s")
            configs = [("crop+flips (no degradation)", dict(task="denoise", noise_sigma=0.0, quantize=False)),
                       ("denoise sigma=25", dict(task="denoise")),
                       ("deblur (temporal average)", dict(task="deblur", blur_frames=1))]
            if have_degrade:
                configs.append(("sr x4 (MATLAB bicubic)", dict(task="sr", scale=4)))
            for name, kw in configs:
                cfg = DataConfig(source=str(d), num_frames=5, crop_size=size, batch_size=args.batch,
                                 shuffle_buffer=64, **kw)
                rate, per_cpu = measure(pipeline.build_dataset(cfg), args.seconds, args.batch)
                rows.append((size, name, rate, per_cpu))
                ref = f"  ({rate / REFERENCE_64:.2f}x the 2,500 clips/s reference)" if size == 64 else ""
                print(f"5x{size}x{size}  {name:32s} {rate:8.0f} clips/s, {per_cpu:8.0f} clips/CPU-s{ref}", flush=True)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\nsummary (load average {load:.1f} on {os.cpu_count()} CPUs; clips/s wall, clips per CPU-second):")
        for size, name, rate, per_cpu in rows:
            print(f"  5x{size}x{size:<4d} {name:32s} {rate:8.0f} {per_cpu:8.0f}")


if __name__ == "__main__":
    main()
