"""The toy task's train script (what `train/<family>.py` is for a family): `python -m tests.training.toy_train
--flagfile=... --workdir=...`. TOY_TASK picks the task (default toy_denoise); TOY_DUMP_WEIGHTS=<dir> makes every
worker save its final weights there (the multi-worker test compares them)."""

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

        def train(self):
            res = _train(self)
            arrays = [np.asarray(v.numpy()) for m in self.models.values() for v in m.weights]
            np.savez(os.path.join(dump, f"worker{worker_index(self.strategy)}.npz"), *arrays)
            return res

        loop.Trainer.train = train
    task_name = os.environ.get("TOY_TASK", "toy_denoise")
    app.run(registry.get_task(task_name))


if __name__ == "__main__":
    main()
