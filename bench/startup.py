"""Start-up cost of a training run: AutoGraph's source conversion on vs off (session 7).

Each run is `python train/<family>.py --flagfile=train/configs/<demo>.flags` for 2 steps at the tiny sizes of the
family's train-script test (no export), in a fresh process. "plain" is tfvr as shipped: the family's train step
(`Task.autograph = False`) and the data pipeline's map functions are traced as written. "autograph" is the
reference: the same process with the task's `autograph` set back to True and the pipeline's map functions given to
tf.data unwrapped, so AutoGraph converts their source as `tf.function` / `Dataset.map` do by default. The two modes
are interleaved (`--repeats` rounds) so both see the same machine load. Prints the wall time of each process and
the seconds to step 2 ("trained to step 2 (X s in this process)": data pipeline, both traces, the steps) and their
ratios. Asserts nothing.

    nice -n 10 .venv/bin/python bench/startup.py [--families edvr,sttn,sttn_inpaint] [--repeats 2] [--cpus 0]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.helpers import tiny_run  # noqa: E402  (the test suite's tiny synthetic-data overrides; stdlib + numpy)

# family -> (script, demo flagfile, task module, task class, tiny overrides of its train-script test)
FAMILIES = {
    "edvr": ("edvr.py", "edvr_m_sr4x_demo.flags", "tfvr.models.edvr.task", "EDVRTask",
             tiny_run(data__crop_size=32, model__num_feat=8, model__deformable_groups=2, model__num_extract_block=1,
                      model__num_reconstruct_block=1, trainer__image_every=2)),
    "sttn": ("sttn.py", "sttn_denoise_demo.flags", "tfvr.models.sttn_restore.task", "STTNRestoreTask",
             tiny_run(data__crop_size=16, model__unet_feat=4, model__unet_max_feat=8, model__num_feat=4,
                      model__num_blocks=1, trainer__eval_every=1)),
    "sttn_inpaint": ("sttn_inpaint.py", "sttn_inpaint_demo.flags", "tfvr.models.sttn_inpaint.task",
                     "STTNInpaintTask",
                     tiny_run(data__synthetic__height=48, data__synthetic__width=64, data__num_frames=3,
                              model__generator__channels=8, model__generator__num_blocks=1,
                              model__discriminator__channels=4)),
}

# Run in the child: the reference mode puts AutoGraph back, then runs the train script as `python train/x.py` would.
_CHILD = r"""
import importlib, runpy, sys
mode, module, cls, script = sys.argv[1:5]
sys.argv = [script] + sys.argv[5:]
sys.path.insert(0, ".")
if mode == "autograph":
    task = getattr(importlib.import_module(module), cls)
    task.autograph = True
    import tfvr.data.pipeline as pipeline
    pipeline._plain = lambda fn: fn
runpy.run_path(script, run_name="__main__")
"""


def run_one(family: str, mode: str, root: str, cpus: str | None) -> dict:
    script, flags, module, cls, tiny = FAMILIES[family]
    work = tempfile.mkdtemp(prefix=f"{family}-{mode}-", dir=root)
    cmd = [sys.executable, "-c", _CHILD, mode, module, cls, os.path.join("train", script),
           f"--flagfile=train/configs/{flags}", f"--workdir={os.path.join(work, 'run')}",
           f"--config.data.cache_dir={os.path.join(work, 'cache')}", *tiny, "--config.trainer.export=false"]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    env = dict(os.environ, TFVR_CACHE=os.path.join(work, "cache"), PYTHONPATH=REPO)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{family} {mode}: exit {r.returncode}: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    m = re.search(r"trained to step \d+ \(([\d.]+) s in this process\)", r.stderr + r.stdout)
    return {"wall": wall, "train": float(m.group(1)) if m else float("nan")}


def _walls(runs: list[dict]) -> str:
    return " ".join(f"{r['wall']:.1f}" for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cpus", default=None, help="taskset CPU list for the runs (e.g. 0)")
    args = ap.parse_args()
    fams = [f for f in args.families.split(",") if f]
    for f in fams:
        if f not in FAMILIES:
            ap.error(f"unknown family {f!r}; choose from {', '.join(FAMILIES)}")
    print(f"2-step tiny train-script runs, AutoGraph on (reference) vs off (tfvr), {args.repeats} rounds, "
          f"cpus {args.cpus or 'all'}, load {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="tfvr-bench-startup-") as root:
        for fam in fams:
            res = {"autograph": [], "plain": []}
            for _ in range(args.repeats):
                for mode in ("autograph", "plain"):
                    res[mode].append(run_one(fam, mode, root, args.cpus))
            med = {m: {k: statistics.median(r[k] for r in rs) for k in ("wall", "train")} for m, rs in res.items()}
            a, p = med["autograph"], med["plain"]
            print(f"{fam:>13}  process {a['wall']:6.1f} -> {p['wall']:6.1f} s (x{a['wall'] / p['wall']:.2f})   "
                  f"to step 2 {a['train']:6.1f} -> {p['train']:6.1f} s (x{a['train'] / p['train']:.2f})   "
                  f"runs: {_walls(res['autograph'])} | {_walls(res['plain'])}", flush=True)


if __name__ == "__main__":
    main()
