"""STTN-R inference speed and memory: ms per restored frame at 256x256 and 720p (whole and tiled), peak RSS.

    python bench/sttn.py                       # the demo-sized and the default-sized model, random weights
    python bench/sttn.py --model runs/demo/sttn_denoise/export      # an exported SavedModel instead
    python bench/sttn.py --threads 2 --repeats 5

Each case runs in its own process (so its peak RSS is its own) through the same uint8 serving function that
`tfvr restore` calls (`RestorationModule.serve`, or the SavedModel's serving_default): one window of 2N+1 frames
in, the restored centre frame out; 720p tiled uses `tfvr.cli.restore.restore_window` with --tile/--tile-overlap.
Times are the median of --repeats calls after one warm-up call. Prints figures and ratios; asserts nothing.
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
    sys.path.insert(0, ROOT)
    from tfvr.cli.restore import WindowModel, restore_window
    from tfvr.export.restoration import RestorationModule
    from tfvr.models.sttn_restore import STTNRestore

    if a["model"]:
        model = WindowModel(a["model"])
        t = model.num_frames
        params = None
    else:
        keras_model = STTNRestore(**PRESETS[a["preset"]])
        keras_model(tf.zeros([1, keras_model.num_frames, 16, 16, 3]))
        params = keras_model.count_params()
        module = RestorationModule(keras_model, keras_model.num_frames, multiple=keras_model.multiple)
        t = keras_model.num_frames

        class _Direct:
            num_frames, scale = t, 1

            @staticmethod
            def restore(frames):
                return module.serve(tf.constant(frames))["restored"].numpy()

        model = _Direct()
    h, w = a["size"]
    window = np.random.default_rng(0).integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    times = []
    for i in range(a["repeats"] + 1):
        t0 = time.perf_counter()
        out = restore_window(model, window, a["tile"], a["overlap"])
        if i:
            times.append(time.perf_counter() - t0)
    assert out.shape == (h, w, 3)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"ms": 1000 * float(np.median(times)), "rss_mb": rss, "params": params}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="", help="an exported SavedModel (default: random-weight presets)")
    p.add_argument("--presets", default="demo,default", help="comma-separated: " + ", ".join(PRESETS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--overlap", type=int, default=32)
    p.add_argument("--skip-whole-720p", action="store_true", help="do not run 720p untiled")
    p.add_argument("--_case", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._case:
        _case(args._case)
        return
    cases = [("256x256", (256, 256), 0), ("720p tiled", (720, 1280), args.tile)]
    if not args.skip_whole_720p:
        cases.insert(1, ("720p whole", (720, 1280), 0))
    presets = ["savedmodel"] if args.model else args.presets.split(",")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    print(f"STTN-R inference, 1 window of 2N+1 uint8 frames -> 1 frame, {args.threads} threads, "
          f"median of {args.repeats}; tile {args.tile}, overlap {args.overlap}")
    print(f"{'model':<12} {'case':<12} {'ms/frame':>10} {'ms/Mpixel':>10} {'peak RSS MB':>12} {'params':>10}")
    for preset in presets:
        base = None
        for name, size, tile in cases:
            spec = dict(model=args.model, preset=preset, size=size, tile=tile, overlap=args.overlap,
                        threads=args.threads, repeats=args.repeats)
            res = subprocess.run([sys.executable, __file__, "--_case", json.dumps(spec)], capture_output=True,
                                 text=True, env=env)
            if res.returncode != 0:
                tail = (res.stderr.strip().splitlines() or ["?"])[-1]
                print(f"{preset:<12} {name:<12} failed: {tail}")
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            mpix = size[0] * size[1] / 1e6
            base = base or r["ms"] / mpix
            print(f"{preset:<12} {name:<12} {r['ms']:>10.1f} {r['ms'] / mpix:>10.1f} {r['rss_mb']:>12.0f} "
                  f"{r['params'] or '':>10}   ({r['ms'] / mpix / base:.2f}x the 256x256 cost per pixel)")


if __name__ == "__main__":
    main()
