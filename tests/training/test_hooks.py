"""The Trainer's lifecycle hooks (`TrainerCallback`: on_train_start, on_eval_end, on_checkpoint): the task first,
then `callbacks` in order. Their order over a run: tests/training/test_loop.py::test_train_writes_outputs_..."""

import os

from tests.helpers import one_cpu_strategy
from tests.training.toy import ToyExperiment, ToyTask
from tfvr.training.loop import Trainer
from tfvr.training.task import TrainerCallback


class Recorder(TrainerCallback):
    def __init__(self, log, who):
        self.log, self.who = log, who

    def on_train_start(self, trainer):
        self.log.append((self.who, "train_start", trainer.step))

    def on_eval_end(self, trainer, metrics):
        assert set(metrics) == {"psnr"}
        self.log.append((self.who, "eval", trainer.step))

    def on_checkpoint(self, trainer, path):
        assert os.path.exists(path + ".index")
        self.log.append((self.who, "checkpoint", trainer.step))


class HookedToy(ToyTask):
    name = "toy_hooks_test"

    def __init__(self, config, log):
        super().__init__(config)
        self.log = log

    def on_checkpoint(self, trainer, path):
        self.log.append(("task", "checkpoint", trainer.step))


def test_task_hooks_run_before_the_callbacks(tmp_path):
    """The order in one hook call (no training: `_hook` is what `save`, `evaluate` and `train` call). The order of
    the hooks over a run, resume and an already trained run: tests/training/test_loop.py (the first test)."""
    log = []
    trainer = Trainer(HookedToy(ToyExperiment(), log), str(tmp_path), strategy=one_cpu_strategy(),
                      callbacks=[Recorder(log, "cb1"), Recorder(log, "cb2")])
    (tmp_path / "ckpt-7.index").write_text("")
    trainer.step = 7
    trainer._hook("on_checkpoint", str(tmp_path / "ckpt-7"))
    trainer._hook("on_train_start")
    assert log == [("task", "checkpoint", 7), ("cb1", "checkpoint", 7), ("cb2", "checkpoint", 7),
                   ("cb1", "train_start", 7), ("cb2", "train_start", 7)]  # the Task's own default is a no-op
