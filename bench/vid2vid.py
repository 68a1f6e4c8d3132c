"""vid2vid generation speed: milliseconds per generated frame at 256×512 (the streaming next-frame step).

    .venv/bin/python bench/vid2vid.py [--preset nvidia|demo] [--height 256 --width 512] [--repeats 5] [--xla]

Random weights (speed does not depend on them), batch 1, inside `tf.function`, inference mode: one call of the
generator = one new frame (labels t−2..t + the two previous outputs → frame t, flow, occlusion weight, warp and
the foreground composite). Presets: "nvidia" = NVIDIA/vid2vid's defaults for Cityscapes (ngf 128, 3
down-samplings, 9 ResNet blocks, foreground model, 35 classes + instance edges: `scripts/street/train_512.sh`);
"demo" = train/configs/vid2vid_demo.flags' small model. Prints the median wall ms and process CPU ms per frame
(on a shared machine wall time measures the other jobs too), the first-frame step (labels only), and with
`--xla` the same under `jit_compile=True`. Asserts nothing.
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

PRESETS = {
    "nvidia": dict(label_nc=35, use_instance=True, ngf=128, n_downsampling=3, n_blocks=9, use_fg_model=True,
                   fg_labels=(26,)),
    "demo": dict(label_nc=5, ngf=16, n_downsampling=2, n_blocks=4, use_fg_model=True, fg_labels=(2, 3, 4)),
}


def _timed(fn, repeats):
    fn()  # warm-up (tracing)
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="nvidia")
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--xla", action="store_true", help="also time jit_compile=True")
    args = p.parse_args()

    import numpy as np
    import tensorflow as tf

    from tfvr.models.vid2vid.generator import Vid2VidGenerator

    cfg = PRESETS[args.preset]
    gen = Vid2VidGenerator(**cfg)
    h, w = args.height, args.width
    rng = np.random.default_rng(0)
    labels = tf.constant(rng.integers(0, cfg["label_nc"], (1, 3, h, w)), tf.int32)
    inst = tf.constant(rng.integers(0, 8, (1, 3, h, w)), tf.int32) if cfg.get("use_instance") else None
    prev = tf.constant(rng.uniform(-1, 1, (1, 2, h, w, 3)), tf.float32)
    gen(labels, prev, inst)
    gen(labels, None, inst)
    params = sum(int(np.prod(v.shape)) for v in gen.trainable_variables)
    print(f"vid2vid generator, preset {args.preset} ({params / 1e6:.1f} M parameters), {w}x{h}, batch 1, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    rows = []
    for xla in ([False, True] if args.xla else [False]):
        step = tf.function(lambda a, b, c: gen(a, b, c, training=False), jit_compile=xla)
        first = tf.function(lambda a, c: gen(a, None, c, training=False), jit_compile=xla)
        tag = "xla" if xla else "graph"
        rows.append((f"next frame ({tag})", *_timed(lambda: step(labels, prev, inst)["img_final"].numpy(),
                                                     args.repeats)))
        rows.append((f"first frame ({tag})", *_timed(lambda: first(labels, inst)["img_final"].numpy(),
                                                      args.repeats)))
    for name, wall, cpu in rows:
        print(f"  {name:<22} {wall:9.1f} ms/frame wall   {cpu:9.1f} ms/frame CPU   {1000 / wall:6.2f} frames/s")
    if args.xla:
        print(f"  xla speed-up (next frame, wall): {rows[0][1] / rows[2][1]:.2f}x")


if __name__ == "__main__":
    main()
