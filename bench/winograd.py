"""Winograd 3x3 conv (tfvr.ops.winograd) vs tf.nn.conv2d at STTN-I's shapes: CPU time and error.

    .venv/bin/python bench/winograd.py [--repeats 5] [--threads 2] [--impls 4,4-noxla,2] [--shapes sttn]

Each case is conv 3x3 (stride 1, SAME) + bias_add + LeakyReLU(0.2), as STTN-I's layers run it (the direct path is
the one TensorFlow's remapper fuses into one oneDNN op), float32, inside `tf.function`. Rounds alternate the
implementations within one process (direct, F(4x4), F(4x4) without XLA, F(2x2), direct, ...), so a shared
machine's load hits them alike. Winograd runs as `tfvr.ops.winograd.conv2d_winograd` (XLA-compiled unless
"-noxla"). Prints the median wall and process CPU ms per implementation and the direct / Winograd ratios. Error:
max |y - ref| and that over max |ref| (the "relative" figure), for inputs uniform in [-1, 1] and a kernel of std
1 / sqrt(9 C) (unit-scale outputs), against tf.nn.conv2d in float32, and both against a float64 tf.nn.conv2d.
Asserts nothing.
"""

import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHAPES = {
    # STTN-I at 432x240, 5 frames: feature map 108x60; the FFN's 2-dilated conv runs on the 4 sub-grids (54x30).
    "sttn": [("attention out, ffn2", (5, 60, 108, 256), 256),
             ("ffn1 (2-dilated, on its 4 sub-grids)", (20, 30, 54, 256), 256),
             ("enc3", (5, 60, 108, 128), 256),
             ("dec0", (5, 120, 216, 256), 128)],
    "small": [("small", (2, 24, 40, 64), 64)],
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--impls", default="4,4-noxla,2", help="Winograd variants: tile, with -noxla for plain TF ops")
    p.add_argument("--shapes", default="sttn", choices=sorted(SHAPES))
    args = p.parse_args()

    import numpy as np
    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from tfvr.ops.winograd import conv2d_winograd

    variants = [v for v in args.impls.split(",") if v]
    print(f"Winograd vs tf.nn.conv2d, 3x3 stride 1 SAME + bias + LReLU, float32, {args.threads} threads, "
          f"median of {args.repeats} alternating rounds; load {os.getloadavg()}")
    rng = np.random.default_rng(0)
    for label, shape, k in SHAPES[args.shapes]:
        c = shape[-1]
        x = tf.constant(rng.uniform(-1, 1, shape).astype(np.float32))
        kern = tf.constant((rng.standard_normal((3, 3, c, k)) / np.sqrt(9 * c)).astype(np.float32))
        bias = tf.constant(rng.uniform(-0.1, 0.1, k).astype(np.float32))
        impls = {"direct": tf.function(lambda: tf.nn.leaky_relu(tf.nn.bias_add(tf.nn.conv2d(x, kern, 1, "SAME"), bias),
                                                                 0.2))}
        for var in variants:
            m, xla = int(var.split("-")[0]), not var.endswith("-noxla")
            impls[f"F({m}x{m})" + ("" if xla else " no XLA")] = tf.function(
                lambda m=m, xla=xla: tf.nn.leaky_relu(tf.nn.bias_add(conv2d_winograd(x, kern, "SAME", m, xla=xla),
                                                                      bias), 0.2))
        # errors, on the conv alone
        ref64 = tf.nn.conv2d(tf.cast(x, tf.float64), tf.cast(kern, tf.float64), 1, "SAME")
        ref32 = tf.nn.conv2d(x, kern, 1, "SAME")
        scale = float(tf.reduce_max(tf.abs(ref64)))
        err = {"direct": float(tf.reduce_max(tf.abs(tf.cast(ref32, tf.float64) - ref64)))}
        err32 = {}
        for name in impls:
            if name == "direct":
                continue
            m = int(name[2])
            y = conv2d_winograd(x, kern, "SAME", m, xla="no XLA" not in name)
            err[name] = float(tf.reduce_max(tf.abs(tf.cast(y, tf.float64) - ref64)))
            err32[name] = float(tf.reduce_max(tf.abs(y - ref32)))
        for f in impls.values():
            f()  # trace + warm-up
        wall = {n: [] for n in impls}
        cpu = {n: [] for n in impls}
        for _ in range(args.repeats):
            for name, f in impls.items():
                t0, c0 = time.perf_counter(), time.process_time()
                f().numpy()
                wall[name].append((time.perf_counter() - t0) * 1000)
                cpu[name].append((time.process_time() - c0) * 1000)
        med = statistics.median
        flop = 2 * 9 * np.prod(shape) * k / 1e9
        print(f"  {label}: x {list(shape)} -> {k} channels, {flop:.1f} GFLOP direct; max |ref| {scale:.2f}")
        for name in impls:
            r = "" if name == "direct" else (f"  direct/this: wall x{med(wall['direct']) / med(wall[name]):.2f}, "
                                             f"CPU x{med(cpu['direct']) / med(cpu[name]):.2f}")
            e = f"err vs float64 {err[name]:.2e} ({err[name] / scale:.1e} rel)"
            if name in err32:
                e += f", vs tf.nn.conv2d float32 {err32[name]:.2e} ({err32[name] / scale:.1e} rel)"
            print(f"    {name:<14} wall {med(wall[name]):8.1f} ms  CPU {med(cpu[name]):8.1f} ms  {e}{r}")
    print(f"  load average now {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
