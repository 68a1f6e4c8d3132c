"""`tfvr restore` end to end on a generated 1080p video with a tiled EDVR-M export, against the model alone.

    .venv/bin/python bench/restore_1080p.py                          # the issue's run: 1920x1080, 300 frames, EDVR-M x4
    .venv/bin/python bench/restore_1080p.py --frames 30 --mode deblur # EDVR-M config with hr_in (output = input size)

1. Writes a procedural 1920x1080 (`--size`) video of `--frames` frames (streamed: never held whole).
2. Builds EDVR-M (BasicSR's M: 64 ch, 5 frames, 5 + 10 blocks, TSA; random weights; `--mode deblur` adds hr_in +
   predeblur, i.e. the deblur variant at the M size) and saves it as a restoration SavedModel (the graph
   `tfvr export` writes: pure-TF DCN).
3. Runs `tfvr restore --tile T --tile-overlap O --tile-batch B` on it in a subprocess: wall time, frames/s and the
   peak RSS of that process (`os.wait4`'s ru_maxrss).
4. Runs "the model alone" in a subprocess: the same SavedModel on the same tiles (same count and size per frame,
   same batches), no decode / encode / windowing / writing, for `--model-frames` frames (default: all): wall time
   of the process (imports and load included, like the CLI's) and its steady-state frames/s.
5. Prints the figures, the ratio CLI / model alone (target <= 1.15: decode and encode overlap the compute) and the
   RSS against the target (<= 3 GiB), with `/proc/loadavg` (the box is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tfvr import quiet  # noqa: E402

quiet.setup()  # before TensorFlow is imported (TFVR_VERBOSE=1 shows its logs)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EDVR_M = dict(num_feat=64, num_frame=5, deformable_groups=8, num_extract_block=5, num_reconstruct_block=10)

MODEL_ALONE = r"""
import json, sys, time, os
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[5])
from tfvr import quiet
quiet.setup()  # before TensorFlow is imported
import numpy as np
import tensorflow as tf
from tfvr.inference.tiling import tiles
model_dir, h, w, frames = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tile, overlap, batch, t = int(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])
fn = tf.saved_model.load(model_dir).signatures["serving_default"]
jobs = tiles(h, w, tile, overlap) if tile else [(0, 0, h, w, None, None)]
rng = np.random.default_rng(0)
window = rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8)
loaded = time.perf_counter()
steady = None
for f in range(frames):
    if f == 1:
        steady = time.perf_counter()
    for b in range(0, len(jobs), batch):
        chunk = jobs[b:b + batch]
        x = np.stack([window[:, y:y + th, x0:x0 + tw] for y, x0, th, tw, _, _ in chunk])
        fn(frames=tf.constant(x))["restored"].numpy()
end = time.perf_counter()
fps = (frames - 1) / (end - steady) if frames > 1 else 1.0 / (end - loaded)
print(json.dumps({"steady_fps": fps, "tiles_per_frame": len(jobs), "load_s": loaded - t0}))
"""


def write_input(path: Path, n: int, w: int, h: int) -> None:
    import numpy as np

    from tfvr.data.video_io import write_video

    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)

    def frames():
        for t in range(n):
            r = ((xx + 4 * t) % 256).astype(np.uint8)
            g = ((yy + 2 * t) % 256).astype(np.uint8)
            b = (((xx // 32 + yy // 32 + t) % 2) * 200).astype(np.uint8)
            img = np.stack([r, g, b], -1)
            img = np.clip(img.astype(np.int16) + rng.integers(-8, 9, img.shape, dtype=np.int16), 0, 255)
            yield img.astype(np.uint8)

    write_video(path, frames(), fps=25.0)


def save_model(out: Path, mode: str) -> None:
    import tensorflow as tf

    from tfvr.export.restoration import RestorationModule
    from tfvr.models.edvr import from_basicsr
    from tfvr.ops.deform_conv import implementation

    kw = dict(EDVR_M, **({"hr_in": True, "with_predeblur": True} if mode == "deblur" else {}))
    model = from_basicsr(None, dcn_impl="reference", **kw)
    module = RestorationModule(model, num_frames=model.num_frame, scale=model.scale, multiple=model.size_multiple,
                               family="edvr", model_config=kw)
    with implementation("reference"):
        fn = module.serve.get_concrete_function()
        tf.saved_model.save(module, str(out), signatures={"serving_default": fn})


def run_measured_rss(cmd, env) -> tuple[float, int, str]:
    import threading

    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    outs = {}

    def drain(name, stream):
        outs[name] = stream.read()

    threads = [threading.Thread(target=drain, args=(n, s)) for n, s in (("out", p.stdout), ("err", p.stderr))]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(p.pid, 0)
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"{' '.join(map(str, cmd[:6]))} ... failed ({code}): {outs.get('err', '')[-2000:]}")
    return wall, usage.ru_maxrss * 1024, outs.get("out", "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--size", default="1920x1080", help="input WxH")
    ap.add_argument("--mode", choices=("sr", "deblur"), default="sr", help="EDVR-M x4 SR, or its hr_in deblur variant")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--tile-overlap", type=int, default=16)
    ap.add_argument("--tile-batch", type=int, default=4)
    ap.add_argument("--model-frames", type=int, default=0, help="frames for the model-alone run (0 = --frames)")
    ap.add_argument("--out", default="", help="output video (default: a temporary .mp4)")
    ap.add_argument("--workdir", default="", help="where to put the input video and the model (default: a temp dir)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.workdir or tempfile.mkdtemp(prefix="tfvr-bench-1080p-"))
    work.mkdir(parents=True, exist_ok=True)
    video, model_dir = work / "input.mp4", work / f"edvr_m_{args.mode}"
    out = Path(args.out or (work / "restored.mp4"))
    print(f"load before: {open('/proc/loadavg').read().strip()}", flush=True)
    if not video.exists():
        t0 = time.perf_counter()
        write_input(video, args.frames, w, h)
        print(f"input: {video} ({w}x{h}, {args.frames} frames) in {time.perf_counter() - t0:.1f} s", flush=True)
    if not (model_dir / "saved_model.pb").exists():
        save_model(model_dir, args.mode)
        print(f"model: {model_dir} (EDVR-M {args.mode}, random weights)", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    cli = [sys.executable, "-m", "tfvr.cli", "restore", "--model", str(model_dir), str(video), str(out), "--quiet",
           "--overwrite", "--tile", str(args.tile), "--tile-overlap", str(args.tile_overlap), "--tile-batch",
           str(args.tile_batch), "--max-frames", str(args.frames)]
    cli_wall, cli_rss, cli_out = run_measured_rss(cli, env)
    print(cli_out.strip(), flush=True)
    mf = args.model_frames or args.frames
    alone = [sys.executable, "-c", MODEL_ALONE, str(model_dir), str(h), str(w), str(mf), str(ROOT), str(args.tile),
             str(args.tile_overlap), str(args.tile_batch), "5"]
    alone_wall, alone_rss, alone_out = run_measured_rss(alone, env)
    info = json.loads(alone_out.strip().splitlines()[-1])
    # the model-alone process, scaled to the same frame count when it ran fewer frames
    alone_same = info["load_s"] + (alone_wall - info["load_s"]) * args.frames / mf
    res = {
        "frames": args.frames, "size": f"{w}x{h}", "mode": args.mode, "tile": args.tile,
        "tile_overlap": args.tile_overlap, "tile_batch": args.tile_batch, "tiles_per_frame": info["tiles_per_frame"],
        "cli_wall_s": round(cli_wall, 1), "cli_fps": round(args.frames / cli_wall, 4),
        "cli_peak_rss_gib": round(cli_rss / 2 ** 30, 3),
        "model_alone_wall_s": round(alone_same, 1), "model_alone_fps": round(args.frames / alone_same, 4),
        "model_alone_steady_fps": round(info["steady_fps"], 4), "model_alone_peak_rss_gib": round(alone_rss / 2 ** 30, 3),
        "ratio_cli_over_model": round(cli_wall / alone_same, 3),
        "targets": {"rss_gib_max": 3.0, "ratio_max": 1.15},
        "loadavg_after": open("/proc/loadavg").read().strip(),
    }
    print(json.dumps(res, indent=2))
    print(f"RSS {res['cli_peak_rss_gib']:.2f} GiB (target <= 3), CLI / model alone = "
          f"{res['ratio_cli_over_model']:.3f} (target <= 1.15)")


if __name__ == "__main__":
    main()
