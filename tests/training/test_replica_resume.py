"""A checkpoint written under 2 replicas resumes under 1, and one written under 1 resumes under 2 (logical CPUs):
weights, optimizer slots, EMA and the step come back exactly, and the next step with the same global batch matches
the run that kept its replica count (docs/distributed.md, "Resuming on a different number of replicas")."""

import numpy as np
import pytest

from tests.helpers import one_cpu_strategy, two_cpu_strategy
from tests.training.toy import ToyExperiment, ToyTask, make_batch
from tfvr.training.loop import Trainer

STRATEGIES = {1: one_cpu_strategy, 2: two_cpu_strategy}


def _exp():
    exp = ToyExperiment()
    exp.optim.learning_rate = 1e-2
    exp.optim.clip_norm = 0.5
    exp.trainer.ema_decay = 0.5
    return exp


def _state(trainer):
    weights = [w.numpy().copy() for w in trainer.models["denoiser"].weights]
    slots = [v.numpy().copy() for v in trainer.optimizers["main"].variables]
    ema = [v.numpy().copy() for v in trainer.ema.shadow]
    return weights, slots, ema


def _assert_close(a, b, atol):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=atol, rtol=0)


@pytest.mark.parametrize("before,after", [(2, 1), (1, 2)])
def test_checkpoint_resumes_on_another_replica_count(tmp_path, before, after):
    workdir = str(tmp_path / "run")
    first = Trainer(ToyTask(_exp()), workdir, strategy=STRATEGIES[before]()).build()
    assert first.num_replicas == before
    for i in range(2):
        first.run_step(make_batch(i, 4, 8, 0.1))  # global batch 4: 2 per replica on 2 replicas
    first.save()
    saved = _state(first)

    resumed = Trainer(ToyTask(_exp()), workdir, strategy=STRATEGIES[after]()).build()
    assert resumed.num_replicas == after
    assert resumed.restore() == 2
    got = _state(resumed)
    for a, b in zip(saved, got):  # bit-exact: a checkpoint holds one copy of each (mirrored) variable
        _assert_close(a, b, atol=0)
    assert int(resumed.optimizers["main"].iterations.numpy()) == 2

    # The next step on the same global batch: the same update whatever the replica count (mean loss, global clip).
    batch = make_batch(7, 4, 8, 0.1)
    first.run_step(batch)
    resumed.run_step(batch)
    for a, b in zip(_state(first), _state(resumed)):
        _assert_close(a, b, atol=1e-5)
    moved = max(float(np.max(np.abs(x - y))) for x, y in zip(saved[0], _state(resumed)[0]))
    assert moved > 1e-4
