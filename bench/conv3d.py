"""STTN-I's T-PatchGAN convs, forward + backward: TensorFlow's Conv3D against `tfvr.ops.conv3d` (a sum of 2-D
convs), layer by layer, with the relative difference of the output and both gradients.

    .venv/bin/python bench/conv3d.py [--size demo|full|both] [--repeats 3] [--train-steps 12]

demo: the demo flagfile's discriminator (8 clips x 5 frames folded into one 40-frame clip, 48x48, c = 16);
full: the authors' training size (8 x 5 frames, 432x240, c = 64) for the first three layers (slow: ~1 min).
Prints ms per forward+backward of each impl and their ratio (conv3d / conv2d: > 1 means the sum of 2-D convs wins).
--train-steps N also runs the STTN-I demo (`train/sttn_inpaint.py`, its demo flagfile) for N steps with each impl
(`TFVR_CONV3D_IMPL`) in a temporary folder and prints the seconds per step of the last third of the steps (after
tracing), from the run's metrics.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def layer_shapes(frames: int, height: int, width: int, c: int, layers: int = 6):
    """(padded input shape, out channels) of each T-PatchGAN conv (`TPatchGANDiscriminator.call`'s padding)."""
    widths = [c, 2 * c, 4 * c, 4 * c, 4 * c, 4 * c][:layers]
    cin, h, w, out = 3, height, width, []
    for i, f in enumerate(widths):
        p = 1 if i == 0 else 2
        h, w = h + 2 * p, w + 2 * p
        out.append(((1, frames + 2, h, w, cin), f))
        h, w, cin = (h - 5) // 2 + 1, (w - 5) // 2 + 1, f
    return out


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_step_seconds(impl: str, steps: int, root: str) -> float:
    """Seconds per step over the last logged interval of an N-step STTN-I demo run with TFVR_CONV3D_IMPL=impl."""
    workdir = os.path.join(root, f"sttn_inpaint-{impl}")
    every = max(1, steps // 3)
    cmd = [sys.executable, "train/sttn_inpaint.py", "--flagfile=train/configs/sttn_inpaint_demo.flags",
           f"--workdir={workdir}", f"--config.trainer.num_steps={steps}", f"--config.trainer.log_every={every}",
           f"--config.trainer.eval_every={10 * steps}", f"--config.trainer.checkpoint_every={10 * steps}",
           f"--config.trainer.image_every={10 * steps}", "--config.eval_at_start=false",
           "--config.trainer.eval_at_end=false", "--config.trainer.export=false"]
    env = dict(os.environ, TFVR_CONV3D_IMPL=impl, PYTHONPATH=REPO)
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{impl}: the demo run failed (exit {r.returncode}): "
                         f"{(r.stderr.strip().splitlines() or ['?'])[-1]}")
    rates = [json.loads(line).get("steps_per_sec") for line in open(os.path.join(workdir, "metrics.jsonl"))]
    rates = [x for x in rates if x]
    return 1.0 / rates[-1]


def main() -> int:
    import tensorflow as tf

    from tfvr.ops.conv3d import conv3d

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=("demo", "full", "both"), default="demo")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=0, help="also time N demo training steps per impl (0: no)")
    args = ap.parse_args()
    cases = []
    if args.size in ("demo", "both"):
        cases += [("demo", s) for s in layer_shapes(40, 48, 48, 16)]
    if args.size in ("full", "both"):
        cases += [("full", s) for s in layer_shapes(40, 240, 432, 64, layers=3)]
    print(f"T-PatchGAN conv fwd+bwd, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; ms per call, best of "
          f"{args.repeats}")
    rng = np.random.default_rng(0)
    totals = {}  # size -> impl -> ms
    for tag, (shape, cout) in cases:
        x = tf.constant(rng.normal(size=shape).astype(np.float32))
        k = tf.constant(rng.normal(size=(3, 5, 5, shape[-1], cout)).astype(np.float32) * 0.02)
        res, ms = {}, {}
        for impl in ("conv3d", "conv2d"):
            @tf.function
            def fb(impl=impl):
                with tf.GradientTape(persistent=True) as tape:
                    tape.watch([x, k])
                    y = conv3d(x, k, (1, 2, 2), impl=impl)
                    loss = tf.reduce_sum(y * tf.sin(y))
                return y, tape.gradient(loss, x), tape.gradient(loss, k)

            res[impl] = [a.numpy() for a in fb()]
            best = float("inf")
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                fb()
                best = min(best, time.perf_counter() - t0)
            ms[impl] = best * 1e3
            totals.setdefault(tag, {}).setdefault(impl, 0.0)
            totals[tag][impl] += best * 1e3
        err = max(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) for a, b in zip(res["conv2d"], res["conv3d"]))
        print(f"{tag:>4} {str(shape):>24} -> {cout:>3}: conv3d {ms['conv3d']:9.1f}  conv2d {ms['conv2d']:9.1f}  "
              f"x{ms['conv3d'] / ms['conv2d']:.2f}  rel diff {err:.1e}", flush=True)
    for tag, t in totals.items():
        print(f"{tag} total: conv3d {t['conv3d']:.1f} ms, conv2d {t['conv2d']:.1f} ms, x{t['conv3d'] / t['conv2d']:.2f}")
    if args.train_steps:
        with tempfile.TemporaryDirectory(prefix="tfvr-bench-conv3d-") as root:
            sec = {impl: train_step_seconds(impl, args.train_steps, root) for impl in ("conv3d", "conv2d")}
        print(f"STTN-I demo train step ({args.train_steps} steps, the last {max(1, args.train_steps // 3)} timed): "
              f"conv3d {sec['conv3d']:.2f} s, conv2d {sec['conv2d']:.2f} s, x{sec['conv3d'] / sec['conv2d']:.2f}, "
              f"load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
