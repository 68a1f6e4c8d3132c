"""Peak RSS of a 2-step vid2vid flagfile run at a chosen crop (the rest of the recipe at full size).

Runs `train/vid2vid.py --flagfile=train/configs/<name>.flags` exactly as
tests/training/test_full_size_flagfiles.py does (its SHORT overrides and the flagfile's CASES entry: 2 steps, batch 1, 2
generated frames per step, one temporal scale), on a generated Cityscapes copy, under `/usr/bin/time -v`, with
`--config.data.crop_size=<HxW>` and any further overrides, and prints one JSON line: flagfile, crop, extra
overrides, wall seconds, peak RSS (GiB, "Maximum resident set size"), /proc/loadavg before and after.

    PYTHONPATH=$PWD .venv/bin/python bench/vid2vid_memory.py vid2vid_label2city_1024 128x256 \
        [--config.fix_global_steps=10] [--data /tmp/city_1024] [--watch-gib 21]

--watch-gib kills the run (and reports it) when its RSS passes that many GiB, so the shared box never OOMs.
The generated data (512x1024 frames, 4 per sequence; the reader crops) is made once in --data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _rss_gib(pid: int) -> float:
    """RSS of a process tree (the time wrapper's children included), GiB."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
    return total / 2**20


def main(argv=None):
    from tests.training.test_full_size_flagfiles import CASES, SHORT

    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    ap.add_argument("crop", help="HxW, e.g. 128x256")
    ap.add_argument("--data", default="/tmp/tfvr_city_1024")
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--watch-gib", type=float, default=21.0)
    ap.add_argument("--nice", type=int, default=19)
    ap.add_argument("--trace", default="", help="write (seconds, RSS GiB) every second and the run's log lines, "
                                                "timed, to this file (where the peak happens)")
    args, extra = ap.parse_known_args(argv)
    data = Path(args.data)
    if not (data / "train_A").exists():
        if data.exists() and any(data.iterdir()):  # never write generated frames into someone's folder
            print(f"{data}: exists and is not a generated Cityscapes copy (no train_A/); pass another --data",
                  file=sys.stderr)
            return 2
        from tests.fake_data import make_cityscapes

        make_cityscapes(data, args.height, args.width, num_frames=4)
    tmp = Path(tempfile.mkdtemp(prefix="v2vmem_"))
    cmd = ["nice", "-n", str(args.nice), "/usr/bin/time", "-v", sys.executable, "train/vid2vid.py",
           f"--flagfile=train/configs/{args.name}.flags", f"--workdir={tmp / 'run'}", *SHORT,
           f"--config.data.cache_dir={tmp / 'cache'}", *CASES[args.name][2], f"--config.sequence_root={data}",
           f"--config.data.crop_size={args.crop}", *extra]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO), "TFVR_CACHE": str(tmp / "cache")}
    load0 = open("/proc/loadavg").read().split()[:3]
    t0 = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    peak = {"gib": 0.0, "killed": False}

    trace = open(args.trace, "w") if args.trace else None
    err_lines = []

    def read_err():
        for line in proc.stderr:
            err_lines.append(line)
            if trace:
                trace.write(f"{time.time() - t0:8.1f} LOG {line.rstrip()[:200]}\n")
                trace.flush()

    reader = threading.Thread(target=read_err, daemon=True)
    reader.start()

    def watch():
        while proc.poll() is None:
            g = _rss_gib(proc.pid)
            if trace:
                trace.write(f"{time.time() - t0:8.1f} RSS {g:.2f}\n")
                trace.flush()
            peak["gib"] = max(peak["gib"], g)
            if g > args.watch_gib:
                peak["killed"] = True
                os.killpg(proc.pid, signal.SIGKILL)
                return
            time.sleep(1 if trace else 2)

    threading.Thread(target=watch, daemon=True).start()
    out = proc.stdout.read()
    proc.wait()
    reader.join()
    err = "".join(err_lines)
    seconds = time.time() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)
    steps = []
    metrics = tmp / "run" / "metrics.jsonl"
    if metrics.exists():
        steps = sorted({json.loads(line).get("step") for line in metrics.read_text().splitlines()} - {None})
    result = {"flagfile": args.name, "crop": args.crop, "extra": extra, "rc": proc.returncode,
              "steps": steps, "seconds": round(seconds, 1),
              "max_rss_gib": round(int(m.group(1)) / 2**20, 2) if m else None,
              "watched_peak_gib": round(peak["gib"], 2), "killed_by_watchdog": peak["killed"],
              "loadavg_before": load0, "loadavg_after": open("/proc/loadavg").read().split()[:3],
              }
    if proc.returncode != 0:
        result["stderr_tail"] = err[-1500:]
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)  # the temporary run folder this script made (multi-GB checkpoints)
    print(json.dumps(result), flush=True)
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
