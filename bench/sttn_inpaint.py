"""STTN-I generator speed: milliseconds per 5-frame window at 432x240 (the released configuration).

    .venv/bin/python bench/sttn_inpaint.py [--frames 5] [--repeats 5] [--xla] [--threads N]

Random weights (speed does not depend on them), batch 1, the released 256 channels / 8 blocks / heads
(108,60) (36,20) (18,10) (9,5), inside `tf.function`. Prints the median over `--repeats` runs after one warm-up,
the split encoder / transformer / decoder, and with `--xla` the same under `jit_compile=True` and the ratio.
Also prints the process CPU time per window: on a shared machine (load average above the core count) wall time
measures the other jobs too. Asserts nothing.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tfvr import quiet  # noqa: E402

quiet.setup()  # before TensorFlow is imported (TFVR_VERBOSE=1 shows its logs)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _median_ms(fn, repeats, cpu=None):
    """Median wall ms; with `cpu` (a list) also appends the median process CPU ms (all threads), which other
    processes on a shared machine do not inflate the way they inflate wall time."""
    fn()  # warm-up (tracing)
    times, cpu_times = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
        cpu_times.append((time.process_time() - c0) * 1000)
    if cpu is not None:
        cpu.append(statistics.median(cpu_times))
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=5)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--width", type=int, default=432)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--xla", action="store_true", help="also time jit_compile=True")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: TensorFlow's default)")
    args = p.parse_args()

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from tfvr.models.sttn_inpaint import STTNInpaintGenerator

    gen = STTNInpaintGenerator()
    gen.build()
    t, h, w = args.frames, args.height, args.width
    rng = tf.random.Generator.from_seed(0)
    frames = rng.uniform([1, t, h, w, 3], -1, 1)
    masks = tf.cast(rng.uniform([1, t, h, w, 1]) > 0.8, tf.float32)
    x = frames * (1 - masks)
    flat, fmask = tf.reshape(x, [t, h, w, 3]), tf.reshape(masks, [t, h, w, 1])

    full = tf.function(lambda: gen((x, masks)))
    enc = tf.function(lambda: gen.encode(flat))
    feats = enc()
    trans = tf.function(lambda: gen.transform(feats, fmask, batch=1))
    dec = tf.function(lambda: gen.decode(feats))

    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"
    print(f"STTN-I generator, {t} frames {w}x{h}, {gen.count_params():,} parameters, {device}, "
          f"median of {args.repeats}")
    cpu = []
    ms = _median_ms(full, args.repeats, cpu)
    cores = os.cpu_count() or 1
    print(f"  window (tf.function):          {ms:9.1f} ms   ({ms / t:.1f} ms per frame)")
    print(f"    CPU time {cpu[0]:.0f} ms = {cpu[0] / cores:.0f} ms over {cores} cores (the wall time on an idle machine, "
          f"if TensorFlow keeps every core busy); load average now {os.getloadavg()[0]:.1f}")
    parts = {"encoder": enc, "transformer": trans, "decoder": dec}
    part_ms = {k: _median_ms(f, args.repeats) for k, f in parts.items()}
    for k, v in part_ms.items():
        print(f"    {k:<12} {v:9.1f} ms   ({100 * v / sum(part_ms.values()):.0f}%)")
    if args.xla:
        xla = tf.function(lambda: gen((x, masks)), jit_compile=True)
        t0 = time.perf_counter()
        xla()
        compile_s = time.perf_counter() - t0
        ms_xla = _median_ms(xla, args.repeats)
        err = float(tf.reduce_max(tf.abs(xla() - full())))
        print(f"  window (jit_compile=True):     {ms_xla:9.1f} ms   (first call {compile_s:.1f} s; "
              f"speed-up x{ms / ms_xla:.2f}; max abs diff {err:.1e})")


if __name__ == "__main__":
    main()
