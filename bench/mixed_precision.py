"""Mixed-precision training vs float32 (issue 15, item 2): per family, the same short demo-size training from the
same seed in float32 and in `runtime.precision=mixed_bfloat16` (or mixed_float16), then the held-out PSNR of each
(`eval.json`, the family's own evaluation), their difference and whether any loss went NaN.

    nice -n 10 .venv/bin/python bench/mixed_precision.py [--families sttn,edvr] [--steps 200]
                                                         [--precisions mixed_bfloat16] [--keep DIR] [--json F]
                                                         [--set=--config.optim.learning_rate=2e-3] [--reuse]

Each run is `python train/<family>.py --flagfile=train/configs/<demo>.flags` in its own process with
`--config.trainer.num_steps=--steps` (the learning-rate schedule compressed to that length where the flagfile has
one), no export, no ablation; float32 and the mixed run are interleaved family by family so both see the same
machine load. `--set` adds an override to both runs (e.g. a higher learning rate, so that a short run moves the
model off its starting point); `--reuse` reads a run that already finished in `--keep` with the same command.
Every run has `--config.data.deterministic=true`: without it the training batches are made by parallel maps in
completion order, so two float32 runs of one command see different batches (measured: vid2vid's demo, 50 steps,
16.542 vs 16.033 dB), which is noise the precision comparison cannot tell from its own. `--float32-repeats N` runs
the float32 run N times (`<family>-float32`, `-float32-r2`, ...) and prints their spread: what is left of run-to-run
noise (thread timing in TensorFlow's own kernels) that a mixed-precision difference should be read against.
`--cross-eval` then evaluates each final checkpoint in the other precision too (a copy of the run folder, resumed at
its last step with the precision swapped: no step is trained, `eval_at_end` scores it), which splits the difference
into what mixed-precision *training* changed (mixed-trained weights scored in float32, against the float32 run) and
what mixed-precision *inference* changes (the float32-trained weights scored in the reduced precision).
Target (issue 15): |PSNR(mixed) - PSNR(float32)| <= 0.1 dB, no NaN. Without bf16 hardware (AVX512-BF16
/ AMX / a GPU) the mixed runs are not faster: TensorFlow emulates bfloat16 on such CPUs. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tfvr.safety import write_text  # noqa: E402  (stdlib only: temporary sibling, checked, renamed)

# family -> (train script, demo flagfile, the eval.json key of the model's PSNR, extra flags for a short run)
FAMILIES = {
    "sttn": ("train/sttn.py", "train/configs/sttn_denoise_demo.flags", "psnr",
             ["--config.train_ablation=false"]),
    "edvr": ("train/edvr.py", "train/configs/edvr_m_sr4x_demo.flags", "psnr",
             []),
    "sttn_inpaint": ("train/sttn_inpaint.py", "train/configs/sttn_inpaint_demo.flags", "psnr",
                     []),
    "vid2vid": ("train/vid2vid.py", "train/configs/vid2vid_demo.flags", "psnr", []),
    "memvsr": ("train/memvsr.py", "train/configs/memvsr_vsr_demo.flags", "psnr", []),
}


def _load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def _psnr(payload: dict, key: str):
    """The model's held-out PSNR in eval.json (`psnr`, else the first `*psnr*` key that is not a baseline)."""
    if key in payload:
        return float(payload[key])
    for k, v in payload.items():
        if "psnr" in k and not any(b in k for b in ("bicubic", "input", "noisy", "baseline", "ablation")):
            return float(v)
    return None


def _record_path(workdir: str) -> str:
    """Where this bench keeps its record of the run in `workdir`: beside the run folder (`<workdir>.bench-run.json`),
    never inside the training run."""
    return os.path.normpath(workdir) + ".bench-run.json"


def _read_record(path: str) -> dict | None:
    try:
        with open(path) as f:
            out = json.load(f)
    except (OSError, ValueError):
        return None
    return out if isinstance(out, dict) and "cmd" in out and "family" in out else None


def _reusable(workdir: str, cmd: list[str]) -> dict | None:
    """A finished earlier run of the same command in `workdir` (the record this bench wrote), or None."""
    out = _read_record(_record_path(workdir))
    return out if out and out.get("cmd") == " ".join(cmd[1:]) and out.get("rc") == 0 and "psnr" in out else None


def _write_record(workdir: str, out: dict) -> None:
    """Writes the record `--reuse` reads (tfvr.safety.write_text: temporary sibling, checked, renamed); refuses to
    replace a file of that name that is not one of this bench's records."""
    path = _record_path(workdir)
    if os.path.lexists(path) and (os.path.islink(path) or _read_record(path) is None):
        raise SystemExit(f"{path}: exists and is not a record of this bench; not replaced")
    write_text(path, json.dumps(out, indent=1))


def _run_and_score(cmd: list[str], workdir: str, key: str, timeout: float, fields: dict) -> tuple[dict, str]:
    """Runs one train-script command (the repository first on PYTHONPATH) and reads the model's PSNR from the
    eval.json it wrote in `workdir`: (the record: `fields` + seconds, rc, load, cmd, eval, psnr or error; stderr)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p]))
    t0, load0 = time.perf_counter(), _load()
    try:
        r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        rc, err = r.returncode, r.stderr
    except subprocess.TimeoutExpired:
        rc, err = "timeout", ""
    out = {**fields, "seconds": round(time.perf_counter() - t0, 1), "rc": rc, "load_before": load0,
           "load_after": _load(), "cmd": " ".join(cmd[1:])}
    path = os.path.join(workdir, "eval.json")
    if rc == 0 and os.path.exists(path):
        out["eval"] = json.loads(open(path).read())
        out["psnr"] = _psnr(out["eval"], key)
    else:
        out["error"] = (err.strip().splitlines() or ["?"])[-1][:300]
    return out, err


def run_one(family: str, precision: str, steps: int, workdir: str, seed: int, timeout: float,
            overrides=(), reuse: bool = False) -> dict:
    script, flags, key, extra = FAMILIES[family]
    extra = [e.format(n=steps, m=max(1, int(steps * 0.75))) for e in extra] + list(overrides)
    cmd = [sys.executable, script, f"--flagfile={flags}", f"--workdir={workdir}",
           f"--config.trainer.num_steps={steps}", f"--config.trainer.eval_every={steps}",
           f"--config.trainer.checkpoint_every={steps}", f"--config.trainer.image_every={steps}",
           f"--config.trainer.log_every={max(1, steps // 4)}", "--config.trainer.export=false",
           f"--config.trainer.seed={seed}", f"--config.runtime.precision={precision}",
           "--config.data.deterministic=true", *extra]
    if reuse and (old := _reusable(workdir, cmd)) is not None:
        old["reused"] = True
        return old
    out, err = _run_and_score(cmd, workdir, key, timeout,
                              {"family": family, "precision": precision, "steps": steps})
    out["nan"] = "nan" in err.lower() and "diverged" in err.lower() or (
        out.get("psnr") is not None and not math.isfinite(out["psnr"]))
    if os.path.isdir(workdir):
        _write_record(workdir, out)
    return out


def cross_eval(run: dict, precision: str, workdir: str, timeout: float, reuse: bool = False) -> dict:
    """Scores the final checkpoint of the finished `run` in `precision`: its folder copied to `workdir` (never the
    run itself: the copy is resumed), the same command with `--config.runtime.precision` swapped. The copy already
    holds `num_steps` steps, so nothing is trained; `eval_at_end` writes a new eval.json."""
    src = run["cmd"].split(" --workdir=", 1)[1].split(" ", 1)[0]
    args = run["cmd"].split()
    args = [f"--workdir={workdir}" if a.startswith("--workdir=") else
            f"--config.runtime.precision={precision}" if a.startswith("--config.runtime.precision=") else a
            for a in args]
    cmd = [sys.executable, *args]
    if reuse and (old := _reusable(workdir, cmd)) is not None:
        return {**old, "reused": True}
    if os.path.lexists(workdir):
        old = _read_record(_record_path(workdir))
        if os.path.islink(workdir) or not os.path.isdir(workdir) or old is None or "trained" not in old:
            raise SystemExit(f"{workdir}: exists and is not a cross-eval copy this bench made; not replaced")
        shutil.rmtree(workdir)  # a cross-eval copy this bench made earlier (its record says so)
    shutil.copytree(src, workdir, ignore=shutil.ignore_patterns("eval.json"))
    out, _ = _run_and_score(cmd, workdir, FAMILIES[run["family"]][2], timeout,
                            {"family": run["family"], "precision": precision, "trained": run["precision"],
                             "steps": run["steps"]})
    _write_record(workdir, out)
    return out


def _print_float32(fam: str, label: str, r: dict) -> None:
    print(f"{fam:>13} {label:<14} PSNR {r.get('psnr', float('nan')):7.3f} dB  {r['seconds']:7.1f} s  "
          f"load {r['load_before']} -> {r['load_after']}  {r.get('error', '')}"
          f"{'  (reused)' if r.get('reused') else ''}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default="sttn,edvr", help=f"comma list of {', '.join(FAMILIES)}")
    ap.add_argument("--precisions", default="mixed_bfloat16")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default="", help="folder for the run workdirs (default: a temp dir)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per training run")
    ap.add_argument("--json", default="")
    ap.add_argument("--set", action="append", default=[], metavar="--config.KEY=VALUE",
                    help="an extra override for both runs of every family (repeatable), e.g. a learning rate")
    ap.add_argument("--float32-repeats", type=int, default=1,
                    help="run the float32 baseline this many times and print the spread of its PSNR")
    ap.add_argument("--cross-eval", action="store_true",
                    help="also score each final checkpoint in the other precision (trained-in vs evaluated-in)")
    ap.add_argument("--reuse", action="store_true",
                    help="read a run that already finished in --keep with the same command instead of re-running it")
    args = ap.parse_args()
    if args.reuse and not args.keep:
        ap.error("--reuse needs --keep")
    root = args.keep or tempfile.mkdtemp(prefix="tfvr-bench-mixed-")
    print(f"mixed precision vs float32, {args.steps} steps per run, seed {args.seed}, {os.cpu_count()} CPUs, "
          f"load {_load()}", flush=True)
    rows = []
    for fam in [f for f in args.families.split(",") if f]:
        if fam not in FAMILIES:
            print(f"{fam}: unknown family (one of {', '.join(FAMILIES)})")
            return 2
        base = run_one(fam, "float32", args.steps, os.path.join(root, f"{fam}-float32"), args.seed, args.timeout,
                       args.set, args.reuse)
        rows.append(base)
        _print_float32(fam, "float32", base)
        repeats = [base]
        for k in range(2, args.float32_repeats + 1):
            r = run_one(fam, "float32", args.steps, os.path.join(root, f"{fam}-float32-r{k}"), args.seed,
                        args.timeout, args.set, args.reuse)
            rows.append(r)
            repeats.append(r)
            _print_float32(fam, f"float32 (#{k})", r)
        vals = [r["psnr"] for r in repeats if r.get("psnr") is not None]
        if len(repeats) > 1 and vals:
            print(f"{fam:>13} float32 spread over {len(vals)} runs: {max(vals) - min(vals):.3f} dB "
                  f"({min(vals):.3f} .. {max(vals):.3f})", flush=True)
        for prec in [p for p in args.precisions.split(",") if p]:
            r = run_one(fam, prec, args.steps, os.path.join(root, f"{fam}-{prec}"), args.seed, args.timeout,
                        args.set, args.reuse)
            rows.append(r)
            diff = (r["psnr"] - base["psnr"]) if r.get("psnr") is not None and base.get("psnr") is not None \
                else float("nan")
            r["diff_db"] = diff
            ok = abs(diff) <= 0.1 and not r["nan"]
            print(f"{fam:>13} {prec:<14} PSNR {r.get('psnr', float('nan')):7.3f} dB  {r['seconds']:7.1f} s  "
                  f"load {r['load_before']} -> {r['load_after']}  diff {diff:+.3f} dB "
                  f"({'within' if ok else 'OUTSIDE'} 0.1 dB{', NaN' if r['nan'] else ''})  {r.get('error', '')}"
                  f"{'  (reused)' if r.get('reused') else ''}",
                  flush=True)
            if args.cross_eval and r.get("psnr") is not None and base.get("psnr") is not None:
                # float32-trained scored in `prec`; `prec`-trained scored in float32
                fi = cross_eval(base, prec, os.path.join(root, f"{fam}-float32-eval-{prec}"), args.timeout,
                                args.reuse)
                mf = cross_eval(r, "float32", os.path.join(root, f"{fam}-{prec}-eval-float32"), args.timeout,
                                args.reuse)
                rows += [fi, mf]
                p = {("float32", "float32"): base["psnr"], (prec, prec): r["psnr"],
                     ("float32", prec): fi.get("psnr", float("nan")), (prec, "float32"): mf.get("psnr", float("nan"))}
                print(f"{fam:>13} held-out PSNR, trained in (rows) x evaluated in (columns):", flush=True)
                print(f"{'':>13} {'':<14} {'float32':>9} {prec:>15}", flush=True)
                for t in ("float32", prec):
                    print(f"{'':>13} {t:<14} {p[(t, 'float32')]:9.3f} {p[(t, prec)]:15.3f}", flush=True)
                r["diff_training_db"] = p[(prec, "float32")] - p[("float32", "float32")]
                r["diff_inference_db"] = p[("float32", prec)] - p[("float32", "float32")]
                print(f"{fam:>13} training in {prec}: {r['diff_training_db']:+.3f} dB (both scored in float32); "
                      f"inference in {prec}: {r['diff_inference_db']:+.3f} dB (float32 weights)  "
                      f"{fi.get('error', '')} {mf.get('error', '')}", flush=True)
    if args.json:
        write_text(args.json, json.dumps(rows, indent=1))
    print(f"runs in {root}; load {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
