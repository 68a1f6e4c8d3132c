"""HD memory: EDVR-M peak RSS at 180×320 → 720×1280 (tfvr vs BasicSR) and a tiled ×4 restore to 4K within 4 GiB.

    .venv/bin/python bench/hd_memory.py [--parts fwd180,tiled] [--lr-size 540x960] [--frames 7] [--max-frames 1]
                                        [--tile 192] [--tile-batch 1] [--peer-python PATH] [--no-peer]

Every figure is the peak resident set (ru_maxrss / `/usr/bin/time -v` "Maximum resident set size") of its own
process, TensorFlow's ≈0.6 GB included.

fwd180: EDVR-M (64 ch, 5 frames, 8 deformable groups, TSA; random weights) forward on 1×5×180×320, through
  bench/edvr.py's workers: the C++ kernel with its default im2col chunking (`deform_conv2d(max_cols_bytes=...)`,
  256 MiB), the kernel in one piece (TFVR_DCN_COLS_MB=0: the former behaviour), the kernel with EDVR's inference
  pieces off ("whole-frame passes": `align_chunk_pixels = tail_strip_pixels = None`, PCD on all 5 frames at once
  and the ×4 tail on the whole frame, as before session 10), the pure-TF reference, and BasicSR 1.4.2 (torch CPU)
  in the peer venv, in the same run.
tiled: `tfvr restore --tile S` of a generated clip (`tfvr.data.synthetic`, --lr-size, --frames frames, mp4) with an
  EDVR-M SavedModel of random weights exported here (`tfvr.export.saved_model.export`: the pure-TF graph that TF
  Serving loads), output a PNG folder; --max-frames limits the frames restored (each one needs the full window).
  The default 540×960 LR input gives 2160×3840 (4K UHD) ×4 output; --lr-size 1080x1920 gives 8K. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tfvr import quiet  # noqa: E402

quiet.setup()  # before TensorFlow is imported (TFVR_VERBOSE=1 shows its logs)
GIB = 1024.0


def load() -> str:
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def fwd180(peer: str | None, timeout: float) -> dict:
    import edvr as bench_edvr

    out = {}
    runs = [("kernel (chunked im2col, 256 MiB)", "kernel", None, []), ("kernel (one piece)", "kernel", "0", []),
            ("kernel, whole-frame passes", "kernel", None, ["--whole-frame"]),
            ("reference (pure TF)", "reference", None, [])]
    for label, impl, cols_mb, extra in runs:
        old = os.environ.get("TFVR_DCN_COLS_MB")
        if cols_mb is not None:
            os.environ["TFVR_DCN_COLS_MB"] = cols_mb
        try:
            r = bench_edvr.run_child(sys.executable, ["--worker", "tf", "--impl", impl, "--case", "fwd180",
                                                      "--repeats", "1", *extra], timeout)
        finally:
            if cols_mb is not None:
                if old is None:
                    os.environ.pop("TFVR_DCN_COLS_MB", None)
                else:
                    os.environ["TFVR_DCN_COLS_MB"] = old
        out[label] = r
        print(f"  fwd180 {label}: " + (f"peak RSS {r['peak_rss_mb']:.0f} MB, {r['ms']:.0f} ms" if "ms" in r
                                        else r["error"]) + f"  ({load()})", flush=True)
    if peer:
        r = bench_edvr.run_child(peer, ["--worker", "torch", "--case", "fwd180", "--repeats", "1"], timeout)
        out["BasicSR 1.4.2 (torch CPU)"] = r
        print("  fwd180 BasicSR: " + (f"peak RSS {r['peak_rss_mb']:.0f} MB, {r['ms']:.0f} ms" if "ms" in r
                                      else r["error"]) + f"  ({load()})", flush=True)
    return out


_EXPORT = r"""
import sys, numpy as np
sys.path.insert(0, sys.argv[2])
from tfvr import quiet
quiet.setup()
from tfvr.export.restoration import RestorationModule
from tfvr.export.saved_model import export
from tfvr.models.edvr import from_basicsr
m = from_basicsr(None, num_in_ch=3, num_out_ch=3, num_feat=64, num_frame=5, deformable_groups=8,
                 num_extract_block=5, num_reconstruct_block=10, center_frame_idx=None, hr_in=False,
                 with_predeblur=False, with_tsa=True)
rng = np.random.default_rng(1)
for layer in m.dcn_layers().values():
    layer.offset_kernel.assign(rng.normal(0, 0.01, layer.offset_kernel.shape).astype(np.float32))
module = RestorationModule(m, 5, scale=4, multiple=4, family="edvr")
export(module, sys.argv[1], signatures=module.signatures(), examples=module.examples())
"""


def _time_v(cmd, env, timeout):
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, env=env, timeout=timeout)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return proc, wall, (int(m.group(1)) / 1024.0 if m else None)


def tiled(args) -> dict:
    import numpy as np

    sys.path.insert(0, REPO)
    from tfvr.data import synthetic
    from tfvr.data.video_io import write_video

    h, w = (int(v) for v in args.lr_size.lower().split("x"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    with tempfile.TemporaryDirectory(prefix="tfvr-hd-") as tmp:
        model_dir = os.path.join(tmp, "edvr_m")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", _EXPORT, model_dir, REPO], check=True, env=env, timeout=args.timeout)
        export_s = time.perf_counter() - t0
        clip = os.path.join(tmp, "clip.mp4")
        video = synthetic.generate(0, args.frames, h, w, blur=False)
        write_video(clip, video.frames, 24.0)
        del video
        out_dir = os.path.join(tmp, "out")
        cmd = [sys.executable, "-m", "tfvr.cli", "restore", "--model", model_dir, "--tile", str(args.tile),
               "--tile-overlap", str(args.overlap), "--tile-batch", str(args.tile_batch), "--quiet", clip, out_dir]
        if args.max_frames:
            cmd[4:4] = ["--max-frames", str(args.max_frames)]  # after "restore", before "--model DIR"
        proc, wall, rss = _time_v(cmd, env, args.timeout)
        # the PNG frames only (the folder also holds tfvr.safety's `.tfvr-output` marker)
        frames = sorted(n for n in os.listdir(out_dir) if n.endswith(".png")) if os.path.isdir(out_dir) else []
        print(f"  tiled: restore exit {proc.returncode}, peak RSS {rss} MB, {wall:.0f} s, {len(frames)} frames "
              f"({load()})", flush=True)
        shape = None
        if frames:
            import cv2

            shape = list(cv2.imread(os.path.join(out_dir, frames[0])).shape)
        res = {"lr_size": [h, w], "out_shape": shape, "frames_in_clip": args.frames, "frames_restored": len(frames),
               "tile": args.tile, "overlap": args.overlap, "tile_batch": args.tile_batch, "peak_rss_mb": rss,
               "wall_s": wall, "export_s": export_s, "rc": proc.returncode}
        if proc.returncode:
            res["error"] = (proc.stderr.strip().splitlines() or ["?"])[-12:]
        return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="fwd180,tiled")
    ap.add_argument("--lr-size", default="540x960", help="HxW of the generated input clip (540x960 → 4K out)")
    ap.add_argument("--frames", type=int, default=7)
    ap.add_argument("--max-frames", type=int, default=1, help="frames to restore (0 = all)")
    ap.add_argument("--tile", type=int, default=192)
    ap.add_argument("--overlap", type=int, default=16)
    ap.add_argument("--tile-batch", type=int, default=1)
    ap.add_argument("--peer-python", default=os.environ.get("TFVR_PEER_PYTHON", "/tmp/tfvr-peers/venv/bin/python"))
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--timeout", type=float, default=7200)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    peer = None if args.no_peer or not os.path.exists(args.peer_python) else args.peer_python
    print(f"HD memory; {load()}", flush=True)
    results = {}
    if "fwd180" in parts:
        results["fwd180"] = r = fwd180(peer, args.timeout)
        print(f"\nEDVR-M forward 1×5×180×320 → 1×720×1280, peak RSS of each process:")
        base = r.get("BasicSR 1.4.2 (torch CPU)", {}).get("peak_rss_mb")
        for label, v in r.items():
            if "peak_rss_mb" in v:
                rel = f"  ({v['peak_rss_mb'] / base:.2f}× BasicSR's)" if base else ""
                print(f"  {label:<34} {v['peak_rss_mb']:8.0f} MB{rel}")
    if "tiled" in parts:
        results["tiled"] = r = tiled(args)
        print(f"\ntfvr restore --tile {r['tile']} --tile-overlap {r['overlap']} --tile-batch {r['tile_batch']}, "
              f"EDVR-M ×4 (random weights, SavedModel), LR {r['lr_size'][0]}×{r['lr_size'][1]} → {r['out_shape']}, "
              f"{r['frames_restored']} frame(s) of a {r['frames_in_clip']}-frame clip:")
        if r["peak_rss_mb"] and not r["rc"]:
            print(f"  peak RSS {r['peak_rss_mb']:.0f} MB = {r['peak_rss_mb'] / GIB:.2f} GiB "
                  f"({'within' if r['peak_rss_mb'] <= 4 * GIB else 'ABOVE'} 4 GiB), {r['wall_s']:.0f} s wall")
        if r.get("error"):
            print("  failed:", *r["error"], sep="\n    ")
    print(f"\n{load()}")
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
