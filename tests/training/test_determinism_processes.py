"""`runtime.deterministic`: two processes give the same weights after a step, bit for bit.

Op determinism alone made one vid2vid step repeat bit for bit within a process, but in two processes 219-306 of
its 530 variables differed after one step. Grappler's arithmetic optimizer and constant folding rewrite float
arithmetic in an order that depends on memory addresses; `use_determinism` turns both off (docs/performance.md,
"Session 10"). The models are vid2vid's at demo size (the smallest that showed it here), one batch, one step."""

import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_STEP = r"""
import sys
import numpy as np
from tfvr import quiet
quiet.setup()
import tensorflow as tf
from tests.helpers import one_cpu_strategy
from tests.models.vid2vid.test_task import synthetic_batch, tiny_config
from tfvr.models.vid2vid.task import Vid2VidTask
from tfvr.training.loop import Trainer

cfg = tiny_config()
m = cfg.model
m.ngf, m.n_downsampling, m.n_blocks, m.use_fg_model = 16, 2, 4, True
d = cfg.disc
d.ndf, d.n_layers_D, d.num_D, d.n_scales_temporal = 16, 2, 2, 2
cfg.data.crop_size, cfg.data.num_frames, cfg.data.batch_size = 64, 4, 4
cfg.sequence.start_frames = cfg.sequence.max_frames = 4
cfg.sequence.bptt_frames = 2
cfg.train_baseline = True
cfg.runtime.deterministic = True
task = Vid2VidTask(cfg)
batch = synthetic_batch(task, n=4, t=4, size=64)
trainer = Trainer(task, "/nonexistent-unused", strategy=one_cpu_strategy()).build()
trainer.run_step(batch)
variables = [v for model in trainer.models.values() for v in model.variables]
np.savez(sys.argv[1], *[np.asarray(v) for v in variables])
"""


def test_two_processes_take_the_same_step(tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="2")
    outs = [tmp_path / f"w{i}.npz" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", _STEP, str(o)], env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for o in outs]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    a, b = np.load(outs[0]), np.load(outs[1])
    assert len(a.files) == len(b.files) > 500
    differ = [k for k in a.files if not np.array_equal(a[k], b[k])]
    assert not differ, f"{len(differ)} of {len(a.files)} variables differ between the two processes"
