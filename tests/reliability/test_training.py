"""Issue 12, the trainer (real train-script subprocesses of the toy task, `tests.training.toy_train`):

* case 6: two trainers on one workdir - the second stops with one line naming the holder (exit 2) and writes
  nothing; a stale lock of a SIGKILLed trainer is taken over with a message naming it;
* case 7: SIGKILL in the middle of a checkpoint write - the restart resumes from the previous good checkpoint,
  nothing lost; checkpoints that exist but are all unreadable stop the run with a list of them (nothing changed),
  `restart_from_scratch=true` moves them aside and starts over;
* case 10: a full disk while writing checkpoints - one line naming the path, exit 2;
* case 11: out-of-range config values are refused before the workdir exists;
* case 13: the resumed run logs no step twice in metrics.jsonl.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tests.helpers import REPO, toy_flags
from tests.reliability._fs import fill, one_error_line, small_tmpfs

FLAGS = toy_flags(trainer__checkpoint_every=4, trainer__keep_checkpoints=10, optim__learning_rate="1e-3")
PROG = "toy_train.py"


def _cmd(tmp_path, workdir, *extra):
    flagfile = tmp_path / "toy.flags"
    if not flagfile.exists():
        flagfile.write_text(FLAGS)
    return [sys.executable, "-m", "tests.training.toy_train", f"--flagfile={flagfile}", f"--workdir={workdir}",
            *extra]


def _env(**extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO), **extra}


def _run(tmp_path, workdir, *extra, env=None, timeout=300):
    return subprocess.run(_cmd(tmp_path, workdir, *extra), cwd=REPO, env=_env(**(env or {})), capture_output=True,
                          text=True, timeout=timeout)


def _steps(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line)["step"] for line in f if '"loss"' in line]


def _listed(workdir):
    state = tf.train.get_checkpoint_state(os.path.join(workdir, "checkpoints"))
    return [int(p.rsplit("-", 1)[1]) for p in state.all_model_checkpoint_paths]


def _wait(pred, proc, timeout=180):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the trainer ended early (rc {proc.returncode}): {proc.stderr.read()[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("timed out")


def test_second_trainer_on_the_same_workdir_stops_with_the_holder(tmp_path):
    w = tmp_path / "run"
    first = subprocess.Popen(_cmd(tmp_path, w, "--config.trainer.num_steps=2000", "--config.model.sleep_per_step=0.2"),
                             cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait(lambda: (w / "metrics.jsonl").exists(), first)
        config_before = (w / "config.json").read_bytes()
        second = _run(tmp_path, w, "--config.trainer.num_steps=99")
        assert first.poll() is None, "the first trainer should still be running"
    finally:
        first.send_signal(signal.SIGTERM)  # the first one stops cleanly (checkpoint, exit 143)
        out, err = first.communicate(timeout=300)
    assert second.returncode == 2, second.stderr[-3000:]
    line = one_error_line(second.stderr, PROG)
    assert f"is in use by another training run: pid {first.pid} on {socket.gethostname()}" in line, line
    assert str(w / ".lock") in line
    assert (w / "config.json").read_bytes() == config_before  # the second one wrote nothing
    assert first.returncode == 143, err[-3000:]
    steps = _steps(w)
    assert steps == list(range(1, len(steps) + 1))  # every step logged once, by the first trainer only
    assert (w / ".lock").read_text() == ""  # released on exit: no stale holder left


def test_sigkill_during_a_checkpoint_write_resumes_from_the_previous_one(tmp_path):
    w = tmp_path / "run"
    marker = tmp_path / "in-save"
    p = subprocess.Popen(_cmd(tmp_path, w, "--config.trainer.num_steps=12"), cwd=REPO,
                         env=_env(TOY_STALL_IN_SAVE=f"8:{marker}"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    _wait(marker.exists, p)
    p.send_signal(signal.SIGKILL)  # while ckpt-8 is half written
    p.wait(timeout=60)
    assert _listed(w) == [0, 4]  # the half-written ckpt-8 was never listed
    assert (w / "checkpoints" / "ckpt-8.index").exists()
    assert json.loads((w / ".lock").read_text())["pid"] == p.pid  # the dead holder is still named in the file

    r = _run(tmp_path, w, "--config.trainer.num_steps=12")
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"taking over the stale lock of pid {p.pid}" in r.stderr, r.stderr[-3000:]
    assert "ckpt-4 (step 4)" in r.stderr  # resumed from the previous good checkpoint
    assert _listed(w) == [0, 4, 8, 12]
    for step in (0, 4, 8, 12):  # nothing lost: every listed checkpoint reads
        tf.train.load_checkpoint(str(w / "checkpoints" / f"ckpt-{step}"))
    assert _steps(w) == list(range(1, 13))  # steps 5..8 of the killed process are not logged twice (case 13)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finished")
    w = tmp / "run"
    r = _run(tmp, w, "--config.trainer.num_steps=4", "--config.trainer.checkpoint_every=2")
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp, w


def test_all_checkpoints_unreadable_stops_then_restart_from_scratch_moves_them_aside(finished_run, tmp_path):
    tmp, src = finished_run
    w = tmp_path / "run"
    shutil.copytree(src, w)
    ckpts = w / "checkpoints"
    for data in ckpts.glob("ckpt-*.data-*"):
        data.write_bytes(data.read_bytes()[:40])  # every checkpoint truncated
    before = {p.name: p.read_bytes() for p in ckpts.iterdir()}
    metrics_before = (w / "metrics.jsonl").read_bytes()
    config_before = (w / "config.json").read_bytes()

    r = _run(tmp, w, "--config.trainer.num_steps=4", "--config.trainer.checkpoint_every=2", "--config.trainer.seed=1")
    assert r.returncode == 2, r.stderr[-3000:]
    line = one_error_line(r.stderr, PROG)
    assert "3 checkpoint(s) but none is readable: ckpt-0, ckpt-2, ckpt-4" in line, line
    assert "restart_from_scratch=true" in line
    assert {p.name: p.read_bytes() for p in ckpts.iterdir()} == before  # nothing changed, nothing rotated away
    assert (w / "config.json").read_bytes() == config_before and (w / "metrics.jsonl").read_bytes() == metrics_before

    r = _run(tmp, w, "--config.trainer.num_steps=4", "--config.trainer.checkpoint_every=2",
             "--config.trainer.restart_from_scratch=true")
    assert r.returncode == 0, r.stderr[-3000:]
    aside = [p for p in w.iterdir() if p.name.startswith("unreadable-")]
    assert len(aside) == 1 and "moved aside into" in r.stderr
    assert {p.name: p.read_bytes() for p in (aside[0] / "checkpoints").iterdir()} == before  # kept, byte for byte
    assert (aside[0] / "metrics.jsonl").read_bytes() == metrics_before
    assert _listed(w) == [0, 2, 4] and _steps(w) == [1, 2, 3, 4]


def test_out_of_range_config_is_refused_before_the_workdir_exists(tmp_path):
    # the command; the other ranges are checked in-process (test_config.py), the same code path
    for flag, field in [("--config.trainer.num_steps=-5", "trainer.num_steps")]:
        w = tmp_path / "never"
        r = _run(tmp_path, w, flag)
        assert r.returncode == 2, r.stderr[-3000:]
        line = one_error_line(r.stderr, PROG)
        assert field in line and "must be" in line, line
        assert not w.exists()


def test_full_disk_while_writing_checkpoints_is_one_line(tmp_path):
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        fill(disk, leave=24 << 10)  # room for config.json and the lock, not for a checkpoint
        w = disk / "run"
        r = _run(tmp_path, w, "--config.trainer.num_steps=4")
        assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
        line = one_error_line(r.stderr, PROG)
        assert "no space left" in line.lower() and str(w) in line, line
        assert not [p for p in (w / "checkpoints").rglob("*") if "_temp" in p.name or ".tmp" in p.name], \
            sorted(p.name for p in (w / "checkpoints").rglob("*"))


def _toy_trainer(workdir, **trainer):
    from tests.helpers import one_cpu_strategy
    from tests.training.toy import ToyExperiment, ToyTask
    from tfvr.training.loop import Trainer

    e = ToyExperiment()
    e.trainer.log_every = 1
    e.trainer.image_every = 0
    e.trainer.progress_bar = False
    for k, v in trainer.items():
        setattr(e.trainer, k, v)
    return Trainer(ToyTask(e), str(workdir), strategy=one_cpu_strategy())


def test_an_unreadable_newest_checkpoint_is_kept_aside_never_rotated_away(tmp_path):
    w = tmp_path / "run"
    _toy_trainer(w, num_steps=4, checkpoint_every=2, keep_checkpoints=2).train()
    data = next((w / "checkpoints").glob("ckpt-4.data-*"))
    broken = data.read_bytes()[:60]
    data.write_bytes(broken)
    t = _toy_trainer(w, num_steps=8, checkpoint_every=2, keep_checkpoints=2)
    res = t.train()
    assert res.start_step == 2 and res.step == 8  # fell back to ckpt-2
    aside = list((w / "checkpoints").glob("unreadable-*"))
    assert len(aside) == 1 and (aside[0] / data.name).read_bytes() == broken  # kept byte for byte
    assert _listed(w) == [6, 8]  # the new ckpt-4 was rotated normally; the broken one was never in reach


def test_only_the_chief_locks(tmp_path):
    from tfvr.training.workdir_lock import WorkdirLock, WorkdirLocked

    t = _toy_trainer(tmp_path / "w", num_steps=1)
    t.is_chief = False  # a non-chief worker of a MultiWorkerMirroredStrategy run
    assert t.lock() is None and not (tmp_path / "w" / ".lock").exists()
    held = WorkdirLock(str(tmp_path / "w2")).acquire()
    try:
        with pytest.raises(WorkdirLocked, match=f"pid {os.getpid()} on {socket.gethostname()}"):
            WorkdirLock(str(tmp_path / "w2")).acquire()  # a second open file description: flock conflicts
    finally:
        held.release()
    WorkdirLock(str(tmp_path / "w2")).acquire().release()  # free again
