"""`tfvr export --workdir W --out saved_models/<name>/<version> [--checkpoint PREFIX] [--overwrite]
[--precision float32|bfloat16|float16]`

Rebuilds a training run from `W/config.json` (the task is looked up in `tfvr.registry` by the name stored
there), restores the newest readable checkpoint in `W/checkpoints` (or `--checkpoint`), puts the EMA weights
into the model when the run kept an EMA (`--no-ema` keeps the raw weights), asks the task for its serving
module and writes it with `tfvr.export.saved_model.export`: the SavedModel is kept only if it reloads and gives
the same outputs in a fresh process that never imports tfvr.
"""

from __future__ import annotations

import argparse
import os


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", required=True, help="the training run folder (holds config.json, checkpoints/)")
    p.add_argument("--out", required=True, help="output folder, e.g. saved_models/sttn_denoise/1")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint prefix (e.g. W/checkpoints/ckpt-500); default: the newest readable one")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--no-ema", action="store_true", help="export the raw weights even if the run kept an EMA")
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="compute dtype of the serving graph (tfvr.export.precision: weights stay float32; offsets, "
                        "flows, softmax and final residual adds stay float32); default float32")


def run(args) -> int:
    from tfvr.config import from_dict, read_json
    from tfvr.errors import UserError
    from tfvr.registry import get_task

    cfg_path = os.path.join(args.workdir, "config.json")
    if not os.path.isdir(args.workdir):
        raise UserError(f"{args.workdir}: no such run folder")
    data = read_json(cfg_path)
    if "task" not in data:
        raise UserError(f"{cfg_path}: no \"task\" key (not written by a tfvr training run?)")
    task_cls = get_task(data["task"], data.get("task_module"), source=cfg_path)
    config = from_dict(task_cls.experiment_cls, data, source=cfg_path)
    from tfvr.safety import check_output

    # Never into (or around) the training run, never over a folder tfvr did not write - before any work.
    inputs = [args.workdir] + ([args.checkpoint] if args.checkpoint else [])
    from tfvr.export.saved_model import is_saved_model_only

    check_output(args.out, inputs, overwrite=args.overwrite, what="export", owned=is_saved_model_only)

    import tensorflow as tf

    from tfvr.export.saved_model import export
    from tfvr.training.loop import Trainer

    device = "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"
    task = task_cls(config)
    trainer = Trainer(task, args.workdir, strategy=tf.distribute.OneDeviceStrategy(device)).build()
    if args.checkpoint:
        if not tf.io.gfile.exists(args.checkpoint + ".index"):
            raise UserError(f"{args.checkpoint}: no such checkpoint (expected {args.checkpoint}.index)")
        step = trainer.restore_from(args.checkpoint)
    else:
        step = trainer.restore()
        if step is None:
            raise UserError(f"{os.path.join(args.workdir, 'checkpoints')}: no readable checkpoint to export")
    if args.no_ema:
        trainer.ema = None
    module = trainer.export_module()
    out = export(module, args.out, signatures=task.export_signatures(module), examples=task.export_examples(module),
                 overwrite=args.overwrite, inputs=inputs, precision=args.precision)
    print(f"exported {out} from step {step} of {args.workdir}" +
          (f" ({args.precision})" if args.precision != "float32" else ""))
    return 0
