"""Deformable convolution (DCNv2) speed: tfvr's implementations against each other and against torchvision.

    .venv/bin/python bench/deform_conv.py [--repeats 5] [--size 180x320] [--peer-python PATH] [--no-peer]
                                          [--dtypes float32,bfloat16,float16] [--no-xla] [--json OUT]

x 1×180×320×64, 64→64, 3×3, 8 offset groups, offsets σ = 2 px, sigmoid mask. Prints forward and forward+backward
(gradients of x, offset, mask, kernel, bias) wall-clock ms, median of --repeats after one warm-up, for
  reference       pure TF in a tf.function
  reference+XLA   the same under jit_compile=True
  kernel          the compiled op (if built) in a tf.function
and the ratios kernel/reference. torchvision.ops.deform_conv2d runs on the same inputs (converted to NCHW) when
torch is importable here, else in a child process of --peer-python (default: $TFVR_PEER_PYTHON or
/tmp/tfvr-peers/venv/bin/python, built by ../shared/tools/peer_venv.sh), and its ratio to the kernel is printed in
the same run. The machine's load average is printed before and after: the CPU may be shared.
Asserts nothing (tests never assert on time); also prints the max difference between implementations.
--dtypes adds the kernel and the reference with x, offset, mask, kernel and bias cast to that dtype (16-bit rows
are compared with the float32 reference: their difference is the rounding of the inputs and outputs).
Runs on the GPU when TensorFlow sees one (the kernel needs `python -m tfvr.ops.build --cuda`).
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
from tfvr import quiet  # noqa: E402

quiet.setup()  # before TensorFlow is imported (TFVR_VERBOSE=1 shows its logs)

GROUPS = 8


def make_inputs(h: int, w: int, c: int = 64, o: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = 9
    return {
        "x": rng.normal(size=(1, h, w, c)).astype(np.float32),
        "offset": (2.0 * rng.normal(size=(1, h, w, 2 * GROUPS * k))).astype(np.float32),
        "mask": (1 / (1 + np.exp(-rng.normal(size=(1, h, w, GROUPS * k))))).astype(np.float32),
        "kernel": rng.uniform(-1 / 24, 1 / 24, size=(3, 3, c, o)).astype(np.float32),
        "bias": rng.normal(size=(o,)).astype(np.float32),
        "upstream": rng.normal(size=(1, h, w, o)).astype(np.float32),
    }


def timed(fn, repeats: int) -> tuple[float, float, object]:
    """(median wall ms, median process CPU ms, last output). CPU time (all threads) is the steadier figure when
    other processes share the machine."""
    out = fn()  # warm-up (tracing, compilation)
    wall, cpu = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return 1000 * float(np.median(wall)), 1000 * float(np.median(cpu)), out


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


# ------------------------------------------------------------------------------------------------- torchvision
def torch_worker(path: str, repeats: int) -> dict:
    """Times torchvision.ops.deform_conv2d on the inputs saved at `path` (NHWC → NCHW); runs in any Python with
    torch + torchvision, without TensorFlow or tfvr."""
    import torch
    import torchvision

    a = dict(np.load(path))
    t = lambda v: torch.from_numpy(np.ascontiguousarray(v.transpose(0, 3, 1, 2)))  # noqa: E731
    x, offset, mask, up = t(a["x"]), t(a["offset"]), t(a["mask"]), t(a["upstream"])
    weight = torch.from_numpy(np.ascontiguousarray(a["kernel"].transpose(3, 2, 0, 1)))
    bias = torch.from_numpy(a["bias"])

    def fwd():
        with torch.no_grad():
            return torchvision.ops.deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)

    def fwd_bwd():
        leaves = [v.clone().requires_grad_(True) for v in (x, offset, mask, weight, bias)]
        xx, oo, mm, ww, bb = leaves
        y = torchvision.ops.deform_conv2d(xx, oo, ww, bb, padding=1, mask=mm)
        y.backward(up)
        return y.detach()

    f_ms, f_cpu, y = timed(fwd, repeats)
    fb_ms, fb_cpu, _ = timed(fwd_bwd, repeats)
    return {
        "forward_ms": f_ms,
        "forward_backward_ms": fb_ms,
        "forward_cpu_ms": f_cpu,
        "forward_backward_cpu_ms": fb_cpu,
        "threads": torch.get_num_threads(),
        "version": f"torch {torch.__version__}, torchvision {torchvision.__version__}",
        "y_first": y[0, :, :4, :4].numpy().transpose(1, 2, 0).tolist(),
    }


def run_torch(inputs: dict, repeats: int, peer_python: str | None) -> tuple[dict | None, str]:
    with tempfile.TemporaryDirectory(prefix="tfvr-bench-") as tmp:
        path = os.path.join(tmp, "inputs.npz")
        np.savez(path, **inputs)
        try:
            import torch  # noqa: F401
            import torchvision  # noqa: F401

            return torch_worker(path, repeats), "in-process"
        except ImportError:
            pass
        if not peer_python or not os.path.exists(peer_python):
            return None, f"torch is not importable here and no peer Python at {peer_python!r}"
        r = subprocess.run(
            [peer_python, os.path.abspath(__file__), "--torch-worker", path, "--repeats", str(repeats)],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            return None, f"peer Python failed: {r.stderr.strip()[-500:]}"
        return json.loads(r.stdout.strip().splitlines()[-1]), f"subprocess {peer_python}"


# ------------------------------------------------------------------------------------------------- tfvr
def run_tfvr(inputs: dict, repeats: int, dtypes=("float32",), xla: bool = True) -> dict[str, dict]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from tfvr.ops import deform_conv as dc

    t32 = {k: tf.constant(v) for k, v in inputs.items()}
    names = ("x", "offset", "mask", "kernel", "bias")
    results = {}
    impls = [("reference", "reference", False, "float32")]
    if xla:
        impls.append(("reference+XLA", "reference", True, "float32"))
    loaded, why = dc.kernel_status()
    if loaded:
        impls.append(("kernel", "kernel", False, "float32"))
    else:
        print(f"kernel: not available ({why})")
    for dt in dtypes:
        if dt != "float32":
            impls += [(f"reference/{dt}", "reference", False, dt)] + ([(f"kernel/{dt}", "kernel", False, dt)]
                                                                        if loaded else [])
    for label, impl, jit, dt in impls:
        t = {k: (tf.cast(v, dt) if k != "upstream" else v) for k, v in t32.items()}

        @tf.function(jit_compile=jit)
        def fwd(x, offset, mask, kernel, bias):
            return dc.deform_conv2d(x, offset, mask, kernel, bias, padding=1, offset_groups=GROUPS, impl=impl)

        @tf.function(jit_compile=jit)
        def fwd_bwd(x, offset, mask, kernel, bias, upstream):
            args = [x, offset, mask, kernel, bias]
            with tf.GradientTape() as tape:
                tape.watch(args)
                y = dc.deform_conv2d(*args, padding=1, offset_groups=GROUPS, impl=impl)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
            return y, tape.gradient(loss, args)

        f32 = lambda v: tf.cast(v, tf.float32).numpy()  # noqa: E731

        def run_fwd():
            return f32(fwd(*(t[n] for n in names)))

        def run_fwd_bwd():
            y, grads = fwd_bwd(*(t[n] for n in names), t["upstream"])
            return [f32(y)] + [f32(g) for g in grads]

        f_ms, f_cpu, y = timed(run_fwd, repeats)
        fb_ms, fb_cpu, grads = timed(run_fwd_bwd, repeats)
        results[label] = {
            "forward_ms": f_ms,
            "forward_backward_ms": fb_ms,
            "forward_cpu_ms": f_cpu,
            "forward_backward_cpu_ms": fb_cpu,
            "y": y,
            "grads": grads[1:],
        }
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", default="180x320", help="HxW of x (default 180x320)")
    ap.add_argument(
        "--peer-python",
        default=os.environ.get("TFVR_PEER_PYTHON", "/tmp/tfvr-peers/venv/bin/python"),
        help="a Python with torch + torchvision, used when torch is not importable here",
    )
    ap.add_argument("--torch-worker", metavar="NPZ", help=argparse.SUPPRESS)
    ap.add_argument("--dtypes", default="float32")
    ap.add_argument("--no-xla", action="store_true")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    if args.torch_worker:
        print(json.dumps(torch_worker(args.torch_worker, args.repeats)))
        return 0

    h, w = (int(v) for v in args.size.lower().split("x"))
    inputs = make_inputs(h, w)
    print(f"deform_conv2d: x 1×{h}×{w}×64, 64→64, 3×3, {GROUPS} offset groups; median of {args.repeats}")
    print("before:", load())
    dtypes = ["float32"] + [d for d in args.dtypes.split(",") if d and d != "float32"]
    res = run_tfvr(inputs, args.repeats, dtypes, xla=not args.no_xla)
    torch_res, how = (None, "--no-peer") if args.no_peer else run_torch(inputs, args.repeats, args.peer_python)
    print("after: ", load())
    print()
    print(f"{'implementation':<16}{'forward ms':>12}{'fwd+bwd ms':>12}{'forward CPU ms':>16}{'fwd+bwd CPU ms':>16}")
    rows = dict(res)
    if torch_res:
        rows["torchvision"] = torch_res
    for label, r in rows.items():
        print(f"{label:<16}{r['forward_ms']:>12.1f}{r['forward_backward_ms']:>12.1f}"
              f"{r['forward_cpu_ms']:>16.1f}{r['forward_backward_cpu_ms']:>16.1f}")
    if torch_res:
        print(f"torchvision: {torch_res['version']}, {torch_res['threads']} threads, {how}")
    else:
        print(f"torchvision: skipped ({how})")
    print("\nratios (wall; CPU in brackets), and the largest difference relative to the biggest magnitude:")
    base = res["reference"]

    def ratio(a, b, key):
        return f"×{a[key] / b[key]:.3f} [×{a[key.replace('_ms', '_cpu_ms')] / b[key.replace('_ms', '_cpu_ms')]:.3f}]"

    for label, r in res.items():
        if label == "reference":
            continue
        err = max(
            np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)
            for a, b in zip([r["y"]] + r["grads"], [base["y"]] + base["grads"])
        )
        print(f"  {label}/reference: forward {ratio(r, base, 'forward_ms')}, fwd+bwd "
              f"{ratio(r, base, 'forward_backward_ms')}  (values+grads rel. diff {err:.1e})")
    if torch_res:
        y = np.asarray(torch_res["y_first"], np.float32)
        for label, r in res.items():
            print(f"  {label}/torchvision: forward {ratio(r, torch_res, 'forward_ms')}, fwd+bwd "
                  f"{ratio(r, torch_res, 'forward_backward_ms')}  (max |Δy| on a 4×4 corner "
                  f"{np.abs(r['y'][0, :4, :4] - y).max():.1e})")
    if args.json:
        import tensorflow as tf

        out = {label: {k: v for k, v in r.items() if k.endswith("_ms")} for label, r in res.items()}
        for label, r in res.items():
            out[label]["rel_diff_vs_reference"] = float(max(
                np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)
                for a, b in zip([r["y"]] + r["grads"], [base["y"]] + base["grads"])))
        if torch_res:
            out["torchvision"] = {k: v for k, v in torch_res.items() if k.endswith("_ms")}
        out["_meta"] = {"size": [h, w], "repeats": args.repeats, "load": load(),
                        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU"}
        with open(args.json + ".tmp", "w") as f:
            json.dump(out, f, indent=1)
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
