"""MultiWorkerMirroredStrategy: 2 worker processes on 127.0.0.1 (TF_CONFIG) train a few steps of the toy task
with tfvr's loop and end with identical weights; only the chief writes into the workdir."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from tests.helpers import REPO, toy_flags

FLAGS = toy_flags(trainer__num_steps=3, trainer__checkpoint_every=2, optim__learning_rate="1e-2",
                  optim__clip_norm=0.1)


def _free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def test_two_workers_end_with_identical_weights(tmp_path):
    flagfile = tmp_path / "mw.flags"
    flagfile.write_text(FLAGS)
    dump = tmp_path / "dump"
    dump.mkdir()
    w = tmp_path / "run"
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TOY_DUMP_WEIGHTS=str(dump), TF_CPP_MIN_LOG_LEVEL="2")
        procs.append(subprocess.Popen([sys.executable, "-m", "tests.training.toy_train", f"--flagfile={flagfile}",
                                       f"--workdir={w}"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=240))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    a = np.load(dump / "worker0.npz")
    b = np.load(dump / "worker1.npz")
    assert len(a.files) == len(b.files) > 0
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
    # the chief wrote the run; the other worker's scratch checkpoints are gone
    assert (w / "config.json").exists() and (w / "metrics.jsonl").exists()
    ckpts = sorted(p.name for p in (w / "checkpoints").iterdir())
    assert "ckpt-3.index" in ckpts and not any("worker" in c for c in ckpts), ckpts
    steps = [json.loads(line)["step"] for line in (w / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
