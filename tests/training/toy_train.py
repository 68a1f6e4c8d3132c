"""The toy task's train script (what `train/<family>.py` is for a family): `python -m tests.training.toy_train
--flagfile=... --workdir=...`. TOY_TASK picks the task (default toy_denoise); TOY_DUMP_WEIGHTS=<dir> makes every
worker save its final weights there (the multi-worker test compares them); TOY_STALL_IN_SAVE=<step>:<marker file>
makes the save of checkpoint <step> write half its files, touch the marker and hang (to be SIGKILLed there).
"""

import os

import numpy as np

from tests.training import toy  # noqa: F401  (registers the toy tasks under their module's name)
from tfvr import registry


def main():
    from tfvr.training import app

    dump = os.environ.get("TOY_DUMP_WEIGHTS")
    if dump:  # the multi-worker test compares every worker's weights after training
        from tfvr.training import loop
        from tfvr.training.strategy import worker_index

        _train = loop.Trainer.train

        def train(self, *args, **kwargs):
            res = _train(self, *args, **kwargs)
            arrays = [np.asarray(v.numpy()) for m in self.models.values() for v in m.weights]
            np.savez(os.path.join(dump, f"worker{worker_index(self.strategy)}.npz"), *arrays)
            return res

        loop.Trainer.train = train
    stall = os.environ.get("TOY_STALL_IN_SAVE")
    if stall:  # issue 12: be SIGKILLed in the middle of writing checkpoint <step> (the files half written)
        import glob
        import time

        from tfvr.training import checkpoints

        step_, marker = stall.split(":", 1)
        _save = checkpoints.Checkpointer.save

        def save(self, step):
            if int(step) == int(step_):
                prefix = os.path.join(self._save_dir, f"ckpt-{step}")
                self.checkpoint.write(prefix)  # the files, not yet in the checkpoint list ...
                for data in glob.glob(prefix + ".data-*"):
                    with open(data, "r+b") as f:  # ... and the data file cut short, as by a kill mid-write
                        f.truncate(os.path.getsize(data) // 2)
                open(marker, "w").close()
                time.sleep(600)
            return _save(self, step)

        checkpoints.Checkpointer.save = save
    task_name = os.environ.get("TOY_TASK", "toy_denoise")
    app.run(registry.get_task(task_name))


if __name__ == "__main__":
    main()
