"""Frames/s of `tfvr prepare` on the same generated videos: --runner direct (one process) and --runner beam with 1
and 2 DirectRunner worker processes (multi_processing), in one run; checks that every run wrote the same shards.
Each beam row runs with --threads-per-worker t (row name "beam xN tT"): "auto" (the default of `tfvr prepare`: the
cores shared out over the workers, so x1 decodes with every core) and 1 (one core per worker, what a cluster runner
gives each worker), so the scaling over workers shows apart from the threads inside one worker.

    PYTHONPATH=. python bench/prepare.py [--videos 20 --frames 80 --size 320x180] [--workers 1,2] [--threads auto,1]

Needs apache-beam for the beam rows (pip install 'tfvr[beam]'). Each configuration runs `python -m tfvr.cli prepare`
in a fresh process (so TensorFlow / Beam start-up is included, as a user sees it); frames/s counts the source
frames decoded (manifest `videos[].num_frames`). Prints the machine load: the figure is only meaningful when the
cores are not shared.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tfvr import quiet  # noqa: E402

quiet.setup()  # before TensorFlow is imported (TFVR_VERBOSE=1 shows its logs)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _phases(text: str, start: float, end: float) -> str:
    """One line from the TFVR_BEAM_TRACE lines (`pid what key t0 t1 tf`): start-up, per-source work and its
    parallelism, shard writing, and the driver's tail, in seconds of wall time."""
    rows = [ln.split() for ln in text.splitlines() if ln.strip()]
    by = {}
    for pid, what, _key, a, b, _tf in rows:
        by.setdefault(what, []).append((pid, float(a), float(b)))
    src = by.get("source", [])
    shard = by.get("shard", [])
    pipe = by.get("pipeline", [(0, start, end)])[0]
    prep = by.get("prepare_beam", [(0, start, end)])[0]
    s0, s1 = min(a for _, a, _ in src), max(b for _, _, b in src)
    busy = sum(b - a for _, a, b in src)
    per = {}
    for pid, _, _ in src:
        per[pid] = per.get(pid, 0) + 1
    h0, h1 = (min(a for _, a, _ in shard), max(b for _, _, b in shard)) if shard else (s1, s1)
    return (f"imports+scan {prep[1] - start:.1f} s | pipeline start-up {s0 - pipe[1]:.1f} s | sources "
            f"{s1 - s0:.1f} s ({len(per)} processes ran {sorted(per.values())}, work {busy:.1f} s, mean "
            f"parallelism {busy / max(s1 - s0, 1e-9):.2f}) | to shards {h0 - s1:.1f} s | shards {h1 - h0:.1f} s "
            f"| pipeline end {pipe[2] - h1:.1f} s | manifest+exit {end - pipe[2]:.1f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--frames", type=int, default=80, help="frames per video (a scene cut in the middle)")
    ap.add_argument("--size", default="320x180", help="WxH of the videos")
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--workers", default="1,2", help="beam worker counts to time")
    ap.add_argument("--threads", default="auto,1",
                    help="--threads-per-worker settings of the beam rows: auto (the cores shared out over the "
                         "workers, the default of `tfvr prepare --runner beam`), or a number (1 = one core per "
                         "worker, the model of a cluster runner)")
    ap.add_argument("--keep", default="", help="folder to keep the videos and outputs in (default: a temp dir)")
    args = ap.parse_args()
    from tfvr.data import synthetic

    w, h = (int(v) for v in args.size.lower().split("x"))
    root = Path(args.keep or tempfile.mkdtemp(prefix="tfvr-bench-prepare-"))
    src = root / "videos"
    if not src.exists():
        src.mkdir(parents=True)
        for i in range(args.videos):
            v = synthetic.generate(100 + i, args.frames, h, w, cuts=[args.frames // 2], fps=args.fps)
            synthetic.write_mp4(v, src / f"video{i:03d}.mp4", fps=args.fps)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p]))
    from tfvr.data.beam_prepare import default_threads_per_worker

    configs, groups, seen = [("direct", ["--runner", "direct"])], {}, set()
    for spec in args.threads.split(","):
        for n in (int(v) for v in args.workers.split(",")):
            t = default_threads_per_worker(n) if spec == "auto" else int(spec)
            name = f"beam x{n} t{t}"
            groups.setdefault(spec, []).append(name)
            if name not in seen:
                seen.add(name)
                configs.append((name, ["--runner", "beam", "--workers", str(n), "--threads-per-worker", str(t)]))
    print(f"{args.videos} videos of {args.frames} frames {w}x{h}; {os.cpu_count()} CPUs; load before {_load()}")
    rows, outs = [], []
    for name, extra in configs:
        out = root / f"out-{name.replace(' ', '')}"
        cmd = [sys.executable, "-m", "tfvr.cli", "prepare", str(src), str(out), "--clip-len", "5", "--num-shards",
               "4", "--val-fraction", "0.2", "--overwrite", "--quiet", *extra]
        trace = root / f"trace-{name.replace(' ', '')}.txt"
        trace.unlink(missing_ok=True)
        t = time.perf_counter()
        t0_wall = time.time()
        r = subprocess.run(cmd, env=dict(env, TFVR_BEAM_TRACE=str(trace)), capture_output=True, text=True)
        dt = time.perf_counter() - t
        if r.returncode != 0:
            print(f"{name}: failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
            return 1
        m = json.loads((out / "manifest.json").read_text())
        frames = sum(v["num_frames"] for v in m["videos"])
        rows.append((name, dt, frames / dt, m["counts"]["clips"]))
        outs.append(out)
        print(f"{name:>12}: {dt:7.1f} s  {frames / dt:8.1f} frames/s  ({m['counts']['clips']} clips)  load {_load()}",
              flush=True)
        if trace.exists():  # beam: where the wall time went (tfvr.data.beam_prepare._trace lines)
            print("          " + _phases(trace.read_text(), t0_wall, t0_wall + dt))
    same = all(filecmp.cmp(outs[0] / n, o / n, shallow=False) for o in outs[1:]
               for n in os.listdir(outs[0]) if n.endswith(".tfrecord"))
    print(f"shards identical across runs: {same}")
    base = rows[0][2]
    for name, _, fps, _ in rows[1:]:
        print(f"{name} / direct: {fps / base:.2f}x")
    fps_of = {r[0]: r[2] for r in rows}
    for spec, names in groups.items():
        if len(names) >= 2:
            print(f"threads {spec}: {names[-1]} / {names[0]}: {fps_of[names[-1]] / fps_of[names[0]]:.2f}x "
                  "(target >= 1.7x on 2 free cores)")
    print(f"load after {_load()}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
