"""`tfvr export`: a TF Serving SavedModel (uint8 in/out) from a training run, converted weights or a PyTorch file.

    tfvr export --workdir W --out saved_models/<name>/<version> [--checkpoint PREFIX] [--no-ema]
    (every form also takes --precision float32|bfloat16|float16 and --overwrite)
    tfvr export --weights X.weights.h5 --out saved_models/<name>/<version>
    tfvr export --from-pytorch EDVR_L_x4_SR_REDS_official-9f5f5039.pth --out saved_models/edvr_l/1
    tfvr export --from-pytorch FILE.(pth|npz) --arch edvr|sttn_inpaint|vid2vid [--preset P | --kwargs JSON] --out ...

`--workdir`: rebuilds the run from `W/config.json` (the task is looked up in `tfvr.registry`), restores the newest
readable checkpoint (or `--checkpoint`), puts the EMA weights in (`--no-ema` keeps the raw ones) and exports the
task's serving module.
`--weights`: the model `X.config.json` (written beside it by `tfvr convert-weights`) describes, with the weights.
`--from-pytorch`: converts a PyTorch state dict in memory (`.pth` read without PyTorch, or `.npz`; wrapped
checkpoints `params_ema` / `params` / `netG` / `state_dict` unwrapped, `--key` to choose). What to build: a released
checkpoint known by its file name (`tfvr presets`) needs no other flag; otherwise `--arch` with `--preset` or
`--kwargs` (EDVR reads its configuration off the weight shapes when neither is given).

Every path writes with `tfvr.export.saved_model.export`: the SavedModel is kept only if it reloads in a fresh
process that never imports tfvr and gives the same outputs; it is written to a temporary sibling, given the
user's umask and renamed. `--out` may not be, contain or lie inside the training run or the input file, and
`--overwrite` replaces only an export tfvr wrote.
"""

from __future__ import annotations

import argparse
import json
import os


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--workdir", help="the training run folder (holds config.json, checkpoints/)")
    src.add_argument("--weights", help="converted X.weights.h5 (with X.config.json beside it)")
    src.add_argument("--from-pytorch", dest="from_pytorch", metavar="FILE",
                     help="PyTorch state dict .pth/.pt (read without torch) or .npz")
    p.add_argument("--out", required=True, help="output folder, e.g. saved_models/edvr_l/1")
    p.add_argument("--checkpoint", default=None,
                   help="--workdir: checkpoint prefix (e.g. W/checkpoints/ckpt-500); default: the newest readable one")
    p.add_argument("--no-ema", action="store_true", help="--workdir: export the raw weights even with an EMA")
    from tfvr.registry import converter_names

    p.add_argument("--arch", default=None, help=f"--from-pytorch: model family ({', '.join(converter_names())})")
    p.add_argument("--preset", default=None, help="--from-pytorch: a released checkpoint or family preset name")
    p.add_argument("--kwargs", default=None, metavar="JSON", help="--from-pytorch: constructor kwargs (JSON object)")
    p.add_argument("--key", default=None, help="--from-pytorch: entry of a wrapped checkpoint to read")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it is an export tfvr wrote")
    p.add_argument("--precision", default="float32", choices=("float32", "bfloat16", "float16"),
                   help="compute dtype of the serving graph (tfvr.export.precision: weights stay float32; offsets, "
                        "flows, softmax and final residual adds stay float32); default float32")


def _export(module, out, signatures, examples, args, inputs):
    from tfvr.export.saved_model import export

    return export(module, out, signatures=signatures, examples=examples, overwrite=args.overwrite, inputs=inputs,
                  precision=args.precision)


def _check_out(out, inputs, overwrite) -> None:
    """Before any work: never into (or around) an input or the training run, never over a folder tfvr did not
    write (an older export holding only a SavedModel counts as tfvr's)."""
    from tfvr.export.saved_model import is_saved_model_only
    from tfvr.safety import check_output

    check_output(out, inputs, overwrite=overwrite, what="export", owned=is_saved_model_only)


def _suffix(args) -> str:
    return f" ({args.precision})" if args.precision != "float32" else ""


def _signatures(module):
    from tfvr.export.saved_model import find_signatures

    return module.signatures() if hasattr(module, "signatures") else find_signatures(module)


def _run_weights(args) -> int:
    from tfvr.export import converted

    meta = converted.read_sidecar(args.weights)
    _check_out(args.out, [args.weights, converted.config_path_for(args.weights)], args.overwrite)
    model = converted.load_converted(args.weights)
    arch = converted.arch_of(meta, model)
    module, kind, examples = converted.serving_module(model, arch, meta.get("config"))
    out = _export(module, args.out, _signatures(module), examples, args, [args.weights])
    print(f"exported {out} ({kind}, {arch}) from {args.weights}{_suffix(args)}")
    return 0


def _run_pytorch(args) -> int:
    from tfvr.cli.convert_weights import _parse_kwargs
    from tfvr.errors import UserError
    from tfvr.export import converted
    from tfvr.export.torch_state import load_state_dict

    kwargs = _parse_kwargs(args.kwargs)
    src = args.from_pytorch
    if not os.path.isfile(src):
        # a released checkpoint's name may still say where to get it
        converted.resolve_checkpoint(src, args.arch, args.preset, kwargs)
        raise UserError(f"{src}: no such file")
    _check_out(args.out, [src], args.overwrite)
    state_dict = load_state_dict(src, key=args.key)
    arch, preset, kwargs = converted.resolve_checkpoint(src, args.arch, args.preset, kwargs, state_dict=state_dict)
    model = converted.build_from_state_dict(arch, state_dict, preset, kwargs, source=src)
    module, kind, examples = converted.serving_module(model, arch, converted.model_config_of(model))
    out = _export(module, args.out, _signatures(module), examples, args, [src])
    print(f"exported {out} ({kind}, {arch}{', ' + json.dumps(kwargs) if kwargs else ''}) from {src}{_suffix(args)}")
    return 0


def _run_workdir(args) -> int:
    from tfvr.training.checkpoints import read_run, restore_models

    read_run(args.workdir)  # a bad run folder / config.json fails before --out is looked at
    inputs = [args.workdir] + ([args.checkpoint] if args.checkpoint else [])
    _check_out(args.out, inputs, args.overwrite)
    run = restore_models(args.workdir, args.checkpoint, ema=not args.no_ema)
    task = run.task
    module = task.export_module(run.models)
    out = _export(module, args.out, task.export_signatures(module), task.export_examples(module), args, inputs)
    print(f"exported {out} from step {run.step} of {args.workdir}{_suffix(args)}")
    return 0


def run(args) -> int:
    from tfvr.errors import UserError

    if not args.from_pytorch and (args.arch or args.preset or args.kwargs or args.key):
        raise UserError("--arch, --preset, --kwargs and --key go with --from-pytorch")
    if not args.workdir and (args.checkpoint or args.no_ema):
        raise UserError("--checkpoint and --no-ema go with --workdir")
    if args.weights:
        return _run_weights(args)
    if args.from_pytorch:
        return _run_pytorch(args)
    return _run_workdir(args)
