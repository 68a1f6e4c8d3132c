"""EDVR-M speed on this machine: tfvr per deformable-conv implementation, and BasicSR side by side.

    .venv/bin/python bench/edvr.py [--repeats 3] [--impls reference,kernel] [--cases fwd64,fwd180,train64]
                                   [--dtypes float32,bfloat16] [--peer-python PATH] [--no-peer] [--json OUT]

Cases (EDVR-M: 64 ch, 5 frames, 8 deformable groups, 5 + 10 residual blocks, TSA; random weights, random offsets so
the DCN sampling is not trivial):
  fwd64     forward, input 1×5×64×64 (LR) → 1×256×256
  fwd180    forward, input 1×5×180×320 (a REDS LR frame) → 1×720×1280
  train64   one training step: batch 4, input 5×64×64, target 256×256, Charbonnier (sum), Adam
  school    forward on a real clip: 5 frames of ../shared/data/schoolgirls (432×240) around frame 40, MATLAB
            bicubic ×1/4 → 108×60 LR → 432×240; PSNR of the output against the ground-truth centre frame
--dtypes: every forward case also runs with the serving graph's compute dtype set by `tfvr.export.precision`
(what `tfvr export --precision` does: mixed policies, float32 offsets / final add), and prints its time and its
output's PSNR against the float32 output of the same weights (uint8, as served); for `school` also the PSNR
against the ground truth of both. **Weights are random** (seeded; identical across dtypes), so PSNR against the
ground truth says nothing about EDVR's quality: only the float32 vs reduced-precision difference means something.
bfloat16 is only fast on CPUs with AVX512-BF16 / AMX (or GPUs); elsewhere TensorFlow emulates it.
Every (implementation, case) runs in its own child process, so "peak RSS" is that process's max resident set
(ru_maxrss, including TensorFlow itself, ≈0.6 GB). Times are wall-clock ms, median of --repeats after one warm-up
call (tracing); "CPU ms" is the process's CPU time (all threads) of the median call, less sensitive to other load
than wall time (but PyTorch's OpenMP threads spin while waiting, which counts). GFLOP/s = the model's multiply-adds × 2 (convs and DCNs counted at their output resolution, as
BasicSR's network computes them - tfvr skips part of the reference-frame work in PCD, which is not subtracted;
bilinear sampling not counted; a training step counted as 3 × forward) / time.

BasicSR 1.4.2 (torch CPU, torchvision deform_conv2d) runs the same cases in a child process of --peer-python
(default $TFVR_PEER_PYTHON or /tmp/tfvr-peers/venv/bin/python, built by ../shared/tools/peer_venv.sh), and the
ratios BasicSR / tfvr are printed in the same run. The load average is printed before and after: on a shared
machine, numbers are only comparable within one run. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfvr import quiet  # noqa: E402

quiet.setup()  # before TensorFlow is imported (TFVR_VERBOSE=1 shows its logs)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {
    "fwd64": dict(batch=1, h=64, w=64, train=False),
    "fwd180": dict(batch=1, h=180, w=320, train=False),
    "train64": dict(batch=4, h=64, w=64, train=True),
    "school": dict(batch=1, h=60, w=108, train=False, real=True),
}
SCHOOLGIRLS = os.environ.get("TFVR_SCHOOLGIRLS", os.path.join(os.path.dirname(REPO), "shared", "data", "schoolgirls",
                                                              "video.mp4"))
if not os.path.exists(SCHOOLGIRLS):
    SCHOOLGIRLS = "/work/shared/data/schoolgirls/video.mp4"
EDVR_M = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_frame=5, deformable_groups=8, num_extract_block=5,
              num_reconstruct_block=10, center_frame_idx=None, hr_in=False, with_predeblur=False, with_tsa=True)
OFFSET_STD = 0.01  # offset-conv weights: offsets of a few pixels (BasicSR zero-initialises them: trivial sampling)


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def real_clip(centre: int = 40, frames: int = 5):
    """(LR [1, 5, 60, 108, 3] float32, GT centre frame uint8 [240, 432, 3]) from the schoolgirls clip."""
    sys.path.insert(0, REPO)
    from tfvr.data.degrade import imresize
    from tfvr.data.video_io import read_video

    video = read_video(SCHOOLGIRLS, max_frames=centre + frames).frames
    window = video[centre - frames // 2: centre + frames // 2 + 1]
    lq = np.stack([np.clip(imresize(f.astype(np.float32) / 255.0, 0.25), 0, 1) for f in window])
    return lq[None].astype(np.float32), window[frames // 2]


def inputs(case: dict, seed: int = 0):
    if case.get("real"):
        lq, gt = real_clip()
        return lq, gt
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(case["batch"], 5, case["h"], case["w"], 3)).astype(np.float32)
    gt = rng.uniform(size=(case["batch"], 4 * case["h"], 4 * case["w"], 3)).astype(np.float32)
    return x, gt


CPU_MS: list[float] = []  # process CPU time (user + system, all threads) of each timed call


def time_it(fn, repeats: int) -> list[float]:
    fn()  # warm-up: tracing
    out = []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t0))
        CPU_MS.append(1000 * (time.process_time() - c0))
    return out


# --------------------------------------------------------------------------------------------------- tfvr worker
def count_flops(model, x) -> float:
    """2 × multiply-adds of every conv / DCN in one forward of `model` on `x` (recorded by wrapping their calls)."""
    import keras
    import tensorflow as tf

    from tfvr.layers.deform_conv import ModulatedDeformConv2D
    from tfvr.models.edvr import model as edvr_model

    total = [0.0]
    split_conv = edvr_model._conv_cat_ref

    def unsplit(conv, x, ref, num_frames):  # count the model's FLOPs (BasicSR's), not tfvr's shortcut
        if num_frames is not None:
            ref = tf.repeat(ref, num_frames, axis=0)
        return split_conv(conv, x, ref, None)

    conv_call, dcn_call = keras.layers.Conv2D.call, ModulatedDeformConv2D.call

    def conv_rec(self, inputs):
        y = conv_call(self, inputs)
        kh, kw, cin, cout = self.kernel.shape
        total[0] += 2.0 * kh * kw * cin * cout * float(np.prod(y.shape[:3]))
        return y

    def dcn_rec(self, x_, guide):
        y = dcn_call(self, x_, guide)
        kh, kw, cin, cout = self.kernel.shape
        n = float(np.prod(y.shape[:3]))
        total[0] += 2.0 * kh * kw * (cin * cout + guide.shape[-1] * self.offset_kernel.shape[-1]) * n
        return y

    keras.layers.Conv2D.call, ModulatedDeformConv2D.call = conv_rec, dcn_rec
    edvr_model._conv_cat_ref = unsplit
    try:
        model(x[:1, :, :16, :16])  # flops scale with the area: count small, then scale
    finally:
        keras.layers.Conv2D.call, ModulatedDeformConv2D.call = conv_call, dcn_call
        edvr_model._conv_cat_ref = split_conv
    return total[0] * x.shape[0] * (x.shape[2] * x.shape[3]) / (16 * 16)


def to_uint8(y) -> np.ndarray:
    return np.round(np.clip(np.asarray(y, np.float32), 0, 1) * 255).astype(np.uint8)


def tf_worker(impl: str, case_name: str, repeats: int, dtype: str = "float32", save: str = "",
              whole_frame: bool = False) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, REPO)
    import tensorflow as tf

    from tfvr.losses import charbonnier
    from tfvr.models.edvr import from_basicsr

    case = CASES[case_name]
    model = from_basicsr(None, dcn_impl=impl, **EDVR_M)
    if whole_frame:  # inference as before session 10: PCD on all frames at once, the x4 tail on the whole frame
        model.align_chunk_pixels = model.tail_strip_pixels = None
    rng = np.random.default_rng(1)
    for layer in model.dcn_layers().values():
        layer.offset_kernel.assign(rng.normal(0, OFFSET_STD, layer.offset_kernel.shape).astype(np.float32))
    x, gt = inputs(case)
    flops = count_flops(model, x) * (3 if case["train"] else 1)
    if dtype != "float32":
        from tfvr.export.precision import apply_precision

        apply_precision(model, dtype)
    x, gt = tf.constant(x), tf.constant(gt)
    if case["train"]:
        import keras

        opt = keras.optimizers.Adam(4e-4, beta_1=0.9, beta_2=0.99)
        opt.build(model.trainable_variables)

        @tf.function
        def step(x, gt):
            with tf.GradientTape() as tape:
                loss = charbonnier(model(x, training=True), gt, eps=1e-12, reduction="sum")
            opt.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)
            return loss

        times = time_it(lambda: step(x, gt).numpy(), repeats)
    else:
        fwd = tf.function(lambda x: model(x))
        times = time_it(lambda: fwd(x).numpy(), repeats)
        out = to_uint8(fwd(x).numpy())
        if save:
            np.save(save, out)
        if case.get("real"):
            from tfvr.metrics import psnr

            psnr_gt = float(psnr(out[0], gt))
    res = {"ms": float(np.median(times)), "all_ms": times, "cpu_ms": float(np.median(CPU_MS)),
           "peak_rss_mb": peak_rss_mb(), "gflop": flops / 1e9, "dtype": dtype,
           "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU"}
    if case.get("real"):
        res["psnr_gt"] = psnr_gt
    return res


# ------------------------------------------------------------------------------------------------ BasicSR worker
def torch_worker(case_name: str, repeats: int) -> dict:
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    from basicsr.archs.edvr_arch import EDVR
    from basicsr.losses.basic_loss import CharbonnierLoss

    torch.manual_seed(0)
    case = CASES[case_name]
    model = EDVR(**EDVR_M)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "conv_offset" in name and name.endswith("weight"):
                p.normal_(0, OFFSET_STD)
    x, gt = inputs(case)
    x = torch.from_numpy(x.transpose(0, 1, 4, 2, 3).copy())
    gt = torch.from_numpy(gt.transpose(0, 3, 1, 2).copy()) if gt.ndim == 4 else None
    if case["train"]:
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=4e-4, betas=(0.9, 0.99))
        loss_fn = CharbonnierLoss(loss_weight=1.0, reduction="sum")

        def step():
            opt.zero_grad()
            loss = loss_fn(model(x), gt)
            loss.backward()
            opt.step()
            return loss.item()

        times = time_it(step, repeats)
    else:
        model.eval()

        def fwd():
            with torch.no_grad():
                return model(x)

        times = time_it(fwd, repeats)
    return {"ms": float(np.median(times)), "all_ms": times, "cpu_ms": float(np.median(CPU_MS)),
            "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads(), "torch": torch.__version__}


# ------------------------------------------------------------------------------------------------------- driver
def run_child(python: str, args: list[str], timeout: float) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    try:
        proc = subprocess.run([python, os.path.abspath(__file__), *args], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--impls", default="reference,kernel")
    ap.add_argument("--cases", default="fwd64,fwd180,train64")
    ap.add_argument("--dtypes", default="float32",
                    help="compute dtypes for the forward cases, e.g. float32,bfloat16,float16 (float32 always runs)")
    ap.add_argument("--peer-python", default=os.environ.get("TFVR_PEER_PYTHON", "/tmp/tfvr-peers/venv/bin/python"))
    ap.add_argument("--no-peer", action="store_true", help="skip BasicSR")
    ap.add_argument("--json", default="", help="also write every figure to this JSON file")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--worker", choices=["tf", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--impl", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    ap.add_argument("--save", default="", help=argparse.SUPPRESS)
    ap.add_argument("--whole-frame", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker == "tf":
        print(json.dumps(tf_worker(args.impl, args.case, args.repeats, args.dtype, args.save, args.whole_frame)))
        return
    if args.worker == "torch":
        print(json.dumps(torch_worker(args.case, args.repeats)))
        return

    import tempfile

    cases = [c for c in args.cases.split(",") if c]
    impls = [i for i in args.impls.split(",") if i]
    dtypes = ["float32"] + [d for d in args.dtypes.split(",") if d and d != "float32"]
    sys.path.insert(0, REPO)
    if "kernel" in impls:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from tfvr.ops.deform_conv import kernel_status

        ok, why = kernel_status()
        if not ok:
            print(f"kernel: not available ({why}); skipped")
            impls.remove("kernel")
    peer = None if args.no_peer or not os.path.exists(args.peer_python) else args.peer_python
    print(f"EDVR-M, repeats {args.repeats} (median after one warm-up); {load()}", flush=True)
    results: dict[tuple[str, str], dict] = {}
    scratch = tempfile.mkdtemp(prefix="tfvr-bench-edvr-")

    def show(name, case):
        r = results[(name, case)]
        done = f"{r['ms']:.1f} ms, peak RSS {r['peak_rss_mb']:.0f} MB" if "ms" in r else r.get("error")
        print(f"  {case} {name}: {done}  ({load()})", flush=True)

    from tfvr.metrics import psnr

    names = []
    for case in cases:
        for impl in impls:
            for dt in (dtypes if not CASES[case]["train"] else ["float32"]):
                name = impl if dt == "float32" else f"{impl}/{dt}"
                names += [name] if name not in names else []
                save = os.path.join(scratch, f"{impl}_{case}_{dt}.npy")
                results[(name, case)] = r = run_child(
                    sys.executable, ["--worker", "tf", "--impl", impl, "--case", case, "--repeats", str(args.repeats),
                                     "--dtype", dt, "--save", save], args.timeout)
                if dt != "float32" and "ms" in r and os.path.exists(save):
                    ref = os.path.join(scratch, f"{impl}_{case}_float32.npy")
                    if os.path.exists(ref):
                        r["psnr_vs_float32"] = float(psnr(np.load(save)[0], np.load(ref)[0]))
                show(name, case)
        if peer and not CASES[case].get("real"):
            reps = 1 if case == "fwd180" else args.repeats  # BasicSR takes tens of seconds there
            results[("basicsr", case)] = run_child(peer, ["--worker", "torch", "--case", case, "--repeats",
                                                          str(reps)], args.timeout)
            show("basicsr", case)
    names += ["basicsr"] if peer else []
    print(f"\n{'case':<9} {'impl':<19} {'ms':>10} {'CPU ms':>10} {'peak RSS MB':>12} {'GFLOP':>8} {'GFLOP/s':>8}  "
          f"{'BasicSR/this':>12} {'f32/this':>9} {'PSNR vs f32':>11} {'PSNR vs GT':>10}")
    for case in cases:
        gflop = next((results[(i, case)].get("gflop") for i in impls if "gflop" in results.get((i, case), {})), None)
        for name in names:
            if (name, case) not in results:
                continue
            r = results[(name, case)]
            if "error" in r:
                print(f"{case:<9} {name:<19} error: {r['error']}")
                continue
            ms = r["ms"]
            rate = f"{gflop / (ms / 1000):8.1f}" if gflop else f"{'':>8}"
            base = results.get(("basicsr", case), {})
            ratio = f"{base['ms'] / ms:11.2f}x" if "ms" in base and name != "basicsr" else f"{'':>12}"
            f32 = results.get((name.split("/")[0], case), {})
            speed = f"{f32['ms'] / ms:8.2f}x" if "/" in name and "ms" in f32 else f"{'':>9}"
            pf = f"{r['psnr_vs_float32']:11.2f}" if "psnr_vs_float32" in r else f"{'':>11}"
            pg = f"{r['psnr_gt']:10.3f}" if "psnr_gt" in r else f"{'':>10}"
            print(f"{case:<9} {name:<19} {ms:10.1f} {r.get('cpu_ms', 0):10.0f} {r['peak_rss_mb']:12.0f} "
                  f"{gflop or 0:8.1f} {rate}  {ratio} {speed} {pf} {pg}")
            if "/" in name and "psnr_gt" in r and "psnr_gt" in f32:
                print(f"{'':<9} {'':<19} PSNR vs GT {name} − float32: {r['psnr_gt'] - f32['psnr_gt']:+.3f} dB "
                      "(random weights)")
    print(f"\n{load()}")
    if peer is None and not args.no_peer:
        print(f"BasicSR not run: no peer python at {args.peer_python} (bash ../shared/tools/peer_venv.sh)")
    import shutil

    shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        out = {f"{case}/{name}": r for (name, case), r in results.items()}
        out["_meta"] = {"load": load(), "cpu_count": os.cpu_count(), "repeats": args.repeats}
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
