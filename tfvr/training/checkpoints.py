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

What a checkpoint holds is named here, once (`checkpoint_objects`): `step`, `guard`, `model_<name>` for each of
`task.build_models()`, `optimizer_<group>`, and `ema` (the shadow copies of `ema_variables(task, models)`).

`restore_models(workdir, checkpoint=None)` rebuilds a run's models from its `config.json` and its newest readable
(or the given) checkpoint - the task is looked up in `tfvr.registry` - without optimizers, guards or a Trainer,
and by default puts the EMA weights in. `tfvr export --workdir`, `tfvr evaluate` / `tfvr.inference` on a workdir
and the families' `init_from` a workdir use it. It changes nothing in the workdir. Errors are one line
(`UserError`): no run folder, no / bad config.json, no checkpoint, an unreadable or mismatching one.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import shutil
import time
from typing import Any, Mapping, Optional

import tensorflow as tf

from tfvr.errors import UserError

log = logging.getLogger("tfvr.training")

__all__ = ["Checkpointer", "CheckpointMismatch", "UnreadableCheckpoints", "latest_checkpoint_step", "model_key",
           "checkpoint_objects", "ema_variables", "restore_models", "RestoredRun", "read_run", "read_models"]


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
        self._object_names = list(objects)
        self.predates_index = False
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
        """Restores `path`; raises CheckpointMismatch if it does not fit, tf errors if it is unreadable.

        A checkpoint written before the variable index (`checkpoint_objects`) has no `model_<name>_variables`
        entries: it is read for what it holds (the trainer's optimizers restore the trainable variables) with a
        warning, and `self.predates_index` says so (`restore_models` refuses it when it lacks model variables)."""
        status = self.checkpoint.read(path)
        self.predates_index = self._predates_index(path)
        if self.predates_index:
            log.warning("%s: written by an older tfvr (no variable index): restored what it holds; the next "
                        "checkpoint this run writes is complete", path)
        try:
            status.assert_existing_objects_matched()
        except AssertionError as e:
            if self.predates_index:
                status.expect_partial()
                return
            raise CheckpointMismatch(
                f"{path}: the checkpoint does not match the model being built (was the config changed?): "
                f"{str(e).splitlines()[0][:300]}"
            ) from None
        status.expect_partial()

    def _predates_index(self, path: str) -> bool:
        index = [n for n in self._object_names if n.endswith(VARIABLES_SUFFIX)]
        if not index:
            return False
        names = {c.local_name for c in _object_graph(path).nodes[0].children}
        return not any(k in names for k in index)

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


# ---------------------------------------------------------------------------------------------------------------
# what a checkpoint holds, and reading a run's models back


def model_key(name: str) -> str:
    """The checkpoint entry of model `name` (of `task.build_models()`)."""
    return f"model_{name}"


VARIABLES_SUFFIX = "_variables"


def variable_index(model) -> "tf.train.Checkpoint":
    """Every variable of `model` under its Keras path (`variable.path`), as one trackable.

    Keras 3 keeps a list attribute of layers in its own `TrackedList`, which `tf.train.Checkpoint` does not walk:
    a checkpoint of the model object alone misses the variables of every layer held in a list (STTN-R: 24 of its
    34; STTN-I's generator: all of them). The trainer still resumed (the optimizers hold the trainable variables)
    but `restore_models` - without optimizers - left those layers at their random initial values, and
    non-trainable ones (BatchNorm statistics) were not saved at all. This index holds them all, keyed by position
    and shape (`v<i>_<shape>`): the order of `model.variables` is fixed by the model's code (the optimizers'
    state relies on it too), whereas Keras paths hold process-dependent auto-generated names (`conv2d_17`). Only
    for the same model config: `read_models` (initialising from another run) leaves it out."""
    return tf.train.Checkpoint(**{f"v{i}_{'x'.join(str(d) for d in v.shape) or 'scalar'}": v
                                  for i, v in enumerate(model.variables)})


def checkpoint_objects(models: Mapping[str, Any], *, step=None, guard=None, optimizers: Mapping[str, Any] = (),
                       ema=None, index: bool = True) -> dict:
    """The `tf.train.Checkpoint` entries of a run: the one place their names are defined (the trainer writes all
    of them; `restore_models` reads `step`, the models and `ema`). Each model is there twice: as the object
    (`model_<name>`, its tracked layers) and as `model_<name>_variables` (`variable_index`: every variable by path;
    checkpoints written before it existed are read through `Checkpointer.restore`'s fallback)."""
    objects: dict[str, Any] = {}
    if step is not None:
        objects["step"] = step
    if guard is not None:
        objects["guard"] = guard
    for name, m in models.items():
        objects[model_key(name)] = m
        if index:
            objects[model_key(name) + VARIABLES_SUFFIX] = variable_index(m)
    for name, opt in dict(optimizers).items():
        objects[f"optimizer_{name}"] = opt
    if ema is not None:
        objects["ema"] = ema
    return objects


def ema_variables(task, models: Mapping[str, Any]) -> list:
    """The variables the EMA shadows, in checkpoint order: the trainable variables of `task.ema_models` (default:
    every model), each once."""
    from tfvr.training.task import _ref

    out, seen = [], set()
    for n in task.ema_models or tuple(models):
        for v in models[n].trainable_variables:
            if _ref(v) not in seen:
                seen.add(_ref(v))
                out.append(v)
    return out


@dataclasses.dataclass
class RestoredRun:
    """What `restore_models` rebuilt: the run's Task (with its config), its models holding the checkpoint's (EMA)
    weights, the checkpoint's step and path."""

    task: Any
    models: dict
    step: int
    path: str
    ema: bool  # whether the EMA weights were put in


def read_run(workdir, tasks: Optional[Mapping[str, type]] = None):
    """(Task instance, config.json path) of a training run folder. The task named by config.json is looked up in
    `tasks` (name -> Task class) when given, else in `tfvr.registry`; nothing config.json names is imported."""
    from tfvr.config import from_dict, read_json

    workdir = os.fspath(workdir)
    if not os.path.isdir(workdir):
        raise UserError(f"{workdir}: no such run folder")
    cfg_path = os.path.join(workdir, "config.json")
    if not os.path.isfile(cfg_path):
        raise UserError(f"{cfg_path}: no such file (not a tfvr training run?)")
    data = read_json(cfg_path)
    if "task" not in data:
        raise UserError(f"{cfg_path}: no \"task\" key (not written by a tfvr training run?)")
    if tasks is not None:
        name = data["task"]
        if not isinstance(name, str) or name not in tasks:
            raise UserError(f"{cfg_path}: a {name!r} run; expected one of {sorted(tasks)}")
        task_cls = tasks[name]
    else:
        from tfvr.registry import get_task

        task_cls = get_task(data["task"], data.get("task_module"), source=cfg_path)
    config = from_dict(task_cls.experiment_cls, data, source=cfg_path)
    return task_cls(config), cfg_path


def restore_models(workdir, checkpoint: Optional[str] = None, *, ema: bool = True,
                   tasks: Optional[Mapping[str, type]] = None) -> RestoredRun:
    """Rebuilds the models of the training run in `workdir` (module docstring): `task.build_models()` under the
    float32 policy, then reads `checkpoint` (a `ckpt-N` prefix) or the newest readable checkpoint of
    `<workdir>/checkpoints` into them. With `ema` (and an EMA in the run) the models get the EMA weights.
    `tasks`: look the run's task up there instead of in `tfvr.registry` (a family reading its own runs)."""
    import keras

    task, cfg_path = read_run(workdir, tasks)
    workdir = os.fspath(workdir)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    if checkpoint is not None and not tf.io.gfile.exists(checkpoint + ".index"):
        raise UserError(f"{checkpoint}: no such checkpoint (expected {checkpoint}.index)")
    if checkpoint is None and not glob.glob(os.path.join(glob.escape(ckpt_dir), "ckpt-*")):
        raise UserError(f"{ckpt_dir}: no checkpoint (the run has not saved one yet)")
    task.restoring = True  # build_models may skip one-time initialisation (init_from): the checkpoint replaces it
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        models = dict(task.build_models())
    finally:
        keras.config.set_dtype_policy(policy)
    shadow = None
    if float(task.config.trainer.ema_decay) > 0:
        from tfvr.training.ema import EMA

        shadow = EMA(ema_variables(task, models), task.config.trainer.ema_decay)
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    ckpt = Checkpointer(ckpt_dir, checkpoint_objects(models, step=step, ema=shadow))  # reads only
    if checkpoint is not None:
        try:
            ckpt.restore(checkpoint)
        except CheckpointMismatch:
            raise
        except _CORRUPT as e:
            raise UserError(f"{checkpoint}: unreadable checkpoint ({type(e).__name__}: "
                            f"{(str(e).splitlines() or [''])[0][:200]})") from None
        path = checkpoint
    else:
        path = ckpt.restore_latest(set_aside=False)
        if path is None:
            raise UserError(f"{ckpt_dir}: no readable checkpoint")
    if ckpt.predates_index:
        _check_old_checkpoint(path, models, ema_complete=bool(ema and shadow is not None))
    if ema and shadow is not None:
        shadow.copy_to_model()
    log.info("restored %s (step %d) from %s", path, int(step.numpy()), cfg_path)
    return RestoredRun(task=task, models=models, step=int(step.numpy()), path=path, ema=bool(ema and shadow))


def _object_graph(path: str):
    """The checkpoint's object graph (`TrackableObjectGraph` proto): node 0 is the root `tf.train.Checkpoint`."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    graph.ParseFromString(tf.train.load_checkpoint(path).get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    return graph


def _variables_under(graph, root_child: str) -> int:
    """How many variables the object graph reaches from the root's child `root_child`."""
    start = [c.node_id for c in graph.nodes[0].children if c.local_name == root_child]
    seen, todo, count = set(), list(start), 0
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        node = graph.nodes[i]
        count += any(a.name == "VARIABLE_VALUE" for a in node.attributes)
        todo.extend(c.node_id for c in node.children)
    return count


def _check_old_checkpoint(path: str, models: Mapping[str, Any], ema_complete: bool) -> None:
    """A checkpoint from before the variable index holds a model's variables only where the model's own object
    graph reaches them (not inside list-held layers; the trainable ones are in the optimizer state): refuse it when
    some are missing, rather than hand back layers with random weights. The EMA's shadows cover trainable ones."""
    graph = _object_graph(path)
    for name, m in models.items():
        held = _variables_under(graph, model_key(name))
        need = len(m.variables) - (len(m.trainable_variables) if ema_complete else 0)
        if held < need:
            raise UserError(
                f"{path}: written by an older tfvr, it holds {held} of the {len(m.variables)} variables of model "
                f"{name!r} outside its optimizer state; resume the run for one step with its train script "
                f"(--workdir as before, --config.trainer.num_steps one more) to write a complete checkpoint")


def read_models(source, models: Mapping[str, Any]) -> str:
    """Reads the variables of `models` (name -> model, keys as in the run's `build_models`) that the checkpoint
    holds - a `ckpt-N` prefix, or the newest checkpoint of the run folder `source` - without checking that all of
    them were there (initialising from another run). Returns the checkpoint path."""
    source = os.fspath(source)
    path = source if tf.io.gfile.exists(source + ".index") else tf.train.latest_checkpoint(
        os.path.join(source, "checkpoints"))
    if path is None:
        raise UserError(f"{source}: no checkpoint to initialise from (not a tfvr run folder or ckpt-N prefix?)")
    try:
        tf.train.Checkpoint(**checkpoint_objects(models, index=False)).read(path).expect_partial()
    except _CORRUPT as e:
        raise UserError(f"{path}: unreadable checkpoint ({type(e).__name__}: "
                        f"{(str(e).splitlines() or [''])[0][:200]})") from None
    return path
