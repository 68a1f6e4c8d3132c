"""Checkpoints: save every N steps / on signals, restore the newest *readable* one.

A checkpoint is written by `tf.train.CheckpointManager`: the files of `ckpt-<step>` are written first (TF writes
shards under a temporary name and renames them), and only then is the `checkpoint` state file - the list of
checkpoints - replaced atomically. A process killed half-way through a save therefore leaves the previous list,
and the half-written files are never offered for restore. If a listed checkpoint is unreadable anyway (a
truncated or deleted file), `restore_latest` logs it, moves its files aside into
`checkpoints/unreadable-<time>/` (kept, never deleted: maybe recoverable) so that the manager can neither rotate
them away nor overwrite them, and falls back to the previous one.

When checkpoints exist (listed, or `ckpt-*.index` files on disk) but none can be read, `restore_latest` raises
`UnreadableCheckpoints` listing them: the run does not silently start again from step 0. The trainer's
`restart_from_scratch=true` then moves them aside (`move_aside`) and starts over.

Only the chief writes into `<workdir>/checkpoints`; the other workers of a multi-worker run must take part in the
save (it reads mirrored variables) and write into a scratch folder that is removed right after.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import time
from typing import Optional

import tensorflow as tf

from tfvr.errors import UserError

log = logging.getLogger("tfvr.training")

__all__ = ["Checkpointer", "CheckpointMismatch", "UnreadableCheckpoints", "latest_checkpoint_step"]


class CheckpointMismatch(UserError):
    """A checkpoint that reads fine but does not fit the model being trained (a different config)."""


class UnreadableCheckpoints(UserError):
    """Checkpoints exist but none can be read (listed in the message)."""

    def __init__(self, message: str, paths: list[str]):
        super().__init__(message)
        self.paths = paths


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


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
        self._max_to_keep = max(1, max_to_keep)
        self.manager = self._new_manager()
        # The chief's list, also on other workers (they restore from the chief's files on a shared disk).
        self._read_manager = self.manager if is_chief else None

    def _new_manager(self):
        return tf.train.CheckpointManager(self.checkpoint, self._save_dir, max_to_keep=self._max_to_keep,
                                          checkpoint_name="ckpt")

    # -- saving -------------------------------------------------------------------------------------------------
    def save(self, step: int) -> str:
        """Writes ckpt-<step>. A save that fails (disk full ...) leaves nothing half-written behind: TF's
        `ckpt-<step>_temp/` folder and the new, unlisted ckpt-<step> files are removed before the error goes on."""
        prefix = os.path.join(self._save_dir, f"ckpt-{int(step)}")
        listed_before = prefix in self.checkpoints() if self.is_chief else False
        try:
            path = self.manager.save(checkpoint_number=int(step))
        except BaseException:
            shutil.rmtree(prefix + "_temp", ignore_errors=True)
            if not listed_before:
                for f in glob.glob(glob.escape(prefix) + ".*"):
                    try:
                        os.unlink(f)
                    except OSError:
                        pass
            raise
        if not self.is_chief:
            shutil.rmtree(self._save_dir, ignore_errors=True)
        return path

    # -- listing ------------------------------------------------------------------------------------------------
    def checkpoints(self) -> list[str]:
        """Listed checkpoints, oldest first (re-read from the state file)."""
        try:
            state = tf.train.get_checkpoint_state(self.directory)
        except _CORRUPT:
            state = None
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

    def on_disk(self) -> list[str]:
        """Every `ckpt-*` prefix with an .index or .data file in the folder (listed or not), oldest step first."""
        found = set()
        for f in glob.glob(os.path.join(glob.escape(self.directory), "ckpt-*")):
            base = os.path.basename(f)
            prefix = base.split(".", 1)[0]
            if prefix.startswith("ckpt-") and prefix[5:].isdigit() and ("." in base):
                found.add(os.path.join(self.directory, prefix))
        return sorted(found, key=checkpoint_step)

    def restore_latest(self, set_aside: bool = True) -> Optional[str]:
        """Restores the newest readable checkpoint and returns its path (None if there is none at all).

        Unreadable listed checkpoints newer than the one restored are moved aside (module docstring) when
        `set_aside` (the training loop; readers pass False and change nothing). Raises `UnreadableCheckpoints`
        when checkpoints exist but none is readable."""
        listed = self.checkpoints()
        bad: list[tuple[str, str]] = []
        for path in reversed(listed):
            try:
                self.restore(path)
            except CheckpointMismatch:
                raise
            except _CORRUPT as e:
                why = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                log.warning("checkpoint %s is unreadable (%s); trying the previous one", path, why)
                bad.append((path, why))
                continue
            if bad and set_aside and self.is_chief:
                self._set_aside_unreadable(path, [b for b, _ in bad], listed)
            return path
        # An unlisted ckpt-0 alone is the first save of a process killed while writing it: step 0 holds nothing
        # trained, so it does not stop the run (it is simply written again).
        unlisted = [p for p in self.on_disk() if checkpoint_step(p) > 0 or listed]
        existing = sorted(set(listed) | set(unlisted), key=checkpoint_step)
        if not existing:
            return None
        names = ", ".join(os.path.basename(p) for p in existing)
        why = f" ({bad[0][1]})" if bad else " (not listed in the 'checkpoint' state file, or it is unreadable)"
        raise UnreadableCheckpoints(
            f"{self.directory}: {len(existing)} checkpoint(s) but none is readable: {names}{why}; nothing was "
            f"changed. Fix or remove them, or pass --config.trainer.restart_from_scratch=true to start at step 0 "
            f"(they are then moved aside, not deleted)", existing)

    def _set_aside_unreadable(self, restored: str, bad: list[str], listed: list[str]) -> None:
        """Moves the files of the unreadable checkpoints `bad` into `unreadable-<time>/` and drops them from the
        state file (the manager is rebuilt from it), so nothing can rotate them away or overwrite them."""
        dest = os.path.join(self.directory, f"unreadable-{_stamp()}")
        os.makedirs(dest, exist_ok=True)
        for prefix in bad:
            for f in glob.glob(glob.escape(prefix) + ".*"):
                os.replace(f, os.path.join(dest, os.path.basename(f)))
        state = tf.train.get_checkpoint_state(self.directory)
        keep = [p for p in listed if p not in bad]
        stamps = list(state.all_model_checkpoint_timestamps) if state is not None else []
        by_path = dict(zip([p if os.path.isabs(p) else os.path.join(self.directory, p)
                            for p in state.all_model_checkpoint_paths], stamps)) if stamps else {}
        tf.compat.v1.train.update_checkpoint_state(
            self.directory, restored, all_model_checkpoint_paths=keep,
            all_model_checkpoint_timestamps=[by_path[p] for p in keep] if by_path else None,
            last_preserved_timestamp=state.last_preserved_timestamp if state is not None else None)
        self.manager = self._new_manager()
        log.warning("moved the unreadable checkpoint(s) %s aside into %s (kept, not deleted)",
                    ", ".join(os.path.basename(b) for b in bad), dest)

    def move_aside(self, dest: str) -> str:
        """Moves the whole checkpoint folder to `dest` (restart from scratch) and starts an empty one."""
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(self.directory, dest)
        os.makedirs(self.directory, exist_ok=True)
        self.manager = self._new_manager()
        return dest


def checkpoint_step(path: str) -> int:
    """The step number in a `.../ckpt-<step>` path."""
    return int(os.path.basename(path).rsplit("-", 1)[1])


def latest_checkpoint_step(directory: str) -> Optional[int]:
    state = tf.train.get_checkpoint_state(directory)
    if state is None or not state.model_checkpoint_path:
        return None
    return checkpoint_step(state.model_checkpoint_path)
