"""Checkpoints: save every N steps / on signals, restore the newest *readable* one.

A checkpoint is written by `tf.train.CheckpointManager`: the files of `ckpt-<step>` are written first (TF writes
shards under a temporary name and renames them), and only then is the `checkpoint` state file - the list of
checkpoints - replaced atomically. A process killed half-way through a save therefore leaves the previous list,
and the half-written files are never offered for restore. If a listed checkpoint is unreadable anyway (a
truncated or deleted file), `restore_latest` logs it and falls back to the previous one.

Only the chief writes into `<workdir>/checkpoints`; the other workers of a multi-worker run must take part in the
save (it reads mirrored variables) and write into a scratch folder that is removed right after.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Optional

import tensorflow as tf

from tfvr.errors import UserError

log = logging.getLogger("tfvr.training")

__all__ = ["Checkpointer", "CheckpointMismatch", "latest_checkpoint_step"]


class CheckpointMismatch(UserError):
    """A checkpoint that reads fine but does not fit the model being trained (a different config)."""


# What a truncated / missing / garbage checkpoint file raises while being read.
_CORRUPT = (tf.errors.OpError, ValueError, OSError, IndexError, RuntimeError)


class Checkpointer:
    """Wraps a `tf.train.Checkpoint` of `objects` and its manager.

    Args:
        directory: `<workdir>/checkpoints`.
        objects: name -> trackable (models, optimizers, EMA, step counter, guard state).
        max_to_keep: checkpoints kept.
        is_chief: whether this process owns `directory` (else it saves into a scratch folder).
        worker_index: used to name the scratch folder.
    """

    def __init__(self, directory: str, objects: dict, max_to_keep: int = 3, is_chief: bool = True,
                 worker_index: int = 0):
        self.directory = directory
        self.is_chief = is_chief
        self.checkpoint = tf.train.Checkpoint(**objects)
        save_dir = directory if is_chief else os.path.join(directory, f".worker-{worker_index}-scratch")
        self._save_dir = save_dir
        self.manager = tf.train.CheckpointManager(self.checkpoint, save_dir, max_to_keep=max(1, max_to_keep),
                                                  checkpoint_name="ckpt")
        # The chief's list, also on other workers (they restore from the chief's files on a shared disk).
        self._read_manager = self.manager if is_chief else None

    # -- saving -------------------------------------------------------------------------------------------------
    def save(self, step: int) -> str:
        path = self.manager.save(checkpoint_number=int(step))
        if not self.is_chief:
            shutil.rmtree(self._save_dir, ignore_errors=True)
        return path

    # -- listing ------------------------------------------------------------------------------------------------
    def checkpoints(self) -> list[str]:
        """Listed checkpoints, oldest first (re-read from the state file)."""
        state = tf.train.get_checkpoint_state(self.directory)
        if state is None:
            return []
        paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
        return [p if os.path.isabs(p) else os.path.join(self.directory, p) for p in paths]

    # -- restoring ----------------------------------------------------------------------------------------------
    def restore(self, path: str) -> None:
        """Restores `path`; raises CheckpointMismatch if it does not fit, tf errors if it is unreadable."""
        status = self.checkpoint.read(path)
        try:
            status.assert_existing_objects_matched()
        except AssertionError as e:
            raise CheckpointMismatch(
                f"{path}: the checkpoint does not match the model being built (was the config changed?): "
                f"{str(e).splitlines()[0][:300]}"
            ) from None
        status.expect_partial()

    def restore_latest(self) -> Optional[str]:
        """Restores the newest readable checkpoint and returns its path (None if there is none)."""
        for path in reversed(self.checkpoints()):
            try:
                self.restore(path)
                return path
            except CheckpointMismatch:
                raise
            except _CORRUPT as e:
                log.warning("checkpoint %s is unreadable (%s: %s); trying the previous one",
                            path, type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
        return None


def checkpoint_step(path: str) -> int:
    """The step number in a `.../ckpt-<step>` path."""
    return int(os.path.basename(path).rsplit("-", 1)[1])


def latest_checkpoint_step(directory: str) -> Optional[int]:
    state = tf.train.get_checkpoint_state(directory)
    if state is None or not state.model_checkpoint_path:
        return None
    return checkpoint_step(state.model_checkpoint_path)
