"""Winograd 3x3 conv (tfvr.ops.winograd) vs tf.nn.conv2d at STTN-I's shapes: CPU time and error.

    .venv/bin/python bench/winograd.py [--repeats 5] [--threads 2] [--impls 4,4-noxla,2,cc] [--shapes sttn|sttn-all]

Each case is conv 3x3 (stride 1, SAME) + bias_add + LeakyReLU(0.2), as STTN-I's layers run it (the direct path is
the one TensorFlow's remapper fuses into one oneDNN op), float32, inside `tf.function`. Rounds alternate the
implementations within one process (direct, F(4x4), F(4x4) without XLA, F(2x2), direct, ...), so a shared
machine's load hits them alike. Winograd runs as `tfvr.ops.winograd.conv2d_winograd` (XLA-compiled unless
"-noxla"); "cc" is `conv2d_winograd_cc` (the compiled input / output transforms with the bias and LReLU fused, one
batched matmul between; "direct" is then the STTN-I generator's `conv2d`, which splits a 2-dilated conv on its 4
sub-grids). `--shapes sttn-all`: every stride-1 3x3 conv shape of STTN-I at 432x240 (the TF variants skip the
dilated one). Prints the median wall and process CPU ms per implementation and the direct / Winograd ratios. Error:
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
    # every stride-1 3x3 conv of STTN-I, as the generator runs it (the 2-dilated one as a dilation, which the
    # compiled transforms take directly and the direct path splits on sub-grids): for --impls cc
    "sttn-all": [("attention out, ffn2", (5, 60, 108, 256), 256),
                 ("ffn1 (2-dilated)", (5, 60, 108, 256), 256, 2),
                 ("enc1", (5, 120, 216, 64), 64),
                 ("enc3", (5, 60, 108, 128), 256),
                 ("dec0", (5, 120, 216, 256), 128),
                 ("dec1", (5, 120, 216, 128), 64),
                 ("dec2", (5, 240, 432, 64), 64)],
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
    from tfvr.models.sttn_inpaint.generator import conv2d as sttn_conv2d
    from tfvr.ops.winograd import cc_status, conv2d_winograd, conv2d_winograd_cc

    variants = [v for v in args.impls.split(",") if v]
    if "cc" in variants and not cc_status()[0]:
        print(f"  cc: compiled Winograd ops unavailable ({cc_status()[1]}); skipped")
        variants.remove("cc")
    print(f"Winograd vs tf.nn.conv2d, 3x3 stride 1 SAME + bias + LReLU, float32, {args.threads} threads, "
          f"median of {args.repeats} alternating rounds; load {os.getloadavg()}")
    rng = np.random.default_rng(0)
    for label, shape, k, *rest in SHAPES[args.shapes]:
        dil = rest[0] if rest else 1
        c = shape[-1]
        x = tf.constant(rng.uniform(-1, 1, shape).astype(np.float32))
        kern = tf.constant((rng.standard_normal((3, 3, c, k)) / np.sqrt(9 * c)).astype(np.float32))
        bias = tf.constant(rng.uniform(-0.1, 0.1, k).astype(np.float32))
        impls = {"direct": tf.function(lambda: sttn_conv2d(x, kern, bias, 1, "SAME", dil, lrelu=True))}
        for var in variants:
            if var == "cc":
                impls["F(4x4) C++"] = tf.function(lambda: conv2d_winograd_cc(x, kern, bias, dilation=dil, lrelu=True))
                continue
            if dil != 1:
                continue
            m, xla = int(var.split("-")[0]), not var.endswith("-noxla")
            impls[f"F({m}x{m})" + ("" if xla else " no XLA")] = tf.function(
                lambda m=m, xla=xla: tf.nn.leaky_relu(tf.nn.bias_add(conv2d_winograd(x, kern, "SAME", m, xla=xla),
                                                                      bias), 0.2))
        # errors, on the conv alone
        ref64 = tf.nn.conv2d(tf.cast(x, tf.float64), tf.cast(kern, tf.float64), 1, "SAME", dilations=dil)
        ref32 = tf.nn.conv2d(x, kern, 1, "SAME", dilations=dil)
        scale = float(tf.reduce_max(tf.abs(ref64)))
        err = {"direct": float(tf.reduce_max(tf.abs(tf.cast(ref32, tf.float64) - ref64)))}
        err32 = {}
        for name in impls:
            if name == "direct":
                continue
            m = int(name[2])
            if name.endswith("C++"):
                y = conv2d_winograd_cc(x, kern, dilation=dil)
            else:
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
        print(f"  {label}: x {list(shape)} -> {k} channels{f', dilation {dil}' if dil != 1 else ''}, {flop:.1f} GFLOP "
              f"direct; max |ref| {scale:.2f}")
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
