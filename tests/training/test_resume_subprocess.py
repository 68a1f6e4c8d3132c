"""A training process stopped by SIGTERM writes a checkpoint and exits 143; one killed by SIGKILL restarts from its
last checkpoint (steps lost only since then, none trained twice by the restarted process, no corrupt checkpoint
used); the run ends at exactly num_steps. Uses `python -m tests.training.toy` (a full train script)."""

import json
import os
import signal
import subprocess
import sys
import time

from tests.helpers import REPO, toy_flags

FLAGS = toy_flags(trainer__num_steps=40, trainer__checkpoint_every=5, model__sleep_per_step=0.04,
                  optim__learning_rate="1e-3")  # the toy run of the resume test


def _steps(workdir):
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line)["step"] for line in f if line.strip() and '"loss"' in line]


def _start(flagfile, workdir):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, "-m", "tests.training.toy_train", f"--flagfile={flagfile}",
                             f"--workdir={workdir}"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_step(proc, workdir, step, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"training ended early (rc {proc.returncode}): {proc.stderr.read()[-2000:]}")
        steps = _steps(workdir)
        if steps and steps[-1] >= step:
            return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no step {step} within {timeout} s")


def _latest_checkpoint(workdir):
    with open(os.path.join(workdir, "checkpoints", "checkpoint")) as f:
        first = f.readline()
    return int(first.split('"')[1].rsplit("-", 1)[1])


def test_sigterm_checkpoints_and_sigkill_resumes(tmp_path):
    flagfile = tmp_path / "toy.flags"
    flagfile.write_text(FLAGS)
    w = str(tmp_path / "run")

    # 1. SIGTERM: finishes the step, writes a checkpoint at that step, exits 128 + 15.
    p = _start(flagfile, w)
    _wait_for_step(p, w, 7)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err[-2000:]
    stopped = _steps(w)[-1]
    assert f"interrupted by signal 15 at step {stopped}" in err
    assert _latest_checkpoint(w) == stopped
    n1 = len(_steps(w))

    # 2. restart, then SIGKILL mid-run: nothing can be written at the kill.
    p = _start(flagfile, w)
    _wait_for_step(p, w, stopped + 13)
    p.kill()
    p.wait(timeout=30)
    run2 = _steps(w)[n1:]
    assert run2[0] == stopped + 1, run2[:3]  # resumed exactly where SIGTERM stopped
    killed_at = run2[-1]
    ckpt = _latest_checkpoint(w)
    assert ckpt <= killed_at < ckpt + 5 + 1  # at most one checkpoint interval of steps lost

    # 3. restart again: continues from the last checkpoint and ends at num_steps.
    p = _start(flagfile, w)
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err[-3000:]
    # the records of the steps the killed process logged after its last checkpoint (ckpt+1..killed_at) were
    # dropped on resume: every step is in metrics.jsonl exactly once (issue 12 case 13)
    assert _steps(w) == list(range(1, 41))
    if killed_at > ckpt:
        assert f"dropped {killed_at - ckpt} record(s) of steps after {ckpt}" in err, err[-2000:]
    assert _latest_checkpoint(w) == 40
    with open(os.path.join(w, "config.json")) as f:
        assert json.load(f)["task"] == "toy_denoise"
