"""Cost of the serving input checks (issue 12, `tfvr.export.checks`): a RestorationModule's serving function with
and without `check_input`, on uint8 [1, 5, H, W, 3] windows through a 3-conv model. Prints ms per call (fastest of
alternating rounds) and the ratio. `python bench/serving_checks.py [--size 128] [--iters 20] [--rounds 6]`."""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfvr import quiet  # noqa: E402

quiet.setup()  # before TensorFlow is imported (TFVR_VERBOSE=1 shows its logs)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfvr.export import checks  # noqa: E402
from tfvr.export.restoration import RestorationModule  # noqa: E402


def model(t):
    inp = keras.Input((t, None, None, 3))
    x = keras.layers.Lambda(lambda v: tf.concat(tf.unstack(v, axis=1), -1))(inp)
    for _ in range(2):
        x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    return keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same")(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=6)
    a = ap.parse_args()
    m = model(5)
    frames = tf.constant(np.random.default_rng(0).integers(0, 256, (1, 5, a.size, a.size, 3), dtype=np.uint8))
    with_checks = RestorationModule(m, num_frames=5).serve.get_concrete_function()
    real = checks.check_input
    checks.check_input = lambda x, *args, **kw: x
    try:
        without = RestorationModule(m, num_frames=5).serve.get_concrete_function()
    finally:
        checks.check_input = real
    # alternate the two, several rounds, and keep each one's fastest round (the box is shared: load varies)
    res = {"without": float("inf"), "with": float("inf")}
    for name, fn in (("without", without), ("with", with_checks)) * a.rounds:
        fn(frames=frames)
        t0 = time.perf_counter()
        for _ in range(a.iters):
            fn(frames=frames)["restored"].numpy()
        res[name] = min(res[name], (time.perf_counter() - t0) / a.iters * 1e3)
    print(f"size {a.size}: without checks {res['without']:.2f} ms, with checks {res['with']:.2f} ms, "
          f"ratio {res['with'] / res['without']:.3f}")


if __name__ == "__main__":
    main()
