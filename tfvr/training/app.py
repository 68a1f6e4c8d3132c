"""The body of every `train/<family>.py`: `app.run(TaskClass)`.

    # train/edvr.py
    from tfvr.models.edvr.task import EDVRTask
    from tfvr.training import app

    if __name__ == "__main__":
        app.run(EDVRTask)

`python train/edvr.py --flagfile=train/configs/edvr_m_sr4x.flags --workdir=runs/edvr [--config.a.b=...]`:

1. Flags: `--config` is the task's Experiment dataclass (ml_collections `DEFINE_config_dataclass`), overridden
   by `--config.<field>=value` lines from flagfiles and the command line; `--workdir` is required. Every
   `--config.*` line is checked first (`tfvr.config.checked_argv`: `check_overrides`, then `last_overrides`, the
   flagfiles read once): an unknown field or a bad value stops the run with one line
   `<script>: error: <flagfile>:<line>: --config.x.y: ...`, exit code 2, no traceback.
2. The whole config is validated, ranges included (`tfvr.config.validate_experiment`): a bad value stops the
   run with one line before the workdir is created. Then the workdir lock is taken (`workdir_lock`: a second
   trainer on the same workdir stops with one line naming the holder, exit code 2), the checkpoints are
   restored, and only then is the resolved config written to `<workdir>/config.json` (with the task's registry
   name).
3. `Trainer(task, workdir).train()`: resumes from the newest checkpoint if there is one (checkpoints that exist
   but are all unreadable stop the run, see `trainer.restart_from_scratch`).
   SIGTERM/SIGINT: checkpoint, message, exit code 128 + signal. Divergence (too many rollbacks): one line,
   exit code 1.
4. `trainer.eval_at_end`: `task.evaluate(models)` on held-out data -> `<workdir>/eval.json`
   (`{<metrics>..., "steps": N, "seconds": training seconds of this process}`), printed as a table.
5. `trainer.export`: `<workdir>/export`, a SavedModel kept only if it reloads in a fresh process
   (`tfvr.export.saved_model.export`).
Only the chief of a multi-worker run writes config.json, eval.json and the export, and holds the lock.
Environment errors (disk full, permission denied, TensorFlow's ResourceExhaustedError ...) end the run with one
line naming the path, exit code 2 (`tfvr.safety.error_line`); the lock is released on every exit.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any, Optional

from tfvr.config import checked_argv, read_json, save_json, to_dict, validate_experiment
from tfvr.errors import UserError

log = logging.getLogger("tfvr.training")

__all__ = ["run", "write_json_atomic", "format_table", "use_bfc_cpu_allocator"]


def use_bfc_cpu_allocator() -> bool:
    """Training processes allocate CPU tensors from TensorFlow's BFC allocator instead of malloc/free per tensor.

    TensorFlow reads TF_CPU_ALLOCATOR_USE_BFC when it creates its CPU allocator, at the first op of the process,
    so this must run before any (`run` calls it first; processes started from here inherit it). With malloc, every
    step's large blocks go back to the kernel and are faulted in again: the STTN-R demo's step spent a third of
    its CPU time in the kernel and ran ~0.95 steps/s on 2 cores, with BFC ~1.5 (docs/performance.md, "Session 8"),
    for 5-10 % more peak RSS (BFC keeps its peak for reuse). Inference commands (`tfvr restore` ...) keep malloc: on
    EDVR-M at 180x320 BFC is x1.4 faster but +32 % peak RSS, and their memory bounds matter more.
    TF_CPU_ALLOCATOR_USE_BFC=false keeps TensorFlow's default. TensorFlow caps BFC's pool at 64 GiB
    (TF_CPU_BFC_MEM_LIMIT_IN_MB); the cap is raised to the machine's memory where that is larger.
    Returns whether BFC is asked for."""
    if os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true").strip().lower() not in ("true", "1"):
        return False
    try:
        ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1 << 20)
    except (ValueError, OSError, AttributeError):
        ram_mb = 0
    os.environ.setdefault("TF_CPU_BFC_MEM_LIMIT_IN_MB", str(max(1 << 16, ram_mb)))
    return True


def _die(prog: str, message: str, code: int = 2) -> None:
    one_line = " ".join(str(message).split())
    print(f"{prog}: error: {one_line}", file=sys.stderr, flush=True)
    sys.exit(code)


def _setup_logging() -> None:
    logger = logging.getLogger("tfvr")
    if not any(getattr(h, "_tfvr", False) for h in logger.handlers):
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(message)s", "%H:%M:%S"))
        h._tfvr = True  # type: ignore[attr-defined]
        logger.addHandler(h)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def write_json_atomic(path: str, payload: dict) -> None:
    from tfvr.safety import write_text

    write_text(path, json.dumps(payload, indent=2) + "\n")


def format_table(metrics: dict[str, Any]) -> str:
    width = max([len(k) for k in metrics] + [6])
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  {'-' * 12}"]
    for k, v in metrics.items():
        lines.append(f"{k:<{width}}  {v:.4f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    return "\n".join(lines)


def _changed_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        if k in ("task", "task_module") and not prefix:
            continue
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_changed_keys(a, b, f"{prefix}{k}."))
        elif a != b:
            out.append(f"{prefix}{k}")
    return out


def train_and_export(task_cls: type, config: Any, workdir: str, prog: str = "train") -> dict:
    """Steps 2-5 of the module docstring for an already parsed config. Returns the eval.json payload (or {})."""
    from tfvr.training.loop import Trainer

    workdir = os.path.abspath(workdir)
    validate_experiment(config)  # before anything touches the workdir
    from tfvr.safety import OutputError

    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise OutputError(f"{workdir}: --workdir exists and is not a folder")
    if task_cls.__module__ == "__main__":
        log.warning("%s is defined in the train script itself: `tfvr export --workdir` can only rebuild tasks "
                    "defined in an importable module", task_cls.__name__)
    task = task_cls(config)
    trainer = Trainer(task, workdir)  # creates the strategy first (MultiWorkerMirroredStrategy needs that)
    trainer.lock()  # chief only; held until this process ends (released below, or by the kernel)
    try:
        return _train_and_export(trainer, task, task_cls, config, workdir, prog)
    finally:
        trainer.unlock()


def _train_and_export(trainer, task, task_cls, config, workdir: str, prog: str) -> dict:
    from tfvr.training.guards import TrainingDiverged
    from tfvr.training.loop import TrainingInterrupted

    cfg_path = os.path.join(workdir, "config.json")

    def write_config():  # once the run can start: valid config, lock held, checkpoints readable (or none)
        if not trainer.is_chief:
            return
        if os.path.exists(cfg_path):
            try:
                changed = _changed_keys(read_json(cfg_path), to_dict(config))
            except UserError:
                changed = []
            if changed:
                log.warning("config differs from the one in %s: %s", cfg_path, ", ".join(changed[:10]))
        save_json(config, cfg_path, task=task_cls.name, task_module=task_cls.__module__)

    try:
        result = trainer.train(on_start=write_config)
    except TrainingInterrupted as e:
        print(f"{prog}: {e}", file=sys.stderr, flush=True)
        sys.exit(128 + int(e.signum))
    except TrainingDiverged as e:
        _die(prog, str(e), code=1)
    log.info("trained to step %d (%.1f s in this process)", result.step, result.seconds)
    payload: dict = {}
    if not trainer.is_chief:
        return payload
    if config.trainer.eval_at_end:
        metrics = trainer.evaluate()
        trainer.log_eval(metrics)  # the final eval/* values: what TensorBoard's HParams table shows per run
        payload = {**metrics, "steps": result.step, "seconds": round(result.seconds, 2)}
        write_json_atomic(os.path.join(workdir, "eval.json"), payload)
        print(format_table(payload), flush=True)
    if config.trainer.export:
        from tfvr.export.saved_model import export

        module = trainer.export_module()
        out = export(module, os.path.join(workdir, "export"), signatures=task.export_signatures(module),
                     examples=task.export_examples(module), overwrite=True, allow_inside_workdir=True)
        print(f"exported {out}", flush=True)
    return payload


def run(task_cls: type, experiment: Optional[Any] = None, argv: Optional[list[str]] = None) -> None:
    """Parses flags (checking every `--config.*` line), then trains, evaluates and exports (module docstring)."""
    use_bfc_cpu_allocator()  # before TensorFlow's first op
    from tfvr import quiet

    verbose = quiet.setup(sys.argv if argv is None else argv)  # a no-op for TF when the script already called it
    from absl import app as absl_app
    from absl import flags
    from ml_collections import config_flags

    experiment = experiment if experiment is not None else task_cls.experiment_cls()
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "train"
    FLAGS = flags.FLAGS
    # ml_collections applies the --config.* overrides while the flag is defined, so check them before that; the
    # command line replaces a flagfile's value, tuples included (ml_collections would append them).
    try:
        flat = checked_argv(experiment, list(sys.argv if argv is None else argv))
    except UserError as e:
        _die(prog, str(e))
    if argv is None:
        sys.argv[:] = flat
    else:
        argv = flat
    if "config" not in FLAGS:
        config_flags.DEFINE_config_dataclass("config", experiment, "the experiment config (see the task)")
    if "workdir" not in FLAGS:
        flags.DEFINE_string("workdir", None, "run folder: checkpoints, TensorBoard, config.json, eval.json, export")
    if "verbose" not in FLAGS:
        flags.DEFINE_boolean("verbose", False, "show TensorFlow's C++ logs and third-party INFO logs "
                             "(or env TFVR_VERBOSE=1); by default only tfvr's own lines are printed")

    def parse(args: list[str]) -> list[str]:
        try:
            rest = FLAGS(args)
        except flags.Error as e:
            _die(prog, str(e))
        except (KeyError, TypeError, ValueError, AttributeError) as e:  # ml_collections' own complaints
            _die(prog, f"bad --config flag: {e}")
        if not FLAGS.workdir:
            _die(prog, "--workdir is required (the run folder)")
        if len(rest) > 1:
            _die(prog, f"unexpected arguments: {' '.join(rest[1:])}")
        return rest

    def main(_):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.INFO if verbose else absl_logging.WARNING)
        _setup_logging()
        from tfvr.safety import error_line

        try:
            train_and_export(task_cls, FLAGS.config, FLAGS.workdir, prog)
        except UserError as e:
            _die(prog, str(e))
        except Exception as e:  # noqa: BLE001 - disk full / permission / TF disk errors: one line
            line = error_line(e)
            if line is None:
                raise
            _die(prog, line)

    absl_app.run(main, argv=argv, flags_parser=parse)
