"""STTN-I generator speed: milliseconds per 5-frame window at 432x240 (the released configuration).

    .venv/bin/python bench/sttn_inpaint.py [--frames 5] [--repeats 5] [--xla] [--threads N]
                                           [--dtypes float32,bfloat16] [--peer-python PATH] [--no-peer]
                                           [--conv-impls direct,auto]

Random weights (speed does not depend on them), batch 1, the released 256 channels / 8 blocks / heads
(108,60) (36,20) (18,10) (9,5), inside `tf.function`. Prints the median over `--repeats` runs after one warm-up,
the split encoder / transformer / decoder, and with `--xla` the same under `jit_compile=True` and the ratio.
Also prints the process CPU time per window: on a shared machine (load average above the core count) wall time
measures the other jobs too. Asserts nothing.

Side by side, interleaved window by window (one tfvr window, one of theirs, --repeats rounds): the authors'
`InpaintGenerator` (../shared/peers/researchmm-STTN/model/sttn.py, torch CPU,
`forward(masked_frames, masks)` under no_grad, random weights, the same frames, the same thread count) in a child
process of --peer-python (default $TFVR_PEER_PYTHON or /tmp/tfvr-peers/venv/bin/python); the ratio authors / tfvr
is printed. --dtypes: the generator also with the compute dtype set by `tfvr.export.precision` (what `tfvr export
--precision` does; attention softmax stays float32), its time and the PSNR of its output against the float32 output
(same weights, [-1, 1] mapped to uint8). --conv-impls direct,auto: tfvr's generator once per `conv_impl` (same
weights; "auto", the default, and "winograd_cc" run Winograd F(4x4, 3x3) with the compiled transforms, "winograd" the
XLA-compiled TF-ops Winograd, tfvr.ops.winograd; --xla and 16-bit --dtypes run the direct convs, the compiled ops
being float32 and outside XLA), each timed in every interleaved round, each ratio printed.
"""

import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tfvr import quiet  # noqa: E402

quiet.setup()  # before TensorFlow is imported (TFVR_VERBOSE=1 shows its logs)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PEER_DIR = os.environ.get("TFVR_STTN_PEER", os.path.join(os.path.dirname(REPO), "shared", "peers", "researchmm-STTN"))
if not os.path.isdir(PEER_DIR):
    PEER_DIR = "/work/shared/peers/researchmm-STTN"


def torch_worker(t, h, w, threads):
    """The authors' InpaintGenerator forward on CPU: warms up, prints a JSON line, then times one window per "run"
    line on stdin (one JSON line each)."""
    import json

    import numpy as np
    import torch

    sys.path.insert(0, PEER_DIR)
    from model.sttn import InpaintGenerator

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = InpaintGenerator().eval()
    rng = np.random.default_rng(0)
    frames = torch.from_numpy(rng.uniform(-1, 1, (1, t, 3, h, w)).astype(np.float32))
    masks = torch.from_numpy((rng.uniform(size=(1, t, 1, h, w)) > 0.8).astype(np.float32))
    x = frames * (1 - masks)

    def fwd():
        with torch.no_grad():
            return net(x, masks)

    fwd()  # warm-up
    print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "params": sum(p.numel() for p in net.parameters())}), flush=True)
    for line in sys.stdin:  # one timed window per "run" line (the parent interleaves them with its own)
        if line.strip() != "run":
            break
        t0, c0 = time.perf_counter(), time.process_time()
        fwd()
        print(json.dumps({"ms": (time.perf_counter() - t0) * 1000, "cpu_ms": (time.process_time() - c0) * 1000}),
              flush=True)


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
    p.add_argument("--threads", type=int, default=2, help="intra-op threads for TF and torch (0: TF's default)")
    p.add_argument("--dtypes", default="float32", help="e.g. float32,bfloat16,float16 (float32 always runs)")
    p.add_argument("--peer-python", default=os.environ.get("TFVR_PEER_PYTHON", "/tmp/tfvr-peers/venv/bin/python"))
    p.add_argument("--no-peer", action="store_true", help="skip the authors' model")
    p.add_argument("--no-parts", action="store_true", help="skip the encoder / transformer / decoder split")
    p.add_argument("--conv-impls", default="auto",
                   help="generator conv_impl values to time (default: the generator's default, auto; e.g. direct,auto: "
                        "same weights, interleaved with the authors' model; the first one is the one the other "
                        "figures use)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        torch_worker(args.frames, args.height, args.width, args.threads or os.cpu_count())
        return

    import tensorflow as tf

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from tfvr.models.sttn_inpaint import STTNInpaintGenerator

    impls = [v for v in args.conv_impls.split(",") if v]
    gen = STTNInpaintGenerator(conv_impl=impls[0])
    gen.build()
    variants = {impls[0]: gen}
    for impl in impls[1:]:
        variants[impl] = STTNInpaintGenerator.from_config({**gen.get_config(), "conv_impl": impl})
        variants[impl].build()
        variants[impl].set_weights(gen.get_weights())
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
    print(f"STTN-I generator (conv_impl={impls[0]}), {t} frames {w}x{h}, {gen.count_params():,} parameters, {device}, "
          f"median of {args.repeats}")
    cpu = []
    ms = _median_ms(full, args.repeats, cpu)
    cores = os.cpu_count() or 1
    print(f"  window (tf.function):          {ms:9.1f} ms   ({ms / t:.1f} ms per frame)")
    print(f"    CPU time {cpu[0]:.0f} ms = {cpu[0] / cores:.0f} ms over {cores} cores (the wall time on an idle machine, "
          f"if TensorFlow keeps every core busy); load average now {os.getloadavg()[0]:.1f}")
    parts = {} if args.no_parts else {"encoder": enc, "transformer": trans, "decoder": dec}
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

    import json
    import subprocess

    import numpy as np

    from tfvr.metrics import psnr

    def as_uint8(y):
        return np.round(np.clip((np.asarray(tf.cast(y, tf.float32)) + 1) / 2, 0, 1) * 255).astype(np.uint8)

    ref = as_uint8(full())
    for dt in [d for d in args.dtypes.split(",") if d and d != "float32"]:
        from tfvr.export.precision import apply_precision

        apply_precision(gen, dt)
        low = tf.function(lambda: gen((x, masks)))
        cpu_low = []
        ms_low = _median_ms(low, args.repeats, cpu_low)
        out = as_uint8(low())
        score = float(np.mean([psnr(out[0, i], ref[0, i]) for i in range(t)]))
        print(f"  window {dt + ' (tf.function)':<23} {ms_low:9.1f} ms   (float32/{dt} x{ms / ms_low:.2f}; CPU time "
              f"{cpu_low[0]:.0f} ms, x{cpu[0] / cpu_low[0]:.2f}; PSNR vs float32 output {score:.2f} dB)")
        apply_precision(gen, "float32")

    peer = None if args.no_peer or not os.path.exists(args.peer_python) else args.peer_python
    if peer:
        # Interleaved: one tfvr window, then one of the authors' (a persistent child process, warmed up), --repeats
        # rounds, so both sides see the same machine load; medians of each and the median of the per-round ratios.
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads or os.cpu_count()))
        proc = subprocess.Popen([peer, os.path.abspath(__file__), "--worker", "--frames", str(t), "--height", str(h),
                                 "--width", str(w), "--threads", str(args.threads)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=PEER_DIR)

        def reply():
            while True:
                ln = proc.stdout.readline()
                if not ln:
                    return None
                if ln.startswith("{"):
                    return json.loads(ln)

        fulls = {impl: (full if impl == impls[0] else tf.function(lambda g=g: g((x, masks))))
                 for impl, g in variants.items()}
        base = fulls[impls[0]]()
        for impl in impls[1:]:  # traces (and compiles) before the timed rounds
            print(f"  conv_impl={impl} vs {impls[0]}: max abs output difference "
                  f"{float(tf.reduce_max(tf.abs(fulls[impl]() - base))):.2e}")
        info = reply()
        if info is None:
            print(f"  authors' InpaintGenerator: failed: {(proc.stderr.read().strip().splitlines() or ['?'])[-1][:200]}")
        else:
            ours_by = {impl: [] for impl in impls}
            theirs = []
            for _ in range(args.repeats):
                for impl, f in fulls.items():
                    t0, c0 = time.perf_counter(), time.process_time()
                    f()
                    ours_by[impl].append(((time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000))
                proc.stdin.write("run\n")
                proc.stdin.flush()
                r = reply()
                theirs.append((r["ms"], r["cpu_ms"]))
            proc.stdin.close()
            proc.wait(timeout=60)
            med = statistics.median
            a_ms, a_cpu = med(a for a, _ in theirs), med(b for _, b in theirs)
            print(f"  interleaved, {args.repeats} rounds (tfvr window per conv_impl {', '.join(impls)}, then the "
                  f"authors'):")
            print(f"    authors' InpaintGenerator (torch {info['torch']}, {info['threads']} threads, "
                  f"{info['params']:,} parameters): {a_ms:9.1f} ms, CPU time {a_cpu:.0f} ms")
            for impl, ours in ours_by.items():
                o_ms, o_cpu = med(a for a, _ in ours), med(b for _, b in ours)
                print(f"    tfvr conv_impl={impl:<9} {o_ms:9.1f} ms, CPU time {o_cpu:.0f} ms")
                print(f"      authors / tfvr: wall x{a_ms / o_ms:.2f}, CPU time x{a_cpu / o_cpu:.2f} (medians); "
                      f"per-round median: wall x{med(b[0] / a[0] for a, b in zip(ours, theirs)):.2f}, CPU time "
                      f"x{med(b[1] / a[1] for a, b in zip(ours, theirs)):.2f}")
    elif not args.no_peer:
        print(f"  authors' model not run: no peer python at {args.peer_python}")
    print(f"  load average now {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
