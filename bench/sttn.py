"""STTN-R inference speed and memory: ms per restored frame at 256x256 and 720p (whole and tiled), peak RSS.

    python bench/sttn.py                       # the demo-sized and the default-sized model, random weights
    python bench/sttn.py --model runs/demo/sttn_denoise/export      # an exported SavedModel instead
    python bench/sttn.py --threads 2 --repeats 5
    python bench/sttn.py --dtypes float32,bfloat16 --skip-whole-720p

Each case runs in its own process (so its peak RSS is its own) through the same uint8 serving function that
`tfvr restore` calls (`RestorationModule.serve`, or the SavedModel's serving_default): one window of 2N+1 frames
in, the restored centre frame out; 720p tiled uses `tfvr.inference.tiling.restore_window` (what `tfvr restore` runs) with --tile/--tile-overlap.
Times are the median of --repeats calls after one warm-up call. Prints figures and ratios; asserts nothing.

GFLOP/s: 2 × the multiply-adds of every convolution of one forward (counted by wrapping Keras's Conv2D at a small
size and scaled by the padded area; the sampler and the pointwise ops are not counted) / the time, printed against
the machine's float32 matmul peak measured in the same run (TF `tf.matmul` 4096×4096, same thread count, in its own
process; bfloat16 matmul too, for reference). --dtypes runs the random-weight presets also with the serving graph's
compute dtype set by `tfvr.export.precision` (what `tfvr export --precision` does) and prints the time ratio and
the PSNR of that output against the float32 output (same weights, uint8, as served).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfvr import quiet  # noqa: E402

quiet.setup()  # before TensorFlow is imported (TFVR_VERBOSE=1 shows its logs)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRESETS = {
    # train/configs/sttn_denoise_demo.flags
    "demo": dict(unet_feat=16, unet_depth=3, unet_max_feat=64, num_feat=32, num_blocks=5, num_flows=4,
                 z_init="spread"),
    # STTNRestoreConfig defaults (U-Net 32..128, ResNet-9 with 64 channels)
    "default": dict(),
}


def _case(args_json: str) -> None:
    """Runs one case in this process and prints one JSON line."""
    import resource
    import time

    import numpy as np
    import tensorflow as tf

    a = json.loads(args_json)
    tf.config.threading.set_intra_op_parallelism_threads(a["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(a["threads"])
    if a.get("matmul"):
        n = 4096
        out = {}
        for name in ("float32", "bfloat16"):
            x = tf.cast(tf.random.stateless_uniform([n, n], [1, 2]), name)
            fn = tf.function(lambda: tf.reduce_sum(tf.cast(tf.matmul(x, x)[:1, :1], tf.float32)))
            fn()
            ts = []
            for _ in range(a["repeats"]):
                t0 = time.perf_counter()
                fn().numpy()
                ts.append(time.perf_counter() - t0)
            out[name] = 2 * n**3 / float(np.median(ts)) / 1e9
        print(json.dumps(out))
        return
    sys.path.insert(0, ROOT)
    from tfvr.export.restoration import RestorationModule
    from tfvr.inference.client import open_model
    from tfvr.inference.tiling import restore_window
    from tfvr.models.sttn_restore import STTNRestore

    if a["model"]:
        model = open_model(a["model"], "restoration", "bench/sttn.py")
        t = model.num_frames
        params = flops = None
    else:
        import keras

        keras.utils.set_random_seed(0)  # the same random weights in every case's process (dtypes are compared)
        keras_model = STTNRestore(**PRESETS[a["preset"]])
        keras_model(tf.zeros([1, keras_model.num_frames, 16, 16, 3]))
        rng = np.random.default_rng(1)
        for v in keras_model.head.conv_last.weights:  # zero-initialised: give the residual some signal
            v.assign(rng.normal(0, 0.02, v.shape).astype(np.float32))
        params = keras_model.count_params()
        flops = _conv_flops(keras_model, *a["size"])
        if a.get("dtype", "float32") != "float32":
            from tfvr.export.precision import apply_precision

            apply_precision(keras_model, a["dtype"])
        module = RestorationModule(keras_model, keras_model.num_frames, multiple=keras_model.multiple)
        t = keras_model.num_frames

        class _Direct:
            num_frames, scale = t, 1

            @staticmethod
            def restore(frames):
                return module.serve(tf.constant(frames))["restored"].numpy()

        model = _Direct()
    h, w = a["size"]
    # A generated video (smooth objects, real motion), not white noise: on noise, any sub-pixel change of the
    # sampling flow changes every sampled value, which would make the precision comparison meaningless.
    from tfvr.data import synthetic

    window = synthetic.generate(0, t, h, w, blur=False).frames
    times = []
    for i in range(a["repeats"] + 1):
        t0 = time.perf_counter()
        out = restore_window(model.restore, window, model.scale, a["tile"], a["overlap"])
        if i:
            times.append(time.perf_counter() - t0)
    assert out.shape == (h, w, 3)
    if a.get("save"):
        np.save(a["save"], out)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"ms": 1000 * float(np.median(times)), "rss_mb": rss, "params": params, "gflop": flops}))


def _conv_flops(model, h, w) -> float:
    """GFLOP (2 × multiply-adds) of the convolutions of one forward at h×w (padded to the model's multiple)."""
    import keras
    import numpy as np
    import tensorflow as tf

    total = [0.0]
    call = keras.layers.Conv2D.call

    def rec(self, inputs):
        y = call(self, inputs)
        kh, kw, cin, cout = self.kernel.shape
        total[0] += 2.0 * kh * kw * cin * cout * float(np.prod(y.shape[:3]))
        return y

    m = model.multiple
    keras.layers.Conv2D.call = rec
    try:
        model(tf.zeros([1, model.num_frames, 4 * m, 4 * m, 3]))
    finally:
        keras.layers.Conv2D.call = call
    hp, wp = -(-h // m) * m, -(-w // m) * m
    return total[0] * hp * wp / (16 * m * m) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="", help="an exported SavedModel (default: random-weight presets)")
    p.add_argument("--presets", default="demo,default", help="comma-separated: " + ", ".join(PRESETS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--skip-whole-720p", action="store_true", help="do not run 720p untiled")
    p.add_argument("--dtypes", default="float32", help="compute dtypes, e.g. float32,bfloat16 (presets only)")
    p.add_argument("--no-peak", action="store_true", help="skip the matmul peak measurement")
    p.add_argument("--_case", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._case:
        _case(args._case)
        return
    import tempfile

    import numpy as np

    sys.path.insert(0, ROOT)
    from tfvr.metrics import psnr

    cases = [("256x256", (256, 256), 0), ("720p tiled", (720, 1280), args.tile)]
    if not args.skip_whole_720p:
        cases.insert(1, ("720p whole", (720, 1280), 0))
    presets = ["savedmodel"] if args.model else args.presets.split(",")
    dtypes = ["float32"] + ([d for d in args.dtypes.split(",") if d and d != "float32"] if not args.model else [])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    def child(spec):
        res = subprocess.run([sys.executable, __file__, "--_case", json.dumps(spec)], capture_output=True,
                             text=True, env=env)
        if res.returncode != 0:
            return {"error": (res.stderr.strip().splitlines() or ["?"])[-1]}
        return json.loads(res.stdout.strip().splitlines()[-1])

    print(f"STTN-R inference, 1 window of 2N+1 uint8 frames -> 1 frame, {args.threads} threads, "
          f"median of {args.repeats}; tile {args.tile}, overlap {args.overlap}; load average "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs")
    peak = None if args.no_peak else child(dict(matmul=True, threads=args.threads, repeats=args.repeats))
    if peak and "error" not in peak:
        print(f"matmul peak (tf.matmul 4096x4096, {args.threads} threads): float32 {peak['float32']:.1f} GFLOP/s, "
              f"bfloat16 {peak['bfloat16']:.1f} GFLOP/s")
    scratch = tempfile.mkdtemp(prefix="tfvr-bench-sttn-")
    print(f"{'model':<12} {'dtype':<9} {'case':<12} {'ms/frame':>10} {'ms/Mpixel':>10} {'peak RSS MB':>12} "
          f"{'params':>10} {'GFLOP/s':>8} {'% f32 peak':>10} {'f32/this':>8} {'PSNR vs f32':>11}")
    for preset in presets:
        base = None
        for name, size, tile in cases:
            ref = None
            for dt in dtypes:
                save = os.path.join(scratch, f"{preset}_{name.replace(' ', '_')}_{dt}.npy")
                spec = dict(model=args.model, preset=preset, size=size, tile=tile, overlap=args.overlap,
                            threads=args.threads, repeats=args.repeats, dtype=dt, save=save)
                r = child(spec)
                if "error" in r:
                    print(f"{preset:<12} {dt:<9} {name:<12} failed: {r['error']}")
                    continue
                mpix = size[0] * size[1] / 1e6
                if dt == "float32":
                    ref = r
                    base = base or r["ms"] / mpix
                rate = r["gflop"] / (r["ms"] / 1000) if r.get("gflop") and not tile else None
                frac = (f"{100 * rate / peak['float32']:9.0f}%" if rate and peak and "error" not in peak
                        else f"{'':>10}")
                ratio = f"{ref['ms'] / r['ms']:7.2f}x" if ref and dt != "float32" else f"{'':>8}"
                pf = ""
                if dt != "float32" and ref and os.path.exists(save):
                    pf = f"{psnr(np.load(save), np.load(save.replace(dt + '.npy', 'float32.npy'))):11.2f}"
                print(f"{preset:<12} {dt:<9} {name:<12} {r['ms']:>10.1f} {r['ms'] / mpix:>10.1f} {r['rss_mb']:>12.0f} "
                      f"{r['params'] or '':>10} {(f'{rate:8.1f}' if rate else ''):>8} {frac} {ratio} {pf:>11}"
                      f"   ({r['ms'] / mpix / base:.2f}x the 256x256 float32 cost per pixel)")
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    print("load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
